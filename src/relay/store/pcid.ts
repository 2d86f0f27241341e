/**
 * PCIDs (design, system 1): the names users give servers. A PCID is unique
 * within a gateway system, renamable, and 1 to {@link PCID_MAX_LENGTH}
 * printable ASCII characters without space (0x21–0x7e). On first
 * registration a server gets a random one ({@link randomPcid}).
 *
 * PCIDs compare case-sensitively, byte for byte: `Build-01` and `build-01`
 * are two different names, and both may exist at once. Nothing is
 * normalised, so the name a user typed is the name stored and looked up.
 */
import { RelayError } from '../../errors/index.js';
import { getCryptoBackend } from '../../session/index.js';

/**
 * Longest PCID, in characters (the seed's limit: 31 characters plus a
 * terminating NUL in a 32-byte field).
 * @public
 */
export const PCID_MAX_LENGTH = 31;

/**
 * True when `value` is a valid PCID: a string of 1 to {@link PCID_MAX_LENGTH}
 * characters, each from `!` (0x21) to `~` (0x7e).
 * @public
 */
export function isValidPcid(value: unknown): value is string {
  if (typeof value !== 'string' || value.length < 1 || value.length > PCID_MAX_LENGTH) return false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

/**
 * Return `value` when it is a valid PCID; otherwise throw `RelayError`
 * `GS_ERR_PCID_INVALID` with a message that says what is wrong (empty, too
 * long, or which character at which index).
 * @public
 */
export function checkPcid(value: unknown): string {
  if (typeof value !== 'string') throw invalid(`must be a string, not ${value === null ? 'null' : typeof value}`);
  if (value.length === 0) throw invalid('must not be empty');
  if (value.length > PCID_MAX_LENGTH) throw invalid(`is ${value.length} characters long; at most ${PCID_MAX_LENGTH} are allowed`);
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c >= 0x21 && c <= 0x7e) continue;
    const what = c === 0x20 ? 'a space' : c < 0x20 || c === 0x7f ? 'a control character' : 'a character outside ASCII';
    const hex = (value.codePointAt(i) ?? c).toString(16).toUpperCase().padStart(4, '0');
    throw invalid(`has ${what} (U+${hex}) at index ${i}; only printable ASCII from "!" to "~" is allowed`);
  }
  return value;
}

function invalid(why: string): RelayError {
  return new RelayError('GS_ERR_PCID_INVALID', `PCID ${why}`);
}

/**
 * The alphabet of random PCIDs: digits and lower-case letters without `i`,
 * `l`, `o` and `u` (Crockford's base32 set, lower-cased), so a name read
 * aloud or off a screen is not mistaken for another (`1`/`l`/`i`, `0`/`o`).
 * 32 symbols, so a random byte masked to 5 bits picks one without bias.
 */
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const RANDOM_PREFIX = 'gs-';
const RANDOM_SYMBOLS = 10;

/**
 * A fresh random PCID: `gs-` and 10 symbols from `0-9a-z` without `i l o u`,
 * e.g. `gs-7k2m9xq4ta` (13 characters). The symbols come from the crypto
 * backend's random bytes and carry 50 bits.
 *
 * Collision odds: a new name matches one of `n` existing names with
 * probability `n / 2^50` (about 9 × 10⁻¹⁰ with a million servers), and a
 * million names contain some pair that collides with probability about
 * `n² / 2^51` (≈ 4 × 10⁻⁴). Stores check uniqueness anyway and draw again on
 * a collision, so a collision costs one retry, never a shared name.
 * @public
 */
export function randomPcid(): string {
  const bytes = getCryptoBackend().randomBytes(RANDOM_SYMBOLS);
  let out = RANDOM_PREFIX;
  for (const b of bytes) out += ALPHABET[b & 31];
  return out;
}
