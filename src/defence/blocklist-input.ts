// What an operator may put on the blocklist (paper §11), checked the same way whichever way it comes in:
// `ntpshield blocklist add` and POST /api/blocklist both call checkManualEntry. Refused: addresses no
// client sends from (unspecified, broadcast, multicast), which would only hide a typo; a "%zone", which the
// 16-byte key has no room for, so a silent drop would block the address on every link. Warned, not
// refused: a loopback address or one the server listens on, since that cuts the operator off from their
// own server (often by surprise, when "::ffff:127.0.0.1" is kept as the same client 127.0.0.1).

import { isIPv4Key } from "./address-key.ts";
import { BlocklistError, canonicalAddress, keyFromAddress } from "./blocklist.ts";

/** The longest reason kept, in UTF-16 code units (what JavaScript's length counts). */
export const REASON_MAX = 200;

/** An entry an operator asked for, checked: canonical address, reason, and what they should know. */
export interface ManualEntry {
  address: string;
  reason: string;
  /** Said to the operator (HTTP: the 201 body's `warnings`; CLI: stderr), the entry is added anyway. */
  warnings: string[];
}

/**
 * Checks an address and a reason given by hand. `own` are the server's own addresses (any text form;
 * src/server/blocklist/own-addresses.ts finds them). Throws BlocklistError with a message for
 * the operator.
 */
export function checkManualEntry(address: string, reason: string, own: readonly string[] = []): ManualEntry {
  const text = String(address);
  if (text.includes("%")) {
    throw new BlocklistError(
      text,
      "has a zone (%...): zones are not kept, and the address would be blocked on every link; " +
        "write it without the zone if that is what you want",
    );
  }
  const key = keyFromAddress(text);
  const canonical = canonicalAddress(text);
  const v4 = isIPv4Key(key);
  const w0 = key[0]!;
  const w3 = key[3]!;
  if (v4 ? w3 === 0 : (w0 | key[1]! | key[2]! | w3) === 0)
    throw new BlocklistError(text, "is the unspecified address: no client sends from it");
  if (v4 && w3 === 0xffffffff)
    throw new BlocklistError(text, "is the broadcast address: no client sends from it");
  if (v4 ? w3 >>> 28 === 0xe : w0 >>> 24 === 0xff)
    throw new BlocklistError(text, "is a multicast address: no client sends from it");

  const warnings: string[] = [];
  const given = text
    .trim()
    .replace(/^\[|\]$/g, "")
    .toLowerCase();
  const as = given === canonical ? "" : ` (given as ${given}, kept as ${canonical}: the same client)`;
  if (v4 ? w3 >>> 24 === 127 : w0 === 0 && key[1] === 0 && key[2] === 0 && w3 === 1) {
    warnings.push(
      `${canonical} is a loopback address${as}: blocking it cuts off clients on this machine, ` +
        "the operator's own tools included",
    );
  } else if (own.some((a) => sameAddress(a, canonical))) {
    warnings.push(`${canonical} is an address of this server${as}: blocking it may cut you off from it`);
  }
  return { address: canonical, reason: checkReason(reason), warnings };
}

/** A reason of at most REASON_MAX characters without control characters (NUL would be cut by SQLite). */
export function checkReason(reason: string): string {
  if (typeof reason !== "string") throw new BlocklistError(String(reason), "is not a reason (text)");
  if (reason.length > REASON_MAX) {
    throw reasonError(`reason: ${reason.length} characters, at most ${REASON_MAX} are kept; shorten it`);
  }
  for (let i = 0; i < reason.length; i++) {
    const c = reason.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) {
      const u = `U+${c.toString(16).toUpperCase().padStart(4, "0")}`;
      throw reasonError(
        `reason: control character ${u} at position ${i + 1}; write the reason on one line without control characters`,
      );
    }
  }
  return reason;
}

function reasonError(message: string): BlocklistError {
  const e = new BlocklistError("", "");
  e.message = message;
  return e;
}

function sameAddress(text: string, canonical: string): boolean {
  try {
    return canonicalAddress(text) === canonical;
  } catch {
    return false; // a host name: not ours to resolve
  }
}
