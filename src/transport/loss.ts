/**
 * Packet-loss models shared by the simulated network and the loss injector
 * for real sockets: independent (Bernoulli) loss, and bursty loss after the
 * Gilbert–Elliott two-state Markov model.
 *
 * Gilbert–Elliott (E. N. Gilbert, "Capacity of a burst-noise channel", 1960;
 * E. O. Elliott, "Estimates of error rates for codes on burst-noise
 * channels", 1963). A link is in state *good* or *bad*. Each datagram is
 * first lost or kept with the loss probability of the current state
 * (`lossInGood`, `lossInBad`), then the state moves: good → bad with
 * probability `pGoodToBad`, bad → good with `pBadToGood`. So:
 *
 * - the share of datagrams seen in the bad state is
 *   πB = pGoodToBad / (pGoodToBad + pBadToGood);
 * - the average loss is (1 − πB)·lossInGood + πB·lossInBad;
 * - a stay in the bad state lasts 1 / pBadToGood datagrams on average
 *   (geometric), which is the mean loss-burst length when
 *   lossInBad = 1 and lossInGood = 0 (the "simple Gilbert" case that
 *   {@link gilbertElliottLoss} builds by default).
 *
 * A link starts in the good state.
 */
import { checkOption } from '../errors/check.js';
import type { SeededRandom } from './random.js';

/**
 * Independent loss: each datagram is lost with probability `p`.
 * @public
 */
export interface IndependentLoss {
  /** Which model this is. */
  readonly kind: 'independent';
  /** Probability in [0, 1] that a datagram is lost. */
  readonly p: number;
}

/**
 * Bursty loss after the Gilbert–Elliott model (see the module comment): two
 * states, each with its own loss probability, and per-datagram transition
 * probabilities between them.
 * @public
 */
export interface GilbertElliottLoss {
  /** Which model this is. */
  readonly kind: 'gilbert-elliott';
  /** Probability, per datagram, of moving from good to bad. */
  readonly pGoodToBad: number;
  /** Probability, per datagram, of moving from bad to good; 1 / mean stay in bad. */
  readonly pBadToGood: number;
  /** Loss probability in the good state (often 0). */
  readonly lossInGood: number;
  /** Loss probability in the bad state (often 1). */
  readonly lossInBad: number;
}

/**
 * A loss model: {@link IndependentLoss} or {@link GilbertElliottLoss}.
 * @public
 */
export type LossModel = IndependentLoss | GilbertElliottLoss;

function isProbability(x: unknown): x is number {
  return typeof x === 'number' && x >= 0 && x <= 1;
}

/**
 * Independent loss with probability `p`.
 * @example
 * ```ts
 * const fivePercent = independentLoss(0.05);
 * ```
 * @public
 */
export function independentLoss(p: number): IndependentLoss {
  checkOption(isProbability(p), 'p', 'must be a probability in [0, 1]');
  return Object.freeze({ kind: 'independent', p });
}

/**
 * Options of {@link gilbertElliottLoss}.
 * @public
 */
export interface GilbertElliottTarget {
  /** Long-run share of datagrams lost, in [0, 1). */
  averageLoss: number;
  /** Mean stay in the bad state, in datagrams (≥ 1); the mean loss burst when `lossInBad` is 1 and `lossInGood` 0. */
  meanBurstLength: number;
  /** Loss probability in the bad state. Default 1. */
  lossInBad?: number;
  /** Loss probability in the good state. Default 0. */
  lossInGood?: number;
}

/**
 * Gilbert–Elliott parameters that give a target average loss and mean burst
 * length: pBadToGood = 1 / meanBurstLength, and pGoodToBad chosen so that
 * the bad state's share πB = (averageLoss − lossInGood) / (lossInBad −
 * lossInGood).
 *
 * @example
 * ```ts
 * // 5% loss in bursts of 4 datagrams on average:
 * const ge = gilbertElliottLoss({ averageLoss: 0.05, meanBurstLength: 4 });
 * // ge.pBadToGood === 0.25, ge.pGoodToBad ≈ 0.01316
 * ```
 * @public
 */
export function gilbertElliottLoss(target: GilbertElliottTarget): GilbertElliottLoss {
  const { averageLoss, meanBurstLength } = target;
  const lossInBad = target.lossInBad ?? 1;
  const lossInGood = target.lossInGood ?? 0;
  checkOption(isProbability(lossInBad), 'lossInBad', 'must be a probability in [0, 1]');
  checkOption(isProbability(lossInGood), 'lossInGood', 'must be a probability in [0, 1]');
  checkOption(lossInBad > lossInGood, 'lossInBad', 'must be greater than lossInGood');
  checkOption(
    typeof averageLoss === 'number' && averageLoss >= lossInGood && averageLoss < lossInBad,
    'averageLoss',
    `must be in [lossInGood, lossInBad) = [${lossInGood}, ${lossInBad})`,
  );
  checkOption(typeof meanBurstLength === 'number' && meanBurstLength >= 1 && Number.isFinite(meanBurstLength), 'meanBurstLength', 'must be a number ≥ 1');
  const pBadToGood = 1 / meanBurstLength;
  const piBad = (averageLoss - lossInGood) / (lossInBad - lossInGood);
  const pGoodToBad = (pBadToGood * piBad) / (1 - piBad);
  checkOption(pGoodToBad <= 1, 'averageLoss', `is too high for meanBurstLength ${meanBurstLength} (it would need pGoodToBad > 1)`);
  return gilbertElliott({ kind: 'gilbert-elliott', pGoodToBad, pBadToGood, lossInGood, lossInBad });
}

/**
 * Check and freeze raw Gilbert–Elliott parameters.
 * @public
 */
export function gilbertElliott(params: Omit<GilbertElliottLoss, 'kind'> & { kind?: 'gilbert-elliott' }): GilbertElliottLoss {
  for (const name of ['pGoodToBad', 'pBadToGood', 'lossInGood', 'lossInBad'] as const) {
    checkOption(isProbability(params[name]), name, 'must be a probability in [0, 1]');
  }
  return Object.freeze({
    kind: 'gilbert-elliott',
    pGoodToBad: params.pGoodToBad,
    pBadToGood: params.pBadToGood,
    lossInGood: params.lossInGood,
    lossInBad: params.lossInBad,
  });
}

/**
 * The long-run average loss of a model.
 * @public
 */
export function averageLossOf(model: LossModel): number {
  if (model.kind === 'independent') return model.p;
  const total = model.pGoodToBad + model.pBadToGood;
  const piBad = total === 0 ? 0 : model.pGoodToBad / total;
  return (1 - piBad) * model.lossInGood + piBad * model.lossInBad;
}

/**
 * Check a loss model given as an option (by name), returning it.
 * @internal
 */
export function checkLossModel(model: unknown, name: string): LossModel {
  checkOption(typeof model === 'object' && model !== null, name, 'must be a loss model (independentLoss(p) or gilbertElliottLoss(...))');
  const m = model as LossModel;
  if (m.kind === 'independent') return independentLoss(m.p);
  checkOption(m.kind === 'gilbert-elliott', `${name}.kind`, "must be 'independent' or 'gilbert-elliott'");
  return gilbertElliott(m);
}

/**
 * One link's loss process: the model, its random stream and (for
 * Gilbert–Elliott) the current state. Thresholds are precomputed as 32-bit
 * integers so a decision costs one generator call and one compare.
 * @internal
 */
export class LossProcess {
  private bad = false;
  private readonly kind: 0 | 1 | 2; // none, independent, GE
  private readonly tLoss: number;
  private readonly tGood: number;
  private readonly tBad: number;
  private readonly tToBad: number;
  private readonly tToGood: number;

  constructor(
    model: LossModel | undefined,
    private readonly rng: SeededRandom,
  ) {
    // A 32-bit draw x is "below p" when x < p · 2^32; p = 1 always holds.
    const t = (p: number) => p * 4294967296;
    if (model === undefined || (model.kind === 'independent' && model.p === 0)) {
      this.kind = 0;
      this.tLoss = this.tGood = this.tBad = this.tToBad = this.tToGood = 0;
    } else if (model.kind === 'independent') {
      this.kind = 1;
      this.tLoss = t(model.p);
      this.tGood = this.tBad = this.tToBad = this.tToGood = 0;
    } else {
      this.kind = 2;
      this.tLoss = 0;
      this.tGood = t(model.lossInGood);
      this.tBad = t(model.lossInBad);
      this.tToBad = t(model.pGoodToBad);
      this.tToGood = t(model.pBadToGood);
    }
  }

  /** Decide the fate of the next datagram: true means lost. */
  drop(): boolean {
    switch (this.kind) {
      case 0:
        return false;
      case 1:
        return this.rng.next() < this.tLoss;
      default: {
        const lost = this.rng.next() < (this.bad ? this.tBad : this.tGood);
        this.bad = this.bad ? !(this.rng.next() < this.tToGood) : this.rng.next() < this.tToBad;
        return lost;
      }
    }
  }
}
