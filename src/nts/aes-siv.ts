// AEAD_AES_SIV_CMAC_256 (RFC 5297 §6.1, the AEAD every NTS implementation must offer: RFC 8915 §5.1), built
// on Node's AES: CMAC (RFC 4493) as CBC-MAC over AES-128 with a zero IV, and CTR mode for the cipher. Node's
// crypto has neither SIV nor CMAC; the npm packages that do are unmaintained or pull in a whole
// cryptography library, and these are a few dozen lines over primitives OpenSSL already does in hardware.
//
// SIV (RFC 5297 §2.6): the 256-bit key is two AES-128 keys, K1 for S2V (the synthetic IV, a CMAC over every
// associated-data component and the plaintext) and K2 for CTR. The tag V doubles as the IV, so a repeated
// nonce leaks only whether two messages were equal (misuse resistance: why NTS cookies can use it).
//
// Not on the plain NTP hot path: only NTS requests, which allocate anyway (Node's cipher objects).

import { createCipheriv, timingSafeEqual } from "node:crypto";
import { NtsError } from "./errors.ts";

/** RFC 5116 / IANA AEAD registry: AEAD_AES_SIV_CMAC_256, the one NTS requires (RFC 8915 §5.1). */
export const AEAD_AES_SIV_CMAC_256 = 15;
/** Its key: two AES-128 keys (RFC 5297 §6.1). */
export const SIV_KEY_LENGTH = 32;
/** The synthetic IV that leads every ciphertext (and is the whole of it for an empty plaintext). */
export const SIV_TAG_LENGTH = 16;

const BLOCK = 16;
const ZERO_IV = new Uint8Array(BLOCK);

/** Doubling in GF(2^128) (RFC 5297 §2.3): shift left one bit, xor 0x87 into the last octet on carry-out. */
function dbl(block: Uint8Array): Uint8Array {
  const out = new Uint8Array(BLOCK);
  const carry = block[0]! >> 7;
  for (let i = 0; i < BLOCK - 1; i++) out[i] = ((block[i]! << 1) | (block[i + 1]! >> 7)) & 0xff;
  out[BLOCK - 1] = ((block[BLOCK - 1]! << 1) & 0xff) ^ (carry * 0x87);
  return out;
}

function aesBlock(key: Uint8Array, block: Uint8Array): Uint8Array {
  const c = createCipheriv("aes-128-ecb", key, null);
  c.setAutoPadding(false);
  return c.update(block);
}

/** CMAC's subkeys K1 and K2 (RFC 4493 §2.3), from the encryption of the zero block. */
function subkeys(key: Uint8Array): [Uint8Array, Uint8Array] {
  const k1 = dbl(aesBlock(key, ZERO_IV));
  return [k1, dbl(k1)];
}

/**
 * AES-CMAC (RFC 4493) of the concatenation of `parts`: the last block xored with K1 when whole, padded
 * 10* and xored with K2 when not (or when the message is empty), then CBC-MAC over the lot.
 */
export function cmac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const blocks = total === 0 ? 1 : Math.ceil(total / BLOCK);
  const m = new Uint8Array(blocks * BLOCK);
  let off = 0;
  for (const p of parts) {
    m.set(p, off);
    off += p.length;
  }
  const [k1, k2] = subkeys(key);
  const last = (blocks - 1) * BLOCK;
  const whole = total > 0 && total % BLOCK === 0;
  if (!whole) m[total] = 0x80;
  const k = whole ? k1 : k2;
  for (let i = 0; i < BLOCK; i++) m[last + i]! ^= k[i]!;
  const c = createCipheriv("aes-128-cbc", key, ZERO_IV);
  c.setAutoPadding(false);
  const out = c.update(m);
  return new Uint8Array(out.subarray(out.length - BLOCK));
}

function xorInto(a: Uint8Array, b: Uint8Array): void {
  for (let i = 0; i < BLOCK; i++) a[i]! ^= b[i]!;
}

/** S2V (RFC 5297 §2.4): a CMAC-based PRF over a vector of strings, the plaintext last. */
function s2v(key: Uint8Array, ad: readonly Uint8Array[], plaintext: Uint8Array): Uint8Array {
  let d = cmac(key, ZERO_IV);
  for (const a of ad) {
    d = dbl(d);
    xorInto(d, cmac(key, a));
  }
  if (plaintext.length >= BLOCK) {
    // xorend: the last 16 octets of the plaintext xored with D.
    const t = new Uint8Array(plaintext);
    const at = t.length - BLOCK;
    for (let i = 0; i < BLOCK; i++) t[at + i]! ^= d[i]!;
    return cmac(key, t);
  }
  const t = dbl(d);
  const padded = new Uint8Array(BLOCK);
  padded.set(plaintext);
  padded[plaintext.length] = 0x80;
  xorInto(t, padded);
  return cmac(key, t);
}

/** AES-CTR from V with the two bits RFC 5297 §2.5 clears (so that implementations with 64-bit counters agree). */
function ctr(key: Uint8Array, v: Uint8Array, data: Uint8Array): Uint8Array {
  const q = new Uint8Array(v);
  q[8]! &= 0x7f;
  q[12]! &= 0x7f;
  const c = createCipheriv("aes-128-ctr", key, q);
  return new Uint8Array(c.update(data));
}

function checkKey(key: Uint8Array): void {
  if (key.length !== SIV_KEY_LENGTH) {
    throw new NtsError(
      "ERR_NTS_AEAD_ARGUMENT",
      `AES-SIV-CMAC-256 takes a ${SIV_KEY_LENGTH}-octet key, not ${key.length}`,
    );
  }
}

/**
 * SIV-ENCRYPT (RFC 5297 §2.6): V || (plaintext xor CTR(K2, V)), where V = S2V(K1, ad..., plaintext). As the
 * AEAD of RFC 5297 §6 (NTS's use), `ad` is [associated data, nonce]; an empty vector is deterministic SIV.
 */
export function sivEncrypt(key: Uint8Array, plaintext: Uint8Array, ad: readonly Uint8Array[]): Uint8Array {
  checkKey(key);
  const k1 = key.subarray(0, 16);
  const k2 = key.subarray(16, 32);
  const v = s2v(k1, ad, plaintext);
  const out = new Uint8Array(SIV_TAG_LENGTH + plaintext.length);
  out.set(v, 0);
  out.set(ctr(k2, v, plaintext), SIV_TAG_LENGTH);
  return out;
}

/**
 * SIV-DECRYPT (RFC 5297 §2.7): the plaintext, or null when the ciphertext is too short or its tag does not
 * match (anything tampered with: ciphertext, associated data, nonce or key). Never throws on network input.
 */
export function sivDecrypt(
  key: Uint8Array,
  sealed: Uint8Array,
  ad: readonly Uint8Array[],
): Uint8Array | null {
  checkKey(key);
  if (sealed.length < SIV_TAG_LENGTH) return null;
  const k1 = key.subarray(0, 16);
  const k2 = key.subarray(16, 32);
  const v = sealed.subarray(0, SIV_TAG_LENGTH);
  const plaintext = ctr(k2, v, sealed.subarray(SIV_TAG_LENGTH));
  const t = s2v(k1, ad, plaintext);
  return timingSafeEqual(t, v) ? plaintext : null;
}

/** AEAD_AES_SIV_CMAC_256 encryption with a nonce (RFC 5297 §6): S2V over [ad, nonce, plaintext]. */
export function aeadSeal(
  key: Uint8Array,
  nonce: Uint8Array,
  ad: Uint8Array,
  plaintext: Uint8Array,
): Uint8Array {
  return sivEncrypt(key, plaintext, [ad, nonce]);
}

/** The inverse of aeadSeal; null when anything does not authenticate. */
export function aeadOpen(
  key: Uint8Array,
  nonce: Uint8Array,
  ad: Uint8Array,
  sealed: Uint8Array,
): Uint8Array | null {
  return sivDecrypt(key, sealed, [ad, nonce]);
}
