// The NTS cookie (RFC 8915 §6, its suggested format): all the server needs to answer a client, sealed so that
// only the server (or its fleet, sharing the keys) can open it, and the server keeps no state per client.
//
//   key id (4) | nonce (16) | AES-SIV(server key, nonce, AD = key id,
//                                     AEAD id (2) | zero (2) | C2S key (32) | S2C key (32))
//
// 104 octets: a multiple of 4, so the cookie fills its extension field with no padding to strip. The two
// zero octets are that padding, inside the seal (a cookie with them non-zero does not open).

import { randomBytes } from "node:crypto";
import { AEAD_AES_SIV_CMAC_256, SIV_KEY_LENGTH, SIV_TAG_LENGTH, SivKey } from "./aes-siv.ts";
import type { CookieKey, CookieKeys, ReadyCookieKey } from "./keys.ts";

const ID = 4;
const NONCE = 16;
const PLAIN = 4 + 2 * SIV_KEY_LENGTH;
/** Every cookie this server makes is this long. */
export const COOKIE_LENGTH = ID + NONCE + SIV_TAG_LENGTH + PLAIN;

/** What a cookie carries: the AEAD and the two keys of the client's NTS-KE session (RFC 8915 §5.1). */
export interface SessionKeys {
  readonly aead: number;
  /** Client to server: the request's authenticator. */
  readonly c2s: Uint8Array;
  /** Server to client: the reply's authenticator and its encrypted cookies. */
  readonly s2c: Uint8Array;
}

// Why a cookie did not open, for the counters.
export const COOKIE_OK = 0;
/** Its key id is none of ours (expired, or never ours). */
export const COOKIE_UNKNOWN_KEY = 1;
/** Wrong length, or it does not authenticate under the key it names (tampered, forged). */
export const COOKIE_BAD = 2;

/**
 * Seals a new cookie under `key` (the newest, CookieKeys#current, whose ciphers are kept; a bare CookieKey
 * makes them for this cookie).
 */
export function sealCookie(
  key: CookieKey | ReadyCookieKey,
  session: SessionKeys,
  random: (n: number) => Uint8Array = randomBytes,
): Uint8Array {
  const out = new Uint8Array(COOKIE_LENGTH);
  out[0] = key.id >>> 24;
  out[1] = (key.id >>> 16) & 0xff;
  out[2] = (key.id >>> 8) & 0xff;
  out[3] = key.id & 0xff;
  const nonce = random(NONCE);
  out.set(nonce, ID);
  const plain = new Uint8Array(PLAIN);
  plain[0] = session.aead >> 8;
  plain[1] = session.aead & 0xff;
  plain.set(session.c2s, 4);
  plain.set(session.s2c, 4 + SIV_KEY_LENGTH);
  const siv = "siv" in key ? key.siv : new SivKey(key.key);
  out.set(siv.seal(nonce, out.subarray(0, ID), plain), ID + NONCE);
  return out;
}

/** The result of opening a cookie: `status` is COOKIE_*; `session` is set when it is COOKIE_OK. */
export interface OpenedCookie {
  status: number;
  session: SessionKeys | undefined;
}

/** Opens a cookie with whichever of `keys` it names. Never throws on network input. */
export function openCookie(keys: CookieKeys, cookie: Uint8Array): OpenedCookie {
  if (cookie.length !== COOKIE_LENGTH) return { status: COOKIE_BAD, session: undefined };
  const id = ((cookie[0]! << 24) | (cookie[1]! << 16) | (cookie[2]! << 8) | cookie[3]!) >>> 0;
  const key = keys.byId(id);
  if (key === undefined) return { status: COOKIE_UNKNOWN_KEY, session: undefined };
  const plain = key.siv.open(
    cookie.subarray(ID, ID + NONCE),
    cookie.subarray(0, ID),
    cookie.subarray(ID + NONCE),
  );
  if (plain === null || plain[2] !== 0 || plain[3] !== 0) return { status: COOKIE_BAD, session: undefined };
  const aead = (plain[0]! << 8) | plain[1]!;
  if (aead !== AEAD_AES_SIV_CMAC_256) return { status: COOKIE_BAD, session: undefined };
  return {
    status: COOKIE_OK,
    session: {
      aead,
      c2s: plain.slice(4, 4 + SIV_KEY_LENGTH),
      s2c: plain.slice(4 + SIV_KEY_LENGTH),
    },
  };
}
