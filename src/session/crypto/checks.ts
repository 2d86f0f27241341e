import { CryptoError } from '../../errors/index.js';

/**
 * Refuse an all-zero X25519 output: it means the peer sent a low-order point,
 * and mixing it in would make the session key predictable (RFC 7748 §6.1).
 */
export function checkSharedSecret(secret: Uint8Array): Uint8Array {
  let acc = 0;
  for (let i = 0; i < secret.length; i++) acc |= secret[i]!;
  if (acc === 0) throw new CryptoError('GS_ERR_LOW_ORDER_KEY', 'peer X25519 key is of low order (all-zero shared secret)');
  return secret;
}
