// AEAD_AES_SIV_CMAC_256 (RFC 5297 §6.1, the AEAD every NTS implementation must offer: RFC 8915 §5.1), built
// on Node's AES: CMAC (RFC 4493) and CTR mode over AES-128. Node's crypto has neither SIV nor CMAC; the npm
// packages that do are unmaintained or pull in a whole cryptography library, and these are a few dozen
// lines over the AES that OpenSSL already does in hardware.
//
// SIV (RFC 5297 §2.6): the 256-bit key is two AES-128 keys, K1 for S2V (the synthetic IV, a CMAC over every
// associated-data component and the plaintext) and K2 for CTR. The tag V doubles as the IV, so a repeated
// nonce leaks only whether two messages were equal (misuse resistance: why NTS cookies can use it).
//
// Cost: making a Node cipher object (an OpenSSL context and its key schedule) costs more than encrypting a
// whole NTS packet, so an SivKey makes two, once, and keeps them: a CBC cipher under K1 for every CMAC and
// an ECB cipher under K2 for CTR's key stream. Neither is ever finalised. The CBC cipher's chaining value
// carries over from one update to the next; a CMAC starts by xoring the last ciphertext block into its
// first block, which is the same as starting from a zero IV. A server key (its cookies) keeps its SivKey
// for its life; a session's keys make theirs once per request.

import { type Cipheriv, createCipheriv, timingSafeEqual } from "node:crypto";
import { NtsError } from "./errors.ts";

/** RFC 5116 / IANA AEAD registry: AEAD_AES_SIV_CMAC_256, the one NTS requires (RFC 8915 §5.1). */
export const AEAD_AES_SIV_CMAC_256 = 15;
/** Its key: two AES-128 keys (RFC 5297 §6.1). */
export const SIV_KEY_LENGTH = 32;
/** The synthetic IV that leads every ciphertext (and is the whole of it for an empty plaintext). */
export const SIV_TAG_LENGTH = 16;

const BLOCK = 16;
const ZERO = new Uint8Array(BLOCK);

/** Doubling in GF(2^128) (RFC 5297 §2.3): shift left one bit, xor 0x87 into the last octet on carry-out. */
function dbl(block: Uint8Array): Uint8Array {
  const out = new Uint8Array(BLOCK);
  const carry = block[0]! >> 7;
  for (let i = 0; i < BLOCK - 1; i++) out[i] = ((block[i]! << 1) | (block[i + 1]! >> 7)) & 0xff;
  out[BLOCK - 1] = ((block[BLOCK - 1]! << 1) & 0xff) ^ (carry * 0x87);
  return out;
}

function xorInto(a: Uint8Array, b: Uint8Array): void {
  for (let i = 0; i < BLOCK; i++) a[i]! ^= b[i]!;
}

/** AES-CMAC (RFC 4493) under one AES-128 key, on one long-lived CBC cipher (see the header). */
class Cmac {
  private readonly cbc: Cipheriv;
  /** The CBC chaining value: the last ciphertext block produced. */
  private readonly chain = new Uint8Array(BLOCK);
  private readonly k1: Uint8Array;
  private readonly k2: Uint8Array;

  constructor(key: Uint8Array) {
    this.cbc = createCipheriv("aes-128-cbc", key, ZERO);
    this.cbc.setAutoPadding(false);
    // RFC 4493 §2.3: L = AES(K, 0); K1 = dbl(L); K2 = dbl(K1).
    const l = this.encryptChained(new Uint8Array(BLOCK));
    this.k1 = dbl(l);
    this.k2 = dbl(this.k1);
  }

  /** CBC over `m` (whole blocks, modified in place) as if from a zero IV; returns the last block. */
  private encryptChained(m: Uint8Array): Uint8Array {
    xorInto(m, this.chain);
    const out = this.cbc.update(m);
    this.chain.set(out.subarray(out.length - BLOCK));
    return new Uint8Array(this.chain);
  }

  /** The CMAC of the concatenation of `parts`. */
  mac(...parts: Uint8Array[]): Uint8Array {
    let total = 0;
    for (const p of parts) total += p.length;
    const blocks = total === 0 ? 1 : Math.ceil(total / BLOCK);
    const m = new Uint8Array(blocks * BLOCK);
    let off = 0;
    for (const p of parts) {
      m.set(p, off);
      off += p.length;
    }
    // A whole last block is xored with K1; a partial (or empty) one is padded 10* and xored with K2.
    const whole = total > 0 && total % BLOCK === 0;
    if (!whole) m[total] = 0x80;
    const k = whole ? this.k1 : this.k2;
    const last = (blocks - 1) * BLOCK;
    for (let i = 0; i < BLOCK; i++) m[last + i]! ^= k[i]!;
    return this.encryptChained(m);
  }
}

/** An AES-SIV-CMAC-256 key, ready: its CMAC and CTR ciphers made once. */
export class SivKey {
  private readonly cmac: Cmac;
  private readonly ecb: Cipheriv;

  constructor(key: Uint8Array) {
    if (key.length !== SIV_KEY_LENGTH) {
      throw new NtsError(
        "ERR_NTS_AEAD_ARGUMENT",
        `AES-SIV-CMAC-256 takes a ${SIV_KEY_LENGTH}-octet key, not ${key.length}`,
      );
    }
    this.cmac = new Cmac(key.subarray(0, 16));
    this.ecb = createCipheriv("aes-128-ecb", key.subarray(16, 32), null);
    this.ecb.setAutoPadding(false);
    this.d0 = this.cmac.mac(ZERO);
  }

  /** S2V's first step, CMAC(K1, <zero>): the same for every message under this key, so made once. */
  private readonly d0: Uint8Array;

  /** S2V (RFC 5297 §2.4): a CMAC-based PRF over a vector of strings, the plaintext last. */
  private s2v(ad: readonly Uint8Array[], plaintext: Uint8Array): Uint8Array {
    let d = this.d0;
    for (const a of ad) {
      d = dbl(d);
      xorInto(d, this.cmac.mac(a));
    }
    if (plaintext.length >= BLOCK) {
      // xorend: D xored into the last 16 octets of the plaintext.
      const t = new Uint8Array(plaintext);
      const at = t.length - BLOCK;
      for (let i = 0; i < BLOCK; i++) t[at + i]! ^= d[i]!;
      return this.cmac.mac(t);
    }
    const t = dbl(d);
    const padded = new Uint8Array(BLOCK);
    padded.set(plaintext);
    padded[plaintext.length] = 0x80;
    xorInto(t, padded);
    return this.cmac.mac(t);
  }

  /**
   * CTR from V with the two bits RFC 5297 §2.5 clears. Clearing bit 31 is what lets the counter be the low
   * 32-bit word alone: no carry out of it within 2^31 blocks.
   */
  private ctr(v: Uint8Array, data: Uint8Array): Uint8Array {
    const n = Math.ceil(data.length / BLOCK);
    const counters = new Uint8Array(n * BLOCK);
    const q = new Uint8Array(v);
    q[8]! &= 0x7f;
    q[12]! &= 0x7f;
    const view = new DataView(q.buffer);
    const low = view.getUint32(12);
    for (let i = 0; i < n; i++) {
      view.setUint32(12, (low + i) >>> 0);
      counters.set(q, i * BLOCK);
    }
    const stream = this.ecb.update(counters);
    const out = new Uint8Array(data.length);
    for (let i = 0; i < data.length; i++) out[i] = data[i]! ^ stream[i]!;
    return out;
  }

  /** SIV-ENCRYPT (RFC 5297 §2.6): V || (plaintext xor CTR(K2, V)), V = S2V(K1, ad..., plaintext). */
  encrypt(plaintext: Uint8Array, ad: readonly Uint8Array[]): Uint8Array {
    const v = this.s2v(ad, plaintext);
    const out = new Uint8Array(SIV_TAG_LENGTH + plaintext.length);
    out.set(v, 0);
    out.set(this.ctr(v, plaintext), SIV_TAG_LENGTH);
    return out;
  }

  /** SIV-DECRYPT (RFC 5297 §2.7): the plaintext, or null when it does not authenticate. Never throws. */
  decrypt(sealed: Uint8Array, ad: readonly Uint8Array[]): Uint8Array | null {
    if (sealed.length < SIV_TAG_LENGTH) return null;
    const v = sealed.subarray(0, SIV_TAG_LENGTH);
    const plaintext = this.ctr(v, sealed.subarray(SIV_TAG_LENGTH));
    return timingSafeEqual(this.s2v(ad, plaintext), v) ? plaintext : null;
  }

  /** AEAD_AES_SIV_CMAC_256 (RFC 5297 §6): S2V over [ad, nonce, plaintext]. */
  seal(nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    return this.encrypt(plaintext, [ad, nonce]);
  }

  /** The inverse of seal; null when anything does not authenticate. */
  open(nonce: Uint8Array, ad: Uint8Array, sealed: Uint8Array): Uint8Array | null {
    return this.decrypt(sealed, [ad, nonce]);
  }
}

/** AES-CMAC (RFC 4493) of the concatenation of `parts` under a 16-octet key. */
export function cmac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  return new Cmac(key).mac(...parts);
}

/** SIV-ENCRYPT with a key used once (SivKey keeps it for more). */
export function sivEncrypt(key: Uint8Array, plaintext: Uint8Array, ad: readonly Uint8Array[]): Uint8Array {
  return new SivKey(key).encrypt(plaintext, ad);
}

/** SIV-DECRYPT with a key used once; null when it does not authenticate. */
export function sivDecrypt(
  key: Uint8Array,
  sealed: Uint8Array,
  ad: readonly Uint8Array[],
): Uint8Array | null {
  return new SivKey(key).decrypt(sealed, ad);
}

/** AEAD_AES_SIV_CMAC_256 encryption with a nonce (RFC 5297 §6), with a key used once. */
export function aeadSeal(
  key: Uint8Array,
  nonce: Uint8Array,
  ad: Uint8Array,
  plaintext: Uint8Array,
): Uint8Array {
  return new SivKey(key).seal(nonce, ad, plaintext);
}

/** The inverse of aeadSeal; null when anything does not authenticate. */
export function aeadOpen(
  key: Uint8Array,
  nonce: Uint8Array,
  ad: Uint8Array,
  sealed: Uint8Array,
): Uint8Array | null {
  return new SivKey(key).open(nonce, ad, sealed);
}
