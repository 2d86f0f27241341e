/**
 * The sender's arithmetic, kept apart from its state machine so it can be
 * read (and tested) on its own: the block size, how much repair to send
 * proactively and in each repair round, and the loss back-off of the rate.
 * docs/delivery.md ("The engine: block size, rounds and rate") gives the
 * reasoning and the figures; the numbers below cite it.
 *
 * Notation: a block has `kb` source symbols; receivers lose each datagram
 * with probability `p`; a repair round for a block answers the largest
 * `need` (symbols still missing) that any receiver reported for it.
 */

/**
 * Source symbols per block by default: 192 with 64 repair symbols, the
 * GF(2^8) code's 256 shards. With 1,000 receivers at 5 % loss the worst
 * receiver of a block of 192 loses about 11 % of what is sent (the worst
 * of 1,000 draws of Binomial(n, 0.05)), so ≈ 1.12 × the block must be sent;
 * a block of 64 would need ≈ 1.17 ×. 64 repair symbols leave room for the
 * worst receiver at 10 % loss (≈ 40 of ≈ 232) and for the rounds' margins.
 * @internal
 */
export const DEFAULT_SOURCE_SYMBOLS = 192;
/** Repair symbols per block by default (see {@link DEFAULT_SOURCE_SYMBOLS}). @internal */
export const DEFAULT_REPAIR_SYMBOLS = 64;

/**
 * Repair symbols to send with a block's source symbols in round 1: the mean
 * number the average receiver loses, `kb · p / (1 − p)`, rounded up. Most
 * receivers then finish in round 1 (fewer requests), and what the worst
 * receivers still miss is asked for with its exact count in round 2, so the
 * proactive part never exceeds what the worst receiver needs anyway.
 * `p = 0` sends none.
 * @internal
 */
export function proactiveRepair(kb: number, p: number, pool: number): number {
  if (!(p > 0)) return 0;
  const q = Math.min(p, 0.5);
  return Math.min(pool, Math.ceil((kb * q) / (1 - q)));
}

/**
 * Receivers still without the file at or below which a repair round's
 * margin aims to finish them all (see {@link roundRepair}).
 * @internal
 */
export const FEW_RECEIVERS_LEFT = 64;

/**
 * With few receivers left, the most a repair round may leave the receiver
 * with the largest need of a block short (the probability that it loses more
 * of the round's symbols than the margin covers): 1 %.
 * @internal
 */
export const ROUND_SHORTFALL = 0.01;

/**
 * Fresh repair symbols to send in a repair round for a block whose largest
 * reported need is `need`, at loss `p`, with `left` receivers still without
 * the file. Every other receiver needs at most as many, and each fresh
 * repair symbol heals a different loss at each of them (any `kb` distinct
 * symbols decode). `p = 0` sends exactly `need`.
 *
 * - Few left (≤ {@link FEW_RECEIVERS_LEFT}): the fewest `n` of which the
 *   receiver with that need still gets `need` with probability
 *   ≥ 1 − {@link ROUND_SHORTFALL} (the binomial tail, exact). The largest
 *   need is then mostly one receiver's, and a block left short costs a whole
 *   further round — the wait for requests, four group RTTs, is worth
 *   megabytes of sending — where the margin costs a symbol or two per block
 *   asked for.
 * - Many left: `need / (1 − p)` plus one standard deviation. Many receivers
 *   then have needs near the largest, so no margin the bytes can afford
 *   finishes them all in one round; a larger one only costs bytes
 *   (docs/delivery.md, "Rounds").
 * @internal
 */
export function roundRepair(need: number, p: number, left = 1): number {
  if (need <= 0) return 0;
  const q = Math.min(Math.max(p, 0), 0.5);
  if (q === 0) return need;
  const mean = need / (1 - q);
  if (left > FEW_RECEIVERS_LEFT) return Math.ceil(mean + Math.sqrt(mean * q));
  // Bounded: the tail passes 1 − shortfall within a few standard deviations of the mean.
  for (let n = Math.max(need, Math.floor(mean)); ; n++) if (lossTail(n, n - need, q) >= 1 - ROUND_SHORTFALL) return n;
}

/** P[at most `most` of `n` lost], each lost with probability `q` (0 < q ≤ 0.5), summed in log space. */
function lossTail(n: number, most: number, q: number): number {
  const step = Math.log(q / (1 - q));
  let logPmf = n * Math.log1p(-q); // P[none lost]
  let sum = Math.exp(logPmf);
  for (let i = 1; i <= most; i++) {
    logPmf += Math.log((n - i + 1) / i) + step;
    sum += Math.exp(logPmf);
  }
  return sum;
}

/**
 * The loss rate a request shows: a receiver that still needs `need` of a
 * block of `kb` after `sent` symbols of it were sent lost at least
 * `sent − kb + need` of them.
 * @internal
 */
export function requestLoss(kb: number, sent: number, need: number): number {
  if (sent <= 0) return 0;
  return Math.min(1, Math.max(0, sent - kb + need) / sent);
}

/**
 * The rate back-off rule (docs/delivery.md, "Rate and loss back-off"): after
 * each repair round, `loss` is the worst loss rate the round's requests show.
 * Above `threshold` the rate halves (never below `floorBps`); below half the
 * threshold it grows back by a quarter (never above the configured
 * `limitBps`); in between it stays.
 * @internal
 */
export function nextRate(current: number, loss: number, threshold: number, limitBps: number, floorBps: number): number {
  if (loss > threshold) return Math.max(floorBps, current / 2);
  if (loss < threshold / 2) return Math.min(limitBps, current * 1.25);
  return current;
}
