/**
 * Distinguished names (RFC 5280 §4.1.2.4): building ours and printing any as
 * an RFC 4514 string (internal).
 */
import * as asn1js from 'asn1js';
import { decodeOne, toHex } from './der.js';
import { NAME_ATTRIBUTES } from './oids.js';

/** One attribute of a name: type OID and value. */
export type NameAttribute = readonly [oid: string, value: string];

/** A decoded name: its attributes in order (RDN by RDN) and its RFC 4514 text. */
export interface DecodedName {
  readonly attributes: readonly NameAttribute[];
  readonly text: string;
}

/**
 * DER of a Name with one attribute per RDN, in the order given, each value a
 * UTF8String (RFC 5280 §4.1.2.4 prefers UTF8String). One attribute per RDN
 * keeps `openssl x509 -text` output plain (`CN = …, OU = …`).
 */
export function encodeName(attributes: readonly NameAttribute[]): Uint8Array {
  const rdns = attributes.map(
    ([oid, value]) => new asn1js.Set({ value: [new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: oid }), new asn1js.Utf8String({ value })] })] }),
  );
  return new Uint8Array(new asn1js.Sequence({ value: rdns }).toBER());
}

// Universal tags of the string types a DirectoryString or IA5String can use.
const STRING_TAGS = new Set([12, 18, 19, 20, 22, 26, 27, 28, 30]);

/** Decode a Name's DER; undefined when it is not a well-formed Name. */
export function decodeName(der: Uint8Array): DecodedName | undefined {
  const name = decodeOne(der);
  if (!(name instanceof asn1js.Sequence)) return undefined;
  const attributes: NameAttribute[] = [];
  const rdnTexts: string[] = [];
  for (const rdn of name.valueBlock.value) {
    if (!(rdn instanceof asn1js.Set) || rdn.valueBlock.value.length === 0) return undefined;
    const parts: string[] = [];
    for (const atv of rdn.valueBlock.value) {
      if (!(atv instanceof asn1js.Sequence) || atv.valueBlock.value.length !== 2) return undefined;
      const [type, value] = atv.valueBlock.value as [asn1js.AsnType, asn1js.AsnType];
      if (!(type instanceof asn1js.ObjectIdentifier)) return undefined;
      const oid = type.valueBlock.toString();
      const str = stringValue(value);
      if (str !== undefined) attributes.push([oid, str]);
      const shortName = NAME_ATTRIBUTES[oid];
      // RFC 4514 §2.4: a value that is not a known string type is written as '#' + hex of its BER.
      const printed = str === undefined || shortName === undefined ? `#${toHex(new Uint8Array(value.valueBeforeDecodeView))}` : escapeValue(str);
      parts.push(`${shortName ?? oid}=${printed}`);
    }
    rdnTexts.push(parts.join('+'));
  }
  // RFC 4514 §2.1: RDNs are written last first.
  return { attributes, text: rdnTexts.reverse().join(',') };
}

function stringValue(value: asn1js.AsnType): string | undefined {
  const { tagClass, tagNumber } = value.idBlock;
  if (tagClass !== 1 || !STRING_TAGS.has(tagNumber)) return undefined;
  const v = (value.valueBlock as { value?: unknown }).value;
  return typeof v === 'string' ? v : undefined;
}

/**
 * RFC 4514 text of a name whose RDNs each hold one attribute of a type in
 * NAME_ATTRIBUTES with a string value (the strict certificate reader's
 * names); the same text {@link decodeName} gives for such a name.
 */
export function simpleNameText(attributes: readonly NameAttribute[]): string {
  const rdns: string[] = [];
  for (let i = attributes.length - 1; i >= 0; i--) {
    const [oid, value] = attributes[i]!;
    rdns.push(`${NAME_ATTRIBUTES[oid]!}=${escapeValue(value)}`);
  }
  return rdns.join(',');
}

/** RFC 4514 §2.4 escaping. */
function escapeValue(s: string): string {
  let out = s.replace(/[\\",+;<>]/g, (c) => `\\${c}`).replace(/\0/g, '\\00');
  if (out.startsWith('#') || out.startsWith(' ')) out = `\\${out}`;
  if (out.endsWith(' ') && out.length > 1) out = `${out.slice(0, -1)}\\ `;
  return out;
}
