import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createServerIdentity, isMsid, msidOf, parseCertificate } from '../../../src/session/identity/index.js';
import { createGatewaySystemPki } from './pki.js';

describe('MSID', () => {
  const server = createServerIdentity();
  const pki = createGatewaySystemPki();

  it('is MSID- and the upper-case hex SHA-256 of the DER', () => {
    for (const cert of [server.certificate, pki.root, pki.gateway.certificate]) {
      const msid = msidOf(cert);
      expect(msid).toMatch(/^MSID-[0-9A-F]{64}$/);
      expect(msid).toBe(`MSID-${createHash('sha256').update(cert.der).digest('hex').toUpperCase()}`);
      expect(msidOf(parseCertificate(cert.der))).toBe(msid); // a property of the bytes, not of the object
    }
    expect(server.msid).toBe(msidOf(server.certificate));
  });

  it('differs between certificates, even for the same key', () => {
    expect(msidOf(server.certificate)).not.toBe(msidOf(pki.gateway.certificate));
    const other = createServerIdentity();
    expect(other.msid).not.toBe(server.msid);
  });

  it('isMsid accepts only the canonical form', () => {
    expect(isMsid(server.msid)).toBe(true);
    expect(isMsid(server.msid.toLowerCase())).toBe(false);
    expect(isMsid(`MSID-${'A'.repeat(40)}`)).toBe(false); // SHA-1 length: the seed's format
    expect(isMsid(`${server.msid}0`)).toBe(false);
    expect(isMsid(42)).toBe(false);
  });
});
