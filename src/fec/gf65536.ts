/**
 * Arithmetic in GF(2^16), the field behind the Reed–Solomon code for more
 * than 256 shards (`reed-solomon16.ts`).
 *
 * Elements are the integers 0…65,535, read as polynomials over GF(2) of
 * degree < 16 (bit i is the coefficient of x^i). Addition is XOR. Products are
 * reduced modulo the primitive polynomial
 *
 *     p(x) = x^16 + x^12 + x^3 + x + 1      (0x1100B)
 *
 * — the default GF(2^16) polynomial of Jerasure and GF-Complete, so other
 * implementations can match byte for byte. `x` (the element 2) generates the
 * multiplicative group: its order is 65,535, which a test checks by walking
 * the table, so p is primitive and the log/exp tables below are complete.
 *
 * Tables are built once at module load: `EXP[i] = 2^i` for 0 ≤ i < 2·65,535
 * (doubled so `EXP[log a + log b]` needs no modulo) and `LOG[a]` for a ≠ 0.
 * Together they take 384 KiB.
 *
 * @packageDocumentation
 */

/**
 * The reduction polynomial of GF(2^16), x^16 + x^12 + x^3 + x + 1, with the
 * x^16 bit included.
 * @public
 */
export const GF65536_POLY = 0x1100b;

/**
 * The multiplicative group order of GF(2^16): 65,535.
 * @public
 */
export const GF65536_ORDER = 0xffff;

/** `EXP[i] = 2^i`, for 0 ≤ i < 2·ORDER; the second half repeats the first. @internal */
export const GF65536_EXP = new Uint16Array(2 * GF65536_ORDER);
/** `LOG[a]` for a ≠ 0 (`LOG[0]` is 0 and meaningless: callers test for zero). @internal */
export const GF65536_LOG = new Uint16Array(GF65536_ORDER + 1);

{
  let x = 1;
  for (let i = 0; i < GF65536_ORDER; i++) {
    GF65536_EXP[i] = x;
    GF65536_EXP[i + GF65536_ORDER] = x;
    GF65536_LOG[x] = i;
    x <<= 1;
    if (x & 0x10000) x ^= GF65536_POLY;
  }
}

function checkElement(a: number, what: string): void {
  if (!Number.isInteger(a) || a < 0 || a > 0xffff) throw new RangeError(`${what} must be an integer in 0…65535, got ${a}`);
}

/**
 * Product of two GF(2^16) elements.
 * @throws RangeError when an argument is not an integer in 0…65,535.
 * @public
 */
export function gf65536Mul(a: number, b: number): number {
  checkElement(a, 'a');
  checkElement(b, 'b');
  if (a === 0 || b === 0) return 0;
  return GF65536_EXP[GF65536_LOG[a]! + GF65536_LOG[b]!]!;
}

/**
 * Quotient `a / b` of two GF(2^16) elements.
 * @throws RangeError when `b` is 0 or an argument is not an integer in 0…65,535.
 * @public
 */
export function gf65536Div(a: number, b: number): number {
  checkElement(a, 'a');
  checkElement(b, 'b');
  if (b === 0) throw new RangeError('division by zero in GF(2^16)');
  if (a === 0) return 0;
  return GF65536_EXP[GF65536_LOG[a]! + GF65536_ORDER - GF65536_LOG[b]!]!;
}

/**
 * Multiplicative inverse of a non-zero GF(2^16) element.
 * @throws RangeError when `a` is 0 or not an integer in 0…65,535.
 * @public
 */
export function gf65536Inv(a: number): number {
  return gf65536Div(1, a);
}

/**
 * `2^n` in GF(2^16) for any integer `n` (negative allowed; taken mod 65,535).
 * @public
 */
export function gf65536Exp(n: number): number {
  if (!Number.isInteger(n)) throw new RangeError(`exponent must be an integer, got ${n}`);
  return GF65536_EXP[((n % GF65536_ORDER) + GF65536_ORDER) % GF65536_ORDER]!;
}

/**
 * Discrete logarithm base 2 of a non-zero GF(2^16) element, in 0…65,534.
 * @throws RangeError when `a` is 0 or not an integer in 0…65,535.
 * @public
 */
export function gf65536Log(a: number): number {
  checkElement(a, 'a');
  if (a === 0) throw new RangeError('log of zero in GF(2^16)');
  return GF65536_LOG[a]!;
}
