// The NTP control message (mode 6) codec: the 12-octet header, fragmentation of a reply's data over several
// datagrams, and the text forms that ride in the data (name=value lists, l_fp timestamps in hex). Defined
// by RFC 1305 Appendix B, described again for NTPv4 in RFC 9327 (historic); the MRU and nonce opcodes (10,
// 12) are ntpd's later additions, documented by NTPsec's ntpq manual and observed on the wire from ntpq.
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |LI | VN  |Mode |R|E|M| OpCode  |        Sequence Number        |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |            Status             |        Association ID         |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |            Offset             |             Count             |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |        Data (Count octets, padded to a multiple of 4)       ...
//
// R is set in responses, E in error responses (the error code is then the status word's high octet), M on
// every fragment but the last. A reply's data is cut into fragments of at most 468 octets; each carries
// the offset of its first octet in the whole, so the client can put them back in order. Every datagram is
// padded with zeros to a multiple of 4 octets (ntpq rejects one that is not); the padding is not counted.
//
// Mode 6 is rare and off the hot path: these functions allocate freely.

import { NTP_UNIX_EPOCH_OFFSET } from "../protocol/constants.ts";

/** Octets of the control header. */
export const CTL_HEADER_LENGTH = 12;
/** Most data octets in one fragment (RFC 1305 Appendix B; ntpq's CTL_MAX_DATA_LEN). */
export const CTL_MAX_DATA = 468;

// The R, E and M bits of the second octet, and the opcode below them.
export const CTL_RESPONSE = 0x80;
export const CTL_ERROR = 0x40;
export const CTL_MORE = 0x20;
export const CTL_OP_MASK = 0x1f;

// Opcodes (RFC 9327 §2 table; 8-12 are ntpd's).
export const CTL_OP_READSTAT = 1;
export const CTL_OP_READVAR = 2;
export const CTL_OP_WRITEVAR = 3;
export const CTL_OP_READCLOCK = 4;
export const CTL_OP_WRITECLOCK = 5;
export const CTL_OP_SETTRAP = 6;
export const CTL_OP_ASYNCMSG = 7;
export const CTL_OP_CONFIGURE = 8;
export const CTL_OP_SAVECONFIG = 9;
export const CTL_OP_READ_MRU = 10;
export const CTL_OP_READ_ORDLIST = 11;
export const CTL_OP_REQ_NONCE = 12;
export const CTL_OP_UNSETTRAP = 31;

// Error codes, carried in the status word's high octet of an E response (RFC 9327 §3.2).
export const CERR_UNSPEC = 0;
export const CERR_PERMISSION = 1;
export const CERR_BADFMT = 2;
export const CERR_BADOP = 3;
export const CERR_BADASSOC = 4;
export const CERR_UNKNOWNVAR = 5;
export const CERR_BADVALUE = 6;

/** ntpq's names of the error codes, for messages and tests. */
export const CERR_NAMES: readonly string[] = Object.freeze([
  "UNSPEC",
  "PERMISSION",
  "BADFMT",
  "BADOP",
  "BADASSOC",
  "UNKNOWNVAR",
  "BADVALUE",
]);

/** A request's header fields and its data as text (Latin-1: the protocol's text is ASCII). */
export interface ControlRequest {
  version: number;
  opcode: number;
  /** The M bit: a fragmented request (never sent by ntpq; refused). */
  more: boolean;
  sequence: number;
  status: number;
  associd: number;
  offset: number;
  count: number;
  /** The `count` data octets as text. */
  data: string;
}

// Why a datagram is not a request we can answer at all (no reply of any kind).
export const PARSE_OK = 0;
/** Under 12 octets, or count beyond the datagram. */
export const PARSE_TRUNCATED = 1;
/** Not mode 6 (mode 7 is ntpd's private mode, monlist: never answered). */
export const PARSE_NOT_CONTROL = 2;
/** The R or E bit is set: a response, which answering could turn into a loop between two servers. */
export const PARSE_IS_RESPONSE = 3;
/** Version 0 or above 4. */
export const PARSE_BAD_VERSION = 4;

function u16(buf: Uint8Array, at: number): number {
  return (buf[at]! << 8) | buf[at + 1]!;
}

function putU16(buf: Uint8Array, at: number, v: number): void {
  buf[at] = (v >>> 8) & 0xff;
  buf[at + 1] = v & 0xff;
}

/**
 * Reads the header of buf[0..length). Returns the request, or a PARSE_* code saying why the datagram gets
 * no reply at all. Trailing octets beyond `count` (padding, a MAC) are ignored.
 */
export function parseControlRequest(buf: Uint8Array, length: number): ControlRequest | number {
  const n = Math.min(length, buf.length);
  if (n < 1) return PARSE_TRUNCATED;
  if ((buf[0]! & 7) !== 6) return PARSE_NOT_CONTROL;
  if (n < CTL_HEADER_LENGTH) return PARSE_TRUNCATED;
  const version = (buf[0]! >> 3) & 7;
  if (version < 1 || version > 4) return PARSE_BAD_VERSION;
  const op = buf[1]!;
  if ((op & (CTL_RESPONSE | CTL_ERROR)) !== 0) return PARSE_IS_RESPONSE;
  const count = u16(buf, 10);
  if (CTL_HEADER_LENGTH + count > n) return PARSE_TRUNCATED;
  let data = "";
  for (let i = 0; i < count; i++) data += String.fromCharCode(buf[CTL_HEADER_LENGTH + i]!);
  return {
    version,
    opcode: op & CTL_OP_MASK,
    more: (op & CTL_MORE) !== 0,
    sequence: u16(buf, 2),
    status: u16(buf, 4),
    associd: u16(buf, 6),
    offset: u16(buf, 8),
    count,
    data,
  };
}

/** The header fields every datagram of one reply shares. */
export interface ReplyHeader {
  leap: number;
  version: number;
  opcode: number;
  sequence: number;
  status: number;
  associd: number;
}

function header(out: Uint8Array, h: ReplyHeader, flags: number, offset: number, count: number): void {
  out[0] = ((h.leap & 3) << 6) | ((h.version & 7) << 3) | 6;
  out[1] = CTL_RESPONSE | flags | (h.opcode & CTL_OP_MASK);
  putU16(out, 2, h.sequence);
  putU16(out, 4, h.status);
  putU16(out, 6, h.associd);
  putU16(out, 8, offset);
  putU16(out, 10, count);
}

/** Length of a datagram with `count` data octets: header plus data, padded to a multiple of 4. */
export function paddedLength(count: number): number {
  return (CTL_HEADER_LENGTH + count + 3) & ~3;
}

/**
 * The datagrams of a reply carrying `data`: fragments of at most CTL_MAX_DATA octets, M set on all but the
 * last, each padded to a multiple of 4. An empty reply is one header-only datagram. Data beyond 65535
 * octets cannot be addressed by the 16-bit offset: callers keep far below it (32 fragments at most).
 */
export function fragmentReply(h: ReplyHeader, data: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let offset = 0;
  do {
    const count = Math.min(CTL_MAX_DATA, data.length - offset);
    const last = offset + count >= data.length;
    const d = new Uint8Array(paddedLength(count));
    header(d, h, last ? 0 : CTL_MORE, offset, count);
    d.set(data.subarray(offset, offset + count), CTL_HEADER_LENGTH);
    out.push(d);
    offset += count;
  } while (offset < data.length);
  return out;
}

/** The number of datagrams fragmentReply makes of `dataLength` octets. */
export function fragmentCount(dataLength: number): number {
  return Math.max(1, Math.ceil(dataLength / CTL_MAX_DATA));
}

/** Total octets on the wire of a reply carrying `dataLength` octets of data. */
export function replyWireLength(dataLength: number): number {
  const full = Math.floor(dataLength / CTL_MAX_DATA);
  const rest = dataLength - full * CTL_MAX_DATA;
  if (dataLength > 0 && rest === 0) return full * paddedLength(CTL_MAX_DATA);
  return full * paddedLength(CTL_MAX_DATA) + paddedLength(rest);
}

/** An error response: header only (12 octets), E set, the code in the status word's high octet. */
export function errorReply(h: ReplyHeader, code: number): Uint8Array {
  const d = new Uint8Array(CTL_HEADER_LENGTH);
  header(d, { ...h, status: (code & 0xff) << 8 }, CTL_ERROR, 0, 0);
  return d;
}

/** Text to octets (Latin-1; every character we write is ASCII). */
export function textBytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i) & 0xff;
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// l_fp timestamps as text: "0x" + 8 hex digits of NTP seconds + "." + 8 hex digits of fraction, as ntpd
// writes reftime, clock and the MRU times, and as ntpq reads them back (it places the era near its own
// clock).

const TWO_32 = 4294967296;

function hex8(v: number): string {
  return (v >>> 0).toString(16).padStart(8, "0");
}

/**
 * Unix seconds (fractional) as l_fp text, era folded away (RFC 5905 §6). The same double always gives the
 * same text, which the MRU continuation relies on (a record is recognised by its last time).
 */
export function lfpText(unixSeconds: number): string {
  let secs = Math.floor(unixSeconds);
  let frac = Math.floor((unixSeconds - secs) * TWO_32);
  if (frac >= TWO_32) {
    frac -= TWO_32;
    secs += 1;
  }
  const ntp = secs + NTP_UNIX_EPOCH_OFFSET;
  return `0x${hex8(ntp - Math.floor(ntp / TWO_32) * TWO_32)}.${hex8(frac)}`;
}

const LFP_RE = /^0x([0-9a-f]{1,8})\.([0-9a-f]{1,8})$/i;

/** Parses l_fp text into [seconds, fraction] (both uint32), or undefined if it is not l_fp text. */
export function parseLfpText(text: string): [number, number] | undefined {
  const m = LFP_RE.exec(text.trim());
  if (!m) return undefined;
  return [Number.parseInt(m[1]!, 16), Number.parseInt(m[2]!, 16)];
}

// ---------------------------------------------------------------------------------------------------------
// name=value lists.

/** One item of a request's variable list: `name` or `name=value`. */
export interface RequestVar {
  name: string;
  value: string | undefined;
}

/**
 * Splits a request's data into its comma-separated items (commas inside double quotes do not split),
 * trimming blanks and dropping NULs and empty items. Returns undefined if a quote is left open.
 */
export function parseVarList(text: string): RequestVar[] | undefined {
  const out: RequestVar[] = [];
  let item = "";
  let quoted = false;
  const flush = () => {
    const t = item.trim();
    item = "";
    if (t === "") return;
    const eq = t.indexOf("=");
    if (eq < 0) out.push({ name: t, value: undefined });
    else out.push({ name: t.slice(0, eq).trim(), value: t.slice(eq + 1).trim() });
  };
  for (const c of text) {
    if (c === '"') quoted = !quoted;
    if (c === "," && !quoted) flush();
    else if (c !== "\0") item += c;
  }
  if (quoted) return undefined;
  flush();
  return out;
}

/**
 * Builds a reply's name=value list the way ntpd lays it out: items separated by ", ", and a line break
 * (",\r\n") before an item that would take a line past 72 columns, so raw output stays readable.
 */
export class VarText {
  text = "";
  private column = 0;

  /** Appends `name=value` (value already formatted: quoted strings include their quotes). */
  add(name: string, value: string): void {
    this.addItem(`${name}=${value}`);
  }

  /** Appends a bare item. */
  addItem(item: string): void {
    if (this.text.length > 0) {
      if (this.column + 2 + item.length > 72) {
        this.text += ",\r\n";
        this.column = 0;
      } else {
        this.text += ", ";
        this.column += 2;
      }
    }
    this.text += item;
    this.column += item.length;
  }

  /** Length of the text if `item` were added next (for fitting a reply into its fragments). */
  lengthWith(item: string): number {
    return this.text.length === 0 ? item.length : this.text.length + 3 + item.length;
  }
}

/** A string value as ntpd quotes it: in double quotes, with any quote or control character dropped. */
export function quoted(s: string): string {
  let out = "";
  for (const c of s) {
    const code = c.charCodeAt(0);
    if (code >= 0x20 && code < 0x7f && c !== '"') out += c;
  }
  return `"${out}"`;
}
