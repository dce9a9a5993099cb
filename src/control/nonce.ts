// The nonce that proves an ntpq client owns its source address before the server sends it anything large
// (the MRU list). A spoofer can send a request in a victim's name but never sees the reply, so it cannot
// quote back a nonce that was sent to the victim: a valid nonce in a READ_MRU request shows that the
// requester received an earlier reply at that address. This is ntpd's defence for mrulist, the successor of
// mode 7's monlist, whose unproven 100-fold replies made the CVE-2013-5211 reflection floods.
//
// Stateless: a nonce is its own proof, so the server keeps no table that a flood could fill.
//
//   nonce text = 24 lower-case hex digits:  "a" | time (7 digits) | tag (16 digits)
//   time       = Unix seconds of issue, modulo 2^28 (wraps every 8.5 years; only ages of seconds matter)
//   tag        = the first 64 bits of HMAC-SHA-256(epochKey, address key (16 octets) | time (4 octets))
//   epochKey   = HMAC-SHA-256(secret, "ntpshield mode 6 nonce key" | epoch (4 octets)), epoch = time / 3600
//
// The leading "a" is a format marker that also keeps ntpq from reading the nonce as a number: ntpq tries
// int(value, 0) and then float(value) on every value it receives, and an all-digit nonce with a leading zero,
// or one of the form 123e456, would come back as a float's text and break the handshake.
//
// The secret is random per server start and shared by every worker thread (any thread may check a nonce
// another issued). The key actually used changes every hour (the epoch key), derived from the secret so
// that the threads need no coordination to rotate together. A nonce is accepted for NONCE_LIFETIME_S
// seconds: ntpq asks for a fresh one every 16 s (its NONCE_TIMEOUT), and each READ_MRU reply carries a new
// one. Not bound to the port: ntpq keeps one socket, and the proof is about the address.

import { createHmac, createSecretKey, type KeyObject, randomBytes, timingSafeEqual } from "node:crypto";
import { CodedError } from "../base/errors.ts";

/** Seconds a nonce stays valid after it is issued. */
export const NONCE_LIFETIME_S = 32;
/** Seconds a nonce may appear to come from the future (threads' clock readings differ slightly). */
const NONCE_FUTURE_SLACK_S = 2;
/** Seconds per epoch key. */
export const NONCE_EPOCH_S = 3600;
/** Length of the nonce text (hex digits). */
export const NONCE_TEXT_LENGTH = 24;
/** Octets of secret a NonceKeeper needs at least. */
export const NONCE_SECRET_MIN_BYTES = 16;

const TIME_MOD = 2 ** 28;
const NONCE_RE = /^a([0-9a-f]{7})([0-9a-f]{16})$/;
const LABEL = Buffer.from("ntpshield mode 6 nonce key", "latin1");

/** A bad option handed to the control module: a bug or a bad configuration. */
export class ControlError extends CodedError<"ERR_CONTROL_OPTION"> {
  constructor(message: string) {
    super("ERR_CONTROL_OPTION", message);
  }
}

/** A fresh random secret for NonceKeeper (32 octets). Make it once per server start, in the main thread. */
export function createNonceSecret(): Uint8Array {
  return new Uint8Array(randomBytes(32));
}

/** Issues and checks nonces. One per thread, all built on the same secret. */
export class NonceKeeper {
  readonly #secret: Buffer;
  // The epoch keys in use: at most two (normally the current hour's and the previous one's), so bounded.
  readonly #keys = new Map<number, KeyObject>();

  constructor(secret: Uint8Array) {
    if (!(secret instanceof Uint8Array) || secret.length < NONCE_SECRET_MIN_BYTES) {
      throw new ControlError(`the nonce secret must be at least ${NONCE_SECRET_MIN_BYTES} octets`);
    }
    this.#secret = Buffer.from(secret);
  }

  /** The nonce text for `key` (a 16-octet address key as four words) at `nowMs` (Unix ms). */
  issue(key: Uint32Array, nowMs: number): string {
    const t = timeField(nowMs);
    return `a${t.toString(16).padStart(7, "0")}${this.tag(key, t).toString("hex")}`;
  }

  /** Whether `text` is a nonce issued for `key` within the last NONCE_LIFETIME_S seconds. */
  check(text: string, key: Uint32Array, nowMs: number): boolean {
    const m = NONCE_RE.exec(text);
    if (!m) return false;
    const t = Number.parseInt(m[1]!, 16);
    let age = timeField(nowMs) - t;
    if (age < -TIME_MOD / 2) age += TIME_MOD;
    else if (age >= TIME_MOD / 2) age -= TIME_MOD;
    if (age > NONCE_LIFETIME_S || age < -NONCE_FUTURE_SLACK_S) return false;
    return timingSafeEqual(this.tag(key, t), Buffer.from(m[2]!, "hex"));
  }

  private tag(key: Uint32Array, t: number): Buffer {
    const msg = Buffer.alloc(20);
    for (let w = 0; w < 4; w++) msg.writeUInt32BE(key[w]! >>> 0, 4 * w);
    msg.writeUInt32BE(t, 16);
    return createHmac("sha256", this.epochKey(Math.floor(t / NONCE_EPOCH_S)))
      .update(msg)
      .digest()
      .subarray(0, 8);
  }

  private epochKey(epoch: number): KeyObject {
    let k = this.#keys.get(epoch);
    if (k === undefined) {
      const e = Buffer.alloc(4);
      e.writeUInt32BE(epoch);
      k = createSecretKey(createHmac("sha256", this.#secret).update(LABEL).update(e).digest());
      // Keep the last two epochs used (insertion order): a valid nonce is never older than one change.
      if (this.#keys.size >= 2) this.#keys.delete(this.#keys.keys().next().value!);
      this.#keys.set(epoch, k);
    }
    return k;
  }
}

function timeField(nowMs: number): number {
  const s = Math.floor(nowMs / 1000);
  return s - Math.floor(s / TIME_MOD) * TIME_MOD;
}
