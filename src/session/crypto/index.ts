import { ConfigError } from '../../errors/index.js';
import type { CryptoBackend } from './backend.js';
import { nativeBackend } from './native.js';
import { nobleBackend } from './noble.js';

export type { Aead, CryptoBackend } from './backend.js';
export { nobleBackend } from './noble.js';
export { nativeBackend } from './native.js';

/**
 * Which backend to use: `auto` picks native where present, else noble.
 * @public
 */
export type CryptoBackendName = 'auto' | 'native' | 'noble';

/**
 * Resolve a backend by name (default `auto`).
 * Throws `GS_ERR_INVALID_OPTION` when `native` is asked for but unavailable.
 * @public
 */
export function getCryptoBackend(name: CryptoBackendName | CryptoBackend = 'auto'): CryptoBackend {
  if (typeof name === 'object') return name;
  switch (name) {
    case 'noble':
      return nobleBackend;
    case 'native': {
      const b = nativeBackend();
      if (!b) throw new ConfigError('GS_ERR_INVALID_OPTION', 'crypto backend "native" is not available in this runtime (no node:crypto with chacha20-poly1305 and x25519)');
      return b;
    }
    case 'auto':
      return nativeBackend() ?? nobleBackend;
    default:
      throw new ConfigError('GS_ERR_INVALID_OPTION', `crypto backend must be "auto", "native" or "noble", not ${JSON.stringify(name)}`);
  }
}
