/**
 * nmap XML import (fixtures in nmap's own -oX format) and the confirmation of
 * scanner findings against the hosts' reports. Hostile files — oversized,
 * entity declarations, deep nesting, broken XML, wrong types — are refused
 * with GS_ERR_SECURITY_MALFORMED_ADVISORY.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SecurityCenterError } from '../../src/errors/index.js';
import { type FullReport } from '../../src/delivery/security/report/index.js';
import { confirmFindings, parseNmapXml } from '../../src/delivery/security/scan/index.js';

const FIX = path.join(import.meta.dirname, 'fixtures');
const LAN = fs.readFileSync(path.join(FIX, 'nmap/lan-sv.xml'), 'utf8');
const V6 = fs.readFileSync(path.join(FIX, 'nmap/v6-down.xml'), 'utf8');
const WEB1 = JSON.parse(fs.readFileSync(path.join(FIX, 'reports/full-web1.json'), 'utf8')) as FullReport;
const DB1: FullReport = {
  ...WEB1,
  hostMsid: `MSID-${'DB'.repeat(32)}`,
  addresses: ['192.0.2.11'],
  services: [{ proto: 'udp', address: '127.0.0.1', port: 161, process: 'snmpd' }],
};

function refusal(input: string | Uint8Array, limits = {}): string {
  try {
    parseNmapXml(input, limits);
  } catch (err) {
    if (err instanceof SecurityCenterError) return `${err.code} ${err.message}`;
    throw err;
  }
  return 'accepted';
}

describe('parseNmapXml', () => {
  it('reads hosts, addresses, host names, ports, states and services from nmap -oX output', () => {
    const scan = parseNmapXml(LAN);
    expect(scan.args).toBe('nmap -sS -sU -sV -p T:22,80,443,3306,U:53,161 -oX lan-sv.xml 192.0.2.0/28');
    expect(scan.version).toBe('7.94SVN');
    expect(scan.start).toBe(1764000000_000);
    expect(scan.hosts.map((h) => h.addresses.map((a) => a.addr))).toEqual([['192.0.2.10', '52:54:00:12:34:56'], ['192.0.2.11'], ['192.0.2.12']]);
    const web = scan.hosts[0]!;
    expect(web.hostnames).toEqual(['web1.example.lan']);
    expect(web.ports.map((p) => `${p.protocol}/${p.port} ${p.state}`)).toEqual(['tcp/22 open', 'tcp/80 closed', 'tcp/443 open', 'tcp/3306 open', 'udp/53 open|filtered', 'udp/161 closed']);
    expect(web.ports[0]!.service).toEqual({
      name: 'ssh', product: 'OpenSSH', version: '9.2p1 Debian 2+deb12u3', extrainfo: 'protocol 2.0', tunnel: null,
      cpe: ['cpe:/a:openbsd:openssh:9.2p1', 'cpe:/o:linux:linux_kernel'],
    });
    expect(web.ports[2]!.service).toMatchObject({ name: 'http', product: 'nginx', tunnel: 'ssl', cpe: ['cpe:/a:igor_sysoev:nginx:1.22.1'] });
    expect(web.ports[1]!.reason).toBe('reset');
    expect(scan.hosts[1]!.ports).toHaveLength(1); // extraports are counted by nmap, not listed
    const v6 = parseNmapXml(Buffer.from(V6));
    expect(v6.hosts.map((h) => [h.state, h.addresses[0]!.addr])).toEqual([['up', '2001:db8::10'], ['down', '2001:db8::99']]);
    expect(v6.hosts[1]!.ports).toEqual([]);
  });

  it('refuses hostile and malformed files', () => {
    const cases: Array<[string, string]> = [
      ['billion laughs', '<?xml version="1.0"?><!DOCTYPE nmaprun [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><nmaprun scanner="nmap" args="&b;"/>'],
      ['external entity', '<?xml version="1.0"?><!DOCTYPE nmaprun [<!ENTITY x SYSTEM "file:///etc/passwd">]><nmaprun scanner="nmap" args="&x;"/>'],
      ['entity without doctype', '<!ENTITY x "y"><nmaprun scanner="nmap"/>'],
      ['not well-formed', LAN.replace('</ports>', '')],
      ['truncated', LAN.slice(0, LAN.length / 2)],
      ['deep nesting', `<nmaprun scanner="nmap">${'<x>'.repeat(200)}${'</x>'.repeat(200)}</nmaprun>`],
      ['other scanner', LAN.replace('scanner="nmap"', 'scanner="masscan"')],
      ['no root', '<scan/>'],
      ['portid not a number', LAN.replace('portid="22"', 'portid="abc"')],
      ['portid out of range', LAN.replace('portid="22"', 'portid="70000"')],
      ['portid with leading zero', LAN.replace('portid="22"', 'portid="022"')],
      ['protocol', LAN.replace('protocol="tcp" portid="22"', 'protocol="icmp" portid="22"')],
      ['port state', LAN.replace('state="open" reason="syn-ack" reason_ttl="64"/><service name="ssh"', 'state="wide-open" reason="syn-ack"/><service name="ssh"')],
      ['port without state', LAN.replace('<state state="open" reason="syn-ack" reason_ttl="64"/><service name="ssh"', '<service name="ssh"')],
      ['address not an address', LAN.replaceAll('addr="192.0.2.10"', 'addr="192.0.2.300"')],
      ['ipv6 given as ipv4', V6.replace('addrtype="ipv6"', 'addrtype="ipv4"')],
      ['address type', LAN.replace('addrtype="mac" vendor="QEMU virtual NIC"/>\n<hostnames>\n<hostname', 'addrtype="x25" vendor="QEMU virtual NIC"/>\n<hostnames>\n<hostname')],
      ['host as text', '<nmaprun scanner="nmap"><host>up</host></nmaprun>'],
      ['two statuses', LAN.replace('<status state="up" reason="arp-response" reason_ttl="0"/>\n<address addr="192.0.2.11"', '<status state="up"/><status state="down"/>\n<address addr="192.0.2.11"')],
      ['control character', LAN.replace('product="OpenSSH"', 'product="Open\u001b[31mSSH"')],
      ['start not a time', LAN.replace('start="1764000000"', 'start="yesterday"')],
    ];
    for (const [name, xml] of cases) expect(refusal(xml), name).toMatch(/^GS_ERR_SECURITY_MALFORMED_ADVISORY /);
    expect(refusal(LAN, { maxBytes: 1000 })).toMatch(/more than the limit 1000/);
    expect(refusal(LAN, { maxHosts: 2 })).toMatch(/more than the limit 2/);
    expect(refusal(LAN, { maxPorts: 6 })).toMatch(/more ports than the limit/);
    expect(refusal(new Uint8Array([0x3c, 0xff, 0x3e]))).toMatch(/not UTF-8/);
    // a character reference to a control character never reaches the result
    expect(parseNmapXml(LAN.replace('product="OpenSSH"', 'product="Open&#27;[31mSSH"')).hosts[0]!.ports[0]!.service!.product).not.toMatch(/[\u0000-\u001f]/);
    // the standard five entities are decoded
    expect(parseNmapXml(LAN.replace('extrainfo="protocol 2.0"', 'extrainfo="a &lt;b&gt; &amp; &quot;c&quot;"')).hosts[0]!.ports[0]!.service!.extrainfo).toBe('a <b> & "c"');
  });
});

describe('confirmFindings', () => {
  it('confirms an open port only when the host reports a listener that receives on the scanned address', () => {
    const findings = confirmFindings(parseNmapXml(LAN), [WEB1, DB1]);
    expect(findings.map((f) => [f.address, `${f.protocol}/${f.port}`, f.status, f.hostMsid === null ? null : f.hostMsid.slice(5, 9), f.reason])).toEqual([
      ['192.0.2.10', 'tcp/22', 'confirmed', '1F1F', 'report 3 lists tcp/22 listening on 0.0.0.0 (sshd)'],
      ['192.0.2.10', 'tcp/443', 'confirmed', '1F1F', 'report 3 lists tcp/443 listening on :: (nginx)'],
      ['192.0.2.10', 'tcp/3306', 'not-confirmed', '1F1F', 'report 3 lists no socket on tcp/3306'],
      ['192.0.2.10', 'udp/53', 'not-confirmed', '1F1F', 'report 3 lists no socket on udp/53'],
      ['192.0.2.11', 'udp/161', 'not-confirmed', 'DBDB', 'report 3 lists udp/161 only on 127.0.0.1, not on 192.0.2.11'],
      ['192.0.2.12', 'tcp/80', 'unknown-host', null, 'no host reports the address 192.0.2.12'],
    ]);
    expect(findings[0]!.listener).toEqual({ proto: 'tcp', address: '0.0.0.0', port: 22, process: 'sshd' });
    expect(findings[0]!.service?.product).toBe('OpenSSH');
  });

  it('keeps address families apart and refuses to pick between hosts claiming one address', () => {
    const v6 = confirmFindings(parseNmapXml(V6), [WEB1]);
    expect(v6.map((f) => [`${f.protocol}/${f.port}`, f.status, f.reason])).toEqual([
      ['tcp/22', 'not-confirmed', 'report 3 lists tcp/22 only on 0.0.0.0, not on 2001:db8::10'],
      ['tcp/443', 'confirmed', 'report 3 lists tcp/443 listening on :: (nginx)'],
    ]);
    const twin = { ...DB1, addresses: ['192.0.2.10'] };
    const amb = confirmFindings(parseNmapXml(LAN), [WEB1, twin]).filter((f) => f.address === '192.0.2.10');
    expect(amb.every((f) => f.status === 'ambiguous-host' && f.hostMsid === null)).toBe(true);
    expect(confirmFindings(parseNmapXml(LAN), []).every((f) => f.status === 'unknown-host')).toBe(true);
  });
});
