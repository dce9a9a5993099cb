// Kiss-o'-death codes (RFC 5905 §7.4, plus NTSN from RFC 8915 §5.7) and reference identifiers (RFC 5905
// §7.3). A refid is 32 bits: at stratum 0 a kiss code and at stratum 1 a reference clock name, both four
// ASCII characters left-justified and NUL-padded; above that, the upstream server's IPv4 address or the
// first four octets of the MD5 hash of its IPv6 address.

import { createHash } from "node:crypto";
import { STRATUM_KISS } from "./constants.ts";
import { NtpValueError } from "./errors.ts";

/**
 * What a client must do on receiving the kiss: "stop" talking to that server (DENY, RSTR), "reduce" its
 * poll rate (RATE), or nothing beyond noting it ("info"). RFC 5905 §7.4 makes only DENY, RSTR and RATE
 * binding. NTSN (RFC 8915 §5.7) is "info" here: the NTS client refreshes its cookies, it does not stop.
 */
export type KissAction = "reduce" | "stop" | "info";

export interface KissCodeInfo {
  readonly code: string;
  readonly meaning: string;
  readonly action: KissAction;
}

/** RFC 5905 §7.4 Figure 13 and RFC 8915 §5.7, in our own words, in alphabetical order. */
export const KISS_CODES: readonly KissCodeInfo[] = Object.freeze(
  (
    [
      ["ACST", "the association belongs to a unicast server", "info"],
      ["AUTH", "server authentication failed", "info"],
      ["AUTO", "the Autokey sequence failed", "info"],
      ["BCST", "the association belongs to a broadcast server", "info"],
      ["CRYP", "cryptographic authentication or identification failed", "info"],
      ["DENY", "access denied by the server: stop sending to it", "stop"],
      ["DROP", "lost peer in symmetric mode", "info"],
      ["INIT", "the association has not yet synchronised for the first time", "info"],
      ["MCST", "the association belongs to a dynamically discovered server", "info"],
      ["NKEY", "no key found: never installed or not trusted", "info"],
      ["NTSN", "NTS negative acknowledgement: the cookie was not accepted, fetch new cookies", "info"],
      ["RATE", "rate exceeded: the server has temporarily denied access, poll less often", "reduce"],
      ["RMOT", "the association was altered from a remote host running ntpdc", "info"],
      ["RSTR", "access denied due to a local policy: stop sending to this server", "stop"],
      ["STEP", "a step change in system time happened and the association has not resynchronised", "info"],
    ] as const
  ).map(([code, meaning, action]) => Object.freeze({ code, meaning, action })),
);

const BY_CODE: ReadonlyMap<string, KissCodeInfo> = new Map(KISS_CODES.map((k) => [k.code, k]));

/** The table entry of a kiss code, or undefined for a code RFC 5905/8915 do not define. */
export function kissCodeInfo(code: string): KissCodeInfo | undefined {
  return BY_CODE.get(code);
}

// The hot-path forms: the four ASCII octets read as one big-endian uint32.
export const KISS_RATE = 0x52415445; // "RATE"
export const KISS_DENY = 0x44454e59; // "DENY"
export const KISS_RSTR = 0x52535452; // "RSTR"
export const KISS_NTSN = 0x4e54534e; // "NTSN"
export const KISS_INIT = 0x494e4954; // "INIT"
export const KISS_STEP = 0x53544550; // "STEP"

/**
 * A kiss code or stratum-1 refid ("RATE", "GPS", "PPS") as the uint32 its octets make, NUL-padded on the
 * right. Accepts 1-4 printable ASCII characters (0x20-0x7e); throws NtpValueError otherwise.
 */
export function kissCodeToUint32(code: string): number {
  if (code.length < 1 || code.length > 4) {
    throw new NtpValueError("ERR_NTP_INVALID_KISS_CODE", `kiss code/refid must be 1-4 characters: "${code}"`);
  }
  let n = 0;
  for (let i = 0; i < 4; i++) {
    const c = i < code.length ? code.charCodeAt(i) : 0;
    if (i < code.length && (c < 0x20 || c > 0x7e)) {
      throw new NtpValueError(
        "ERR_NTP_INVALID_KISS_CODE",
        `kiss code/refid must be printable ASCII: "${code}"`,
      );
    }
    n = n * 256 + c;
  }
  return n;
}

/**
 * The four octets of a uint32 as text, trailing NULs stripped. Other octets outside printable ASCII are
 * shown as \xHH, because refids come off the network and end up in logs and terminals.
 */
export function uint32ToKissCode(n: number): string {
  const v = n >>> 0;
  let end = 4;
  while (end > 0 && ((v >>> (8 * (4 - end))) & 0xff) === 0) end--;
  let s = "";
  for (let i = 0; i < end; i++) {
    const c = (v >>> (24 - 8 * i)) & 0xff;
    s +=
      c >= 0x20 && c <= 0x7e && c !== 0x5c ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, "0")}`;
  }
  return s;
}

/**
 * RFC 5905 §7.4: a reply with stratum 0 is a kiss-o'-death, its refid the kiss code. Callers check that the
 * packet is a reply (mode 4, or 2 in symmetric mode) and that its origin timestamp matches their request,
 * since an off-path attacker can forge one (RFC 8633 §3.2).
 */
export function isKissOfDeath(stratum: number): boolean {
  return stratum === STRATUM_KISS;
}

/** Parses a dotted-quad IPv4 address (four decimal octets, no leading zeros) to a uint32; -1 if invalid. */
function parseIPv4(addr: string): number {
  const parts = addr.split(".");
  if (parts.length !== 4) return -1;
  let n = 0;
  for (const p of parts) {
    // Leading zeros are refused: some parsers read "010" as octal, and a refid must not depend on whose.
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return -1;
    const v = Number(p);
    if (v > 255) return -1;
    n = n * 256 + v;
  }
  return n;
}

/**
 * RFC 5905 §7.3: at stratum 2 and above with an IPv4 upstream, the refid is its address. Throws NtpValueError
 * for anything but a dotted quad.
 */
export function refIdFromIPv4(addr: string): number {
  const n = parseIPv4(addr);
  if (n < 0) throw new NtpValueError("ERR_NTP_INVALID_ADDRESS", `not an IPv4 address: "${addr}"`);
  return n;
}

/**
 * Parses textual IPv6 (RFC 4291 §2.2: full, "::"-compressed, or with a trailing dotted quad; a "%zone"
 * suffix is ignored since it is not part of the address) into 16 octets. Returns null if invalid.
 */
export function parseIPv6(addr: string): Uint8Array | null {
  const zone = addr.indexOf("%");
  const text = zone >= 0 ? addr.slice(0, zone) : addr;
  if (zone === 0 || text.length === 0) return null;
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groups: number[][] = [];
  for (let h = 0; h < halves.length; h++) {
    const half = halves[h]!;
    const words: number[] = [];
    if (half.length > 0) {
      const pieces = half.split(":");
      for (let i = 0; i < pieces.length; i++) {
        const piece = pieces[i]!;
        // An embedded IPv4 address may only be the address's last 32 bits (RFC 4291 §2.2, form 3).
        if (h === halves.length - 1 && i === pieces.length - 1 && piece.includes(".")) {
          const v4 = parseIPv4(piece);
          if (v4 < 0) return null;
          words.push(v4 >>> 16, v4 & 0xffff);
        } else if (/^[0-9a-fA-F]{1,4}$/.test(piece)) {
          words.push(Number.parseInt(piece, 16));
        } else {
          return null;
        }
      }
    }
    groups.push(words);
  }
  const head = groups[0]!;
  const tail = groups[1];
  let words: number[];
  if (tail === undefined) {
    if (head.length !== 8) return null;
    words = head;
  } else {
    // "::" stands for at least one group of zeros (RFC 5952 §4.2.2 is about output; RFC 4291 lets it be one).
    const zeros = 8 - head.length - tail.length;
    if (zeros < 1) return null;
    words = [...head, ...new Array<number>(zeros).fill(0), ...tail];
  }
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = words[i]! >>> 8;
    out[2 * i + 1] = words[i]! & 0xff;
  }
  return out;
}

/**
 * RFC 5905 §7.3: with an IPv6 upstream, the refid is the first four octets of the MD5 digest of its
 * 128-bit address, read big-endian (the octets as they go on the wire). Throws NtpValueError if not IPv6.
 */
export function refIdFromIPv6(addr: string): number {
  const bytes = parseIPv6(addr);
  if (bytes === null) throw new NtpValueError("ERR_NTP_INVALID_ADDRESS", `not an IPv6 address: "${addr}"`);
  const d = createHash("md5").update(bytes).digest();
  return d.readUInt32BE(0);
}

/**
 * The refid for an upstream at either family. An IPv4-mapped IPv6 address (::ffff:a.b.c.d, as a dual-stack
 * socket reports IPv4 peers) gets the IPv4 refid, so the refid names the peer the same way however the
 * socket was opened.
 */
export function refIdFromAddress(addr: string): number {
  if (parseIPv4(addr) >= 0) return refIdFromIPv4(addr);
  const bytes = parseIPv6(addr);
  if (bytes === null) throw new NtpValueError("ERR_NTP_INVALID_ADDRESS", `not an IP address: "${addr}"`);
  let mapped = bytes[10] === 0xff && bytes[11] === 0xff;
  for (let i = 0; i < 10 && mapped; i++) mapped = bytes[i] === 0;
  if (mapped) return ((bytes[12]! << 24) | (bytes[13]! << 16) | (bytes[14]! << 8) | bytes[15]!) >>> 0;
  return refIdFromIPv6(addr);
}
