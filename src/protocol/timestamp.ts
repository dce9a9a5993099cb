// NTP time formats (RFC 5905 §6): the 64-bit timestamp (32-bit seconds since 1900 + 32-bit fraction) and
// the 32-bit short format (16.16 seconds). Our own time is Unix milliseconds held in a double, as
// Date.now() and performance.timeOrigin + performance.now() give it.
//
// Precision, worked out once so callers need not:
// - unixMsToNtp rounds to the nearest fraction unit (2^-32 s, 0.233 ns): error <= 0.117 ns. The split into
//   whole seconds and remainder is exact (Sterbenz; in the one second before 1970 it may be off by half an
//   ulp of 1000, 6e-14 ms), and the remainder is scaled by a power of two before the only rounded division.
// - ntpToUnixMs is correctly rounded: the seconds part is an exact integer multiple of 1000 and
//   fraction * 1000 / 2^32 is exact, so the one addition rounds once, <= half an ulp of the result.
// - So a round trip ms -> NTP -> ms is off by at most 1.17e-7 ms + 1 ulp(ms); for today's dates
//   (2^40 <= ms < 2^41, 2004-11 to 2039-09) an ulp is 2^-12 ms = 0.244 us: the double, not the NTP
//   format, is the limit.
//   test/protocol/timestamp.test.ts checks exactly this bound.
//
// The hot-path functions (write*/read*) take bytes and numbers and return numbers: no objects, arrays,
// BigInt, closures or DataView, so a reply is stamped without allocating.

import { NTP_ERA_SECONDS, NTP_UNIX_EPOCH_OFFSET } from "./constants.ts";
import { NtpValueError } from "./errors.ts";

/** A 64-bit NTP timestamp: both halves uint32. Era-less: it names an instant modulo 2^32 s. */
export type NtpTimestamp = { readonly seconds: number; readonly fraction: number };

export const ZERO_TIMESTAMP: NtpTimestamp = Object.freeze({ seconds: 0, fraction: 0 });

const TWO_32 = 4294967296;
const HALF_ERA = 2147483648;

export function timestampsEqual(a: NtpTimestamp, b: NtpTimestamp): boolean {
  return a.seconds === b.seconds && a.fraction === b.fraction;
}

/**
 * RFC 5905 §7.3: an all-zero timestamp means "unknown" (e.g. the origin of a client's first request), not
 * 1900 or 2036. Check it before converting: ntpToUnixMs would place it in the era nearest the pivot.
 */
export function isZeroTimestamp(ts: NtpTimestamp): boolean {
  return ts.seconds === 0 && ts.fraction === 0;
}

// The conversion core is shared by the object API and the hot path. It reports through a scratch typed
// array rather than returning an object: that keeps the hot path allocation-free (a module-level `let`
// holding a uint32 above 2^30 would box a fresh HeapNumber on every store). Single-threaded and never
// re-entered, so the slots cannot be clobbered between a write and its read.
const out = new Uint32Array(2); // [seconds, fraction]

/** Splits Unix ms into NTP seconds (mod 2^32) and the fraction rounded to nearest, into the slots. */
function splitUnixMs(ms: number): void {
  msCell[0] = ms;
  splitUnixMsCell(msCell, 0);
}

const msCell = new Float64Array(1);

/**
 * splitUnixMs of cell[index]. The hot path's form: a double passed as an argument to a function V8 does
 * not inline (a large caller runs out of inlining budget) is boxed, one heap allocation per call; a double
 * read from a typed array is not.
 */
function splitUnixMsCell(cell: Float64Array, index: number): void {
  const ms = cell[index]!;
  let secs = Math.floor(ms / 1000);
  // ms / 1000 can round up to the next integer when ms sits just below a multiple of 1000.
  let rem = ms - secs * 1000; // exact: see the header comment
  if (rem < 0) {
    secs -= 1;
    rem += 1000;
  }
  // rem * 2^32 is exact (power of two); the single division rounds once.
  let frac = Math.round((rem * TWO_32) / 1000);
  if (frac >= TWO_32) {
    frac -= TWO_32;
    secs += 1;
  }
  // RFC 5905 §6: the seconds field is the time since 1900 modulo 2^32 (era wraps in 2036, 2172, ...).
  out[0] = secs + NTP_UNIX_EPOCH_OFFSET; // a Uint32Array store is ToUint32: modulo 2^32, negatives too
  out[1] = frac;
}

/**
 * Unix ms of an era-less NTP timestamp: of all instants it could name (one per era), the one within
 * [-2^31, 2^31) seconds (about ±68 years) of the pivot's whole second (RFC 5905 §6, RFC 4330 §3).
 */
function joinToUnixMs(seconds: number, fraction: number, pivotUnixMs: number): number {
  const pivotNtp = Math.floor(pivotUnixMs / 1000) + NTP_UNIX_EPOCH_OFFSET;
  // Signed distance from the pivot's seconds to ours, modulo 2^32, into [-2^31, 2^31).
  let d = seconds - (pivotNtp - Math.floor(pivotNtp / NTP_ERA_SECONDS) * NTP_ERA_SECONDS);
  if (d >= HALF_ERA) d -= TWO_32;
  else if (d < -HALF_ERA) d += TWO_32;
  // Both terms exact (see the header comment); the sum rounds once.
  return (pivotNtp + d - NTP_UNIX_EPOCH_OFFSET) * 1000 + (fraction * 1000) / TWO_32;
}

/**
 * Unix ms (sub-ms part kept) to an NTP timestamp, era folded away. Throws NtpValueError if not finite.
 */
export function unixMsToNtp(ms: number): NtpTimestamp {
  if (!Number.isFinite(ms)) throw new NtpValueError("ERR_NTP_INVALID_ARGUMENT", `time not finite: ${ms}`);
  splitUnixMs(ms);
  return { seconds: out[0]!, fraction: out[1]! };
}

/**
 * An NTP timestamp to Unix ms, resolving the era as the one placing the result within ±2^31 s (68 years)
 * of `pivotUnixMs` (normally our own clock). Zero timestamps are not special-cased: see isZeroTimestamp.
 */
export function ntpToUnixMs(ts: NtpTimestamp, pivotUnixMs: number): number {
  return joinToUnixMs(ts.seconds, ts.fraction, pivotUnixMs);
}

function readU32(buf: Uint8Array, offset: number): number {
  return ((buf[offset]! << 24) | (buf[offset + 1]! << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!) >>> 0;
}

function writeU32(buf: Uint8Array, offset: number, value: number): void {
  buf[offset] = value >>> 24;
  buf[offset + 1] = (value >>> 16) & 0xff;
  buf[offset + 2] = (value >>> 8) & 0xff;
  buf[offset + 3] = value & 0xff;
}

/** Reads the 64-bit timestamp at `offset` (allocates the result object; not for the hot path). */
export function readNtpTimestamp(buf: Uint8Array, offset: number): NtpTimestamp {
  return { seconds: readU32(buf, offset), fraction: readU32(buf, offset + 4) };
}

/** Writes a 64-bit timestamp at `offset`. */
export function writeNtpTimestamp(buf: Uint8Array, offset: number, ts: NtpTimestamp): void {
  writeU32(buf, offset, ts.seconds);
  writeU32(buf, offset + 4, ts.fraction);
}

/**
 * HOT PATH. Writes Unix ms as a 64-bit NTP timestamp at `offset` (8 octets), allocating nothing. A NaN
 * writes seconds 0 (callers pass clock readings, which are finite).
 */
export function writeNtpTimestampFromUnixMs(buf: Uint8Array, offset: number, ms: number): void {
  splitUnixMs(ms);
  writeU32(buf, offset, out[0]!);
  writeU32(buf, offset + 4, out[1]!);
}

/**
 * HOT PATH. writeNtpTimestampFromUnixMs of the time in cell[index] (Unix ms): what code on the per-packet
 * path calls, so that no double crosses a call boundary (see splitUnixMsCell).
 */
export function writeNtpTimestampFromCell(
  buf: Uint8Array,
  offset: number,
  cell: Float64Array,
  index: number,
): void {
  splitUnixMsCell(cell, index);
  writeU32(buf, offset, out[0]!);
  writeU32(buf, offset + 4, out[1]!);
}

/**
 * HOT PATH. As writeNtpTimestampFromUnixMs, but the fraction bits finer than the clock's precision are
 * replaced by the low bits of `randomLow` (a uint32 from the caller's generator). `precision` is the
 * header's precision field: log2 seconds, e.g. -20 for a microsecond clock, which leaves 32 - 20 = 12
 * fraction bits random. RFC 5905 §6 suggests filling the bits beyond the clock's precision with random
 * ones; it also keeps a server's exact read times from being guessed, as chrony and ntpd do. precision >= 0
 * randomises the whole fraction; precision <= -32 none of it. The result lies within one precision step at
 * or above the time truncated to that step, so it is unbiased on average.
 */
export function writeNtpTimestampFromUnixMsFuzzed(
  buf: Uint8Array,
  offset: number,
  ms: number,
  randomLow: number,
  precision: number,
): void {
  splitUnixMs(ms);
  const noiseBits = precision >= 0 ? 32 : precision <= -32 ? 0 : 32 + precision;
  const mask = noiseBits === 32 ? 0xffffffff : ((1 << noiseBits) - 1) >>> 0;
  writeU32(buf, offset, out[0]!);
  writeU32(buf, offset + 4, ((out[1]! & ~mask) | (randomLow & mask)) >>> 0);
}

/** HOT PATH. Reads the 64-bit timestamp at `offset` as Unix ms, era resolved near the pivot (see ntpToUnixMs). */
export function readNtpTimestampToUnixMs(buf: Uint8Array, offset: number, pivotUnixMs: number): number {
  return joinToUnixMs(readU32(buf, offset), readU32(buf, offset + 4), pivotUnixMs);
}

/** HOT PATH. True when the 8 octets at `offset` are all zero (an unset timestamp, RFC 5905 §7.3). */
export function isZeroTimestampAt(buf: Uint8Array, offset: number): boolean {
  return (readU32(buf, offset) | readU32(buf, offset + 4)) === 0;
}

/** The largest value the 16.16 short format holds: 0xffffffff / 2^16 = 65535.9999847 s. */
export const SHORT_MAX_SECONDS = 0xffffffff / 65536;

/** RFC 5905 §6 short format (16.16 unsigned fixed point, as in root delay/dispersion) to seconds. */
export function shortToSeconds(u32: number): number {
  return (u32 >>> 0) / 65536;
}

/**
 * Seconds to the 16.16 short format, clamped to [0, SHORT_MAX_SECONDS] (NaN gives 0). Rounded up: root
 * delay and dispersion are error bounds, and a bound rounded down would understate the error.
 */
export function secondsToShort(s: number): number {
  if (!(s > 0)) return 0;
  if (s >= SHORT_MAX_SECONDS) return 0xffffffff;
  return Math.ceil(s * 65536); // s * 2^16 is exact, and below 2^32 - 1 here
}
