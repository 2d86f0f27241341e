// symbolHashMatches is symbolHash compared with the page's bytes at an offset, without views.
import { describe, expect, it } from 'vitest';
import { nativeBackend, nobleBackend, type CryptoBackend } from '../../src/session/index.js';
import { symbolHash, symbolHashMatches } from '../../src/delivery/update/wire/manifest.js';
import { SYMBOL_HASH_LEN } from '../../src/delivery/update/wire/packet.js';
import { fileBytes } from './fixtures/wire.js';

describe('symbolHashMatches', () => {
  for (const backend of [nativeBackend(), nobleBackend].filter((b): b is CryptoBackend => b !== undefined)) {
    it(`${backend.name}: true exactly where the hash sits, false for any changed byte or an offset outside`, () => {
      const symbol = fileBytes(1400, 4);
      const hash = symbolHash(backend, symbol);
      const page = fileBytes(5 * SYMBOL_HASH_LEN, 8);
      page.set(hash, 3 * SYMBOL_HASH_LEN);
      expect(symbolHashMatches(backend, symbol, page, 3 * SYMBOL_HASH_LEN)).toBe(true);
      for (const at of [0, SYMBOL_HASH_LEN, 2 * SYMBOL_HASH_LEN, 4 * SYMBOL_HASH_LEN, 3 * SYMBOL_HASH_LEN + 1]) expect(symbolHashMatches(backend, symbol, page, at)).toBe(false);
      expect(symbolHashMatches(backend, symbol, page.subarray(0, 4 * SYMBOL_HASH_LEN - 1), 3 * SYMBOL_HASH_LEN)).toBe(false);
      expect(symbolHashMatches(backend, symbol, page, -1)).toBe(false);
      for (let i = 0; i < SYMBOL_HASH_LEN; i++) {
        const bad = page.slice();
        bad[3 * SYMBOL_HASH_LEN + i]! ^= 0x40;
        expect(symbolHashMatches(backend, symbol, bad, 3 * SYMBOL_HASH_LEN)).toBe(false);
      }
      const other = symbol.slice();
      other[700]! ^= 1;
      expect(symbolHashMatches(backend, other, page, 3 * SYMBOL_HASH_LEN)).toBe(false);
    });
  }
});
