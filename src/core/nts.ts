// NTS-authenticated NTP (RFC 8915 §5.7) in the per-packet decision, after the defences: a request with NTS
// fields goes through the access list, blocklist, MRU list, call-gap, KoD limiter and overload control
// exactly as a plain one does (Defences#decideNow, with no cryptography at all), and only a request they
// would serve is then opened: cookie, authenticator, new cookies, the sealed reply. A gapped, blocked or
// withheld NTS client costs the server what a plain one costs. Its kiss-o'-death is the plain 48-octet one
// (unauthenticated; RFC 8915 §5.7 lets a client act on it only as a hint).
//
// Plain requests never come here: the shell calls inspect() only for datagrams longer than the header, and
// only when NTS is on. The NTS path itself allocates (Node's cipher objects), as any AEAD here would.
//
// The shell's order, per packet: inspect() before the defences (they overwrite the header with the reply,
// and the authenticator covers the request's header: the request is kept here), then respond() with the
// defences' reason; send replyLength octets when the reason says to reply.

import { randomFillSync } from "node:crypto";
import { SivKey } from "../nts/aes-siv.ts";
import { COOKIE_LENGTH, COOKIE_UNKNOWN_KEY, openCookie, sealCookie } from "../nts/cookie.ts";
import {
  cookiesThatFit,
  inspectNtsRequest,
  NONCE_LENGTH,
  NTS_MALFORMED,
  NTS_NONE,
  NtsRequestView,
  verifyRequest,
  writeNtsNak,
  writeNtsReply,
} from "../nts/extensions.ts";
import { type CookieKey, CookieKeys } from "../nts/keys.ts";
import { KISS_NTSN, NTP_HEADER_LENGTH, NTP_MAX_PACKET_LENGTH } from "../protocol/index.ts";
import { stampTransmitAt, writeKod } from "./decide.ts";
import {
  R_DROP_NTS_MALFORMED,
  R_KISS_NTSN_BAD_AUTH,
  R_KISS_NTSN_BAD_COOKIE,
  R_KISS_NTSN_UNKNOWN_KEY,
  R_SERVED_CLIENT,
  R_SERVED_LEAK,
  R_SERVED_NTS,
} from "./reasons.ts";
import type { ServeState } from "./serve-state.ts";

/**
 * Nonces from the CSPRNG, drawn 4 KiB at a time: a call into the CSPRNG per nonce cost more than a tenth
 * of an NTS reply. A nonce must be unique, not secret beyond the packet it goes into; each is a view that
 * stays valid until the pool is drawn again, long after the request that took it was sealed.
 */
class NoncePool {
  private readonly pool = new Uint8Array(4096);
  private at = 4096;

  take = (n: number): Uint8Array => {
    if (this.at + n > this.pool.length) {
      randomFillSync(this.pool);
      this.at = 0;
    }
    const out = this.pool.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  };
}

export class NtsResponder {
  /** What inspect() found in the current packet: NTS_NONE, NTS_REQUEST or NTS_MALFORMED (src/nts/extensions.ts). */
  kind = NTS_NONE;
  /** Octets to send for the current packet's reply (the header alone unless an NTS reply or NAK was written). */
  replyLength = NTP_HEADER_LENGTH;
  private keys: CookieKeys | undefined;
  private readonly view = new NtsRequestView();
  /**
   * The request as received, put together for a request the defences serve: its header kept by inspect()
   * (the defences write the reply's header over it), the rest from the buffer, which they leave alone.
   */
  private readonly request = new Uint8Array(NTP_MAX_PACKET_LENGTH);
  private requestLength = 0;
  private readonly tx = new Float64Array(1);
  private readonly nonces = new NoncePool();
  /** Writes the transmit time (Unix ms, the served clock) into its argument's cell 0: the shell's clock. */
  private readonly now: (cell: Float64Array) => void;

  constructor(now: (cell: Float64Array) => void, keys?: readonly CookieKey[], activation = 0) {
    this.now = now;
    if (keys !== undefined) this.setKeys(keys, activation);
  }

  /**
   * The cookie keys in force (the main thread rotates them and sends every worker the new set); a new key
   * seals only once `activation` ms old (src/nts/keys.ts activationMs).
   */
  setKeys(keys: readonly CookieKey[], activation = 0): void {
    this.keys = new CookieKeys(keys, activation);
  }

  /**
   * Before the defences: whether buf[0..length) carries NTS fields; if so its 48-octet header is kept for
   * respond() (no more: a request the defences refuse costs a parse and this copy). Returns `kind`.
   */
  inspect(buf: Uint8Array, length: number): number {
    this.replyLength = NTP_HEADER_LENGTH;
    if (this.keys === undefined || length <= NTP_HEADER_LENGTH) {
      this.kind = NTS_NONE;
      return NTS_NONE;
    }
    const kind = inspectNtsRequest(buf, length, this.view);
    this.kind = kind;
    if (kind !== NTS_NONE) {
      this.requestLength = Math.min(length, buf.length, NTP_MAX_PACKET_LENGTH);
      const request = this.request;
      for (let i = 0; i < NTP_HEADER_LENGTH; i++) request[i] = buf[i]!;
    }
    return kind;
  }

  /**
   * After the defences, with their reason: a request they serve (R_SERVED_CLIENT, R_SERVED_LEAK) is answered
   * as NTS; any other reason (a kiss, a drop, a symmetric peer) stands as it is. Returns the reason to count
   * and leaves the reply in `buf`, `replyLength` octets long.
   */
  respond(buf: Uint8Array, reason: number, state: ServeState): number {
    if (this.kind === NTS_NONE || (reason !== R_SERVED_CLIENT && reason !== R_SERVED_LEAK)) return reason;
    if (this.kind === NTS_MALFORMED) return R_DROP_NTS_MALFORMED;
    const keys = this.keys!;
    const view = this.view;
    // The request whole again: the kept header, the fields after it as they still are in `buf`.
    this.request.set(buf.subarray(NTP_HEADER_LENGTH, this.requestLength), NTP_HEADER_LENGTH);
    const req = this.request.subarray(0, this.requestLength);
    const opened = openCookie(keys, req.subarray(view.cookie, view.cookie + view.cookieLength));
    if (opened.session === undefined) {
      const why = opened.status === COOKIE_UNKNOWN_KEY ? R_KISS_NTSN_UNKNOWN_KEY : R_KISS_NTSN_BAD_COOKIE;
      return this.nak(buf, state, why);
    }
    const session = opened.session;
    if (!verifyRequest(req, view, new SivKey(session.c2s))) return this.nak(buf, state, R_KISS_NTSN_BAD_AUTH);
    // One cookie for the one spent and one per placeholder, as many as fit in the request's length.
    const n = cookiesThatFit(view, this.requestLength, COOKIE_LENGTH);
    this.now(this.tx);
    const sealing = keys.sealing(this.tx[0]!);
    const cookies: Uint8Array[] = [];
    for (let i = 0; i < n; i++) cookies.push(sealCookie(sealing, session, this.nonces.take));
    const nonce = this.nonces.take(NONCE_LENGTH);
    // The transmit timestamp is under the authenticator: stamped now, as late as sealing allows.
    this.now(this.tx);
    stampTransmitAt(buf, this.tx);
    this.replyLength = writeNtsReply(buf, req, view, new SivKey(session.s2c), cookies, nonce);
    return R_SERVED_NTS;
  }

  /** NTS NAK (RFC 8915 §5.7): a kiss-o'-death NTSN with the request's Unique Identifier, nothing else. */
  private nak(buf: Uint8Array, state: ServeState, reason: number): number {
    writeKod(buf, KISS_NTSN, state);
    this.replyLength = writeNtsNak(buf, this.request, this.view);
    return reason;
  }
}
