/**
 * The receiver's use of the wire layer (src/delivery/update/wire) in one
 * place: which checks an announcement passes before the receiver joins
 * (permission first, then signature, key and freshness), and the datagrams
 * a receiver sends. The codecs themselves are the wire layer's.
 */
import { ObjectDecoder } from '../../fec/index.js';
import type { CryptoOption } from '../../session/index.js';
import {
  DEFAULT_MAX_REQUEST_PAYLOAD,
  assertPermitted,
  coderFor,
  decodeDatagram,
  encodeControl,
  encodePacket,
  splitRetransmissionRequest,
  updateLayout,
  verifyAnnouncement,
  verifyReceiverPolicy,
  type BlockNeed,
  type PageRef,
  type ReceiverPolicy,
  type UpdateHistory,
  type UpdateLayout,
  type VerifiedAnnouncement,
  type WireMessage,
} from './wire/index.js';
import { malformed } from './wire/common.js';

/**
 * A verified, permitted announcement and what the receiver needs of it.
 * @internal
 */
export interface AcceptedUpdate {
  readonly verified: VerifiedAnnouncement;
  readonly layout: UpdateLayout;
  /** SHA-256 of the whole file. */
  readonly digest: Uint8Array;
  /** The `UDATE` datagram as received (saved for a resume, checked again then). */
  readonly raw: Uint8Array;
}

/** Printable status for `FIN`: one line, printable ASCII, at most 400 characters, never empty. @internal */
export function finStatus(text: string): string {
  const clean = text.replace(/[^\x20-\x7e]+/g, ' ').trim().slice(0, 400);
  return clean === '' ? 'ok' : clean;
}

/**
 * The receiver's wire operations.
 * @internal
 */
export class ReceiverWire {
  readonly #policy: ReceiverPolicy;
  readonly #history: UpdateHistory | undefined;
  readonly #crypto: CryptoOption;

  constructor(policy: ReceiverPolicy, history: UpdateHistory | undefined, crypto: CryptoOption) {
    verifyReceiverPolicy(policy);
    this.#policy = policy;
    this.#history = history;
    this.#crypto = crypto;
  }

  /** Decode any datagram. @throws DeliveryError for junk. */
  parse(bytes: Uint8Array): WireMessage {
    return decodeDatagram(bytes);
  }

  /**
   * Permission (allowed names, pinned publisher) before anything else, then
   * the signature, expiry and version (`lastVersion` from the history).
   * @throws DeliveryError `…_NOT_PERMITTED`, `…_UNKNOWN_PUBLISHER`, `…_BAD_SIGNATURE`, `…_STALE`, `…_MALFORMED`.
   */
  accept(raw: Uint8Array): AcceptedUpdate {
    const msg = decodeDatagram(raw);
    if (msg.kind !== 'udate') throw malformed(`expected an announcement, got ${msg.kind}`);
    const a = msg.announcement;
    assertPermitted(this.#policy, a);
    const lastVersion = this.#history?.lastVersion(a.name);
    const verified = verifyAnnouncement(a, {
      publisherKeys: this.#policy.publisherKeys,
      ...(lastVersion !== undefined ? { lastVersion } : {}),
      ...this.#crypto,
    });
    return { verified, layout: updateLayout(verified), digest: new Uint8Array(Buffer.from(verified.digest, 'hex')), raw: raw.slice() };
  }

  /** Remember that this version was taken (replays and rollbacks are refused from now on). */
  record(u: AcceptedUpdate): void {
    this.#history?.record(u.verified.name, u.verified.version);
  }

  /**
   * A decoder for the update's layout, handing decoded blocks to `onBlock`
   * in one reused array: `onBlock` must write them out before it returns.
   */
  decoder(u: AcceptedUpdate, onBlock: (sbn: number, bytes: Uint8Array) => void): ObjectDecoder {
    const l = u.layout;
    return new ObjectDecoder(l.size, { symbolSize: l.symbolSize, sourceSymbols: l.sourceSymbols, repairSymbols: l.repairSymbols, coder: coderFor(l.code), onBlock, reuseBlockBytes: true });
  }

  recv(name: string, host: string): Uint8Array {
    return encodeControl({ kind: 'recv', name, hostname: host });
  }

  fin(name: string, status: string): Uint8Array {
    return encodeControl({ kind: 'fin', name, status: finStatus(status) });
  }

  notice(fileId: number, host: string, requests: number): Uint8Array {
    return encodePacket({ kind: 'notice', fileId, host, requests: Math.min(requests, 0xffff) });
  }

  /** A retransmission request, split into datagrams of at most the default payload. */
  request(
    fileId: number,
    highestInOrder: number | null,
    round: number,
    needs: readonly BlockNeed[],
    pages: readonly PageRef[],
    lacking: { sbn: number; esis: number[] } | null,
  ): Uint8Array[] {
    const parts = splitRetransmissionRequest(
      { kind: 'request', fileId, highestInOrder, round, needs, pages, lacking: lacking && lacking.esis.length > 0 ? lacking : null },
      DEFAULT_MAX_REQUEST_PAYLOAD,
    );
    return parts.map((p) => encodePacket(p));
  }
}
