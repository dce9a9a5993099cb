// NTP control messages (mode 6): the part of RFC 1305 Appendix B / RFC 9327 and of ntpd's additions that
// NTPsec's ntpq needs for `rv` (system variables), `sysstats`, `monstats`, `peers` (an empty list) and
// `mrulist` (the MRU list, paper §5). Pure: a request's bytes, its source, the time and a context in; the
// reply datagrams out. No sockets, no clock reads; the worker sends what this returns.
//
// Security (docs/ntpq.md has the reasoning):
//
// - Only addresses the context allows get anything at all (the lead wires it to the access list's noquery
//   flag and a control allow list, 127.0.0.1 and ::1 by default). Everyone else gets silence, so probing a
//   server for mode 6 learns nothing.
// - Mode 7 (ntpd's private mode: monlist, the CVE-2013-5211 amplifier) is never answered; neither is any
//   other mode, nor a mode 6 response (answering responses could start a loop between two servers).
// - No reply is larger than its request until the requester has proven it owns its address. The proof is
//   the nonce handshake (nonce.ts): a READ_MRU request must quote a nonce this server sent to that address.
//   Loopback sources (127.0.0.0/8, ::1) count as proven: a reply to a loopback address never leaves this
//   host, so it cannot be aimed at a third party whoever sent the request (and Linux refuses loopback
//   sources arriving on any other interface). NTPsec's ntpq needs this: its rv and nonce requests are
//   12 octets, their replies larger. From any other allowed address, a reply that would be larger than the
//   request it answers is replaced by a 12-octet PERMISSION error; the check is made here, on the finished
//   reply, for every opcode, so no handler can get around it.

import type { MruList } from "../defence/mru.ts";
import {
  CERR_BADASSOC,
  CERR_BADFMT,
  CERR_BADOP,
  CERR_PERMISSION,
  CERR_UNKNOWNVAR,
  type ControlRequest,
  CTL_OP_CONFIGURE,
  CTL_OP_READ_MRU,
  CTL_OP_READSTAT,
  CTL_OP_READVAR,
  CTL_OP_REQ_NONCE,
  CTL_OP_SAVECONFIG,
  CTL_OP_SETTRAP,
  CTL_OP_UNSETTRAP,
  CTL_OP_WRITECLOCK,
  CTL_OP_WRITEVAR,
  errorReply,
  fragmentReply,
  lfpText,
  PARSE_IS_RESPONSE,
  PARSE_NOT_CONTROL,
  parseControlRequest,
  parseVarList,
  type ReplyHeader,
  textBytes,
} from "./codec.ts";
import { parseMruRequest, readMruList } from "./mrulist.ts";
import type { NonceKeeper } from "./nonce.ts";
import { type MruInfo, type SystemInfo, systemStatus, systemVariablesText } from "./sysvars.ts";

/** Where a request came from: its address key (src/defence/address-key.ts) and port. */
export interface ControlSource {
  key: Uint32Array;
  port: number;
}

/** What the handler needs from the server. */
export interface ControlContext {
  /**
   * Whether `key` may use mode 6 at all: not `noquery` in the access list and on the control allow list
   * (default 127.0.0.1 and ::1). False means no reply of any kind.
   */
  allowed(key: Uint32Array): boolean;
  /** The system variables now (called once per answered request). */
  system(): SystemInfo;
  /** The MRU list, or null when monitoring is off (mrulist then lists nothing). */
  mru: MruList | null;
  /** Seconds added to the MRU list's times to make Unix seconds (0: src/core/defences.ts records Unix s). */
  mruTimeOffsetS?: number;
  /**
   * Writes into `out` the MRU key of a client at `address`: the prefix the server knows it by
   * (Defences.clientKeyOf), so that an address ntpq quotes finds its record. Default: the address itself.
   */
  mruClientKey?: (address: Uint32Array, out: Uint32Array) => void;
  /** Nonces for the READ_MRU handshake; one per thread, all on the same secret. */
  nonces: NonceKeeper;
  /** Whether loopback sources count as proven (default true; false applies the size rule to them too). */
  loopbackProven?: boolean;
}

// What handleControl did, for the caller's counters and logs.
/** A reply with data was sent. */
export const CONTROL_ANSWERED = 0;
/** An error reply (12 octets) was sent: bad request, unknown variable, bad or missing nonce... */
export const CONTROL_ERROR = 1;
/** The reply would have been larger than the request to an unproven address: a PERMISSION error instead. */
export const CONTROL_UNPROVEN = 2;
/** The address may not use mode 6 (noquery or not on the allow list): nothing sent. */
export const CONTROL_DENIED = 3;
/** Not mode 6 (mode 7 included): nothing sent. */
export const CONTROL_NOT_CONTROL = 4;
/** Too short, truncated or a bad version: nothing sent. */
export const CONTROL_MALFORMED = 5;
/** A mode 6 response, not a request: nothing sent. */
export const CONTROL_RESPONSE = 6;

export const CONTROL_RESULT_NAMES: readonly string[] = Object.freeze([
  "answered",
  "error",
  "unproven",
  "denied",
  "not_control",
  "malformed",
  "response",
]);

/** Whether a result sent something (then the reason is the lead's R_SERVED_CONTROL). */
export function controlReplied(result: number): boolean {
  return result === CONTROL_ANSWERED || result === CONTROL_ERROR || result === CONTROL_UNPROVEN;
}

/** Whether an address key is loopback: 127.0.0.0/8 (IPv4-mapped) or ::1. */
export function isLoopbackKey(key: Uint32Array): boolean {
  if (key[0] !== 0 || key[1] !== 0) return false;
  if (key[2] === 0xffff) return key[3]! >>> 24 === 127;
  return key[2] === 0 && key[3] === 1;
}

/**
 * Answers one mode 6 datagram, req[0..length), from `source` at `nowMs` (Unix ms): pushes the reply
 * datagrams (each a fresh array, padded to 4 octets) onto `out` and returns a CONTROL_* result.
 */
export function handleControl(
  req: Uint8Array,
  length: number,
  source: ControlSource,
  nowMs: number,
  ctx: ControlContext,
  out: Uint8Array[],
): number {
  const n = Math.min(length, req.length);
  if (n < 1) return CONTROL_MALFORMED;
  if ((req[0]! & 7) !== 6) return CONTROL_NOT_CONTROL;
  if (!ctx.allowed(source.key)) return CONTROL_DENIED;
  const parsed = parseControlRequest(req, n);
  if (typeof parsed === "number") {
    if (parsed === PARSE_NOT_CONTROL) return CONTROL_NOT_CONTROL;
    if (parsed === PARSE_IS_RESPONSE) return CONTROL_RESPONSE;
    return CONTROL_MALFORMED; // truncated, or a version outside 1-4
  }
  const info = ctx.system();
  const h: ReplyHeader = {
    leap: info.state.leap,
    version: parsed.version,
    opcode: parsed.opcode,
    sequence: parsed.sequence,
    status: systemStatus(info),
    associd: parsed.associd,
  };
  let proven = ctx.loopbackProven !== false && isLoopbackKey(source.key);
  let reply: Uint8Array[] | number;
  if (parsed.more || parsed.offset !== 0) {
    reply = CERR_BADFMT; // fragmented requests: ntpq never sends them, and reassembly would need state
  } else if (parsed.opcode === CTL_OP_READ_MRU) {
    const r = readMru(parsed, h, source, nowMs, ctx);
    if (r.proven) proven = true;
    reply = r.reply;
  } else {
    reply = answer(parsed, h, info, source, nowMs, ctx);
  }
  if (typeof reply === "number") {
    out.push(errorReply(h, reply));
    return CONTROL_ERROR;
  }
  if (!proven) {
    let total = 0;
    for (const d of reply) total += d.length;
    if (total > n) {
      // n >= 12 here (the header parsed), so this error is never larger than the request either.
      out.push(errorReply(h, CERR_PERMISSION));
      return CONTROL_UNPROVEN;
    }
  }
  for (const d of reply) out.push(d);
  return CONTROL_ANSWERED;
}

/** Every opcode but READ_MRU: the datagrams, or a CERR_* code. */
function answer(
  req: ControlRequest,
  h: ReplyHeader,
  info: SystemInfo,
  source: ControlSource,
  nowMs: number,
  ctx: ControlContext,
): Uint8Array[] | number {
  switch (req.opcode) {
    case CTL_OP_READSTAT:
      // Association 0 lists the associations (ID, status pairs): ntpshield has no peers, so none.
      return req.associd === 0 ? fragmentReply(h, new Uint8Array(0)) : CERR_BADASSOC;
    case CTL_OP_READVAR: {
      if (req.associd !== 0) return CERR_BADASSOC;
      const vars = parseVarList(req.data);
      if (vars === undefined) return CERR_BADFMT;
      const r = systemVariablesText(
        vars.map((v) => v.name),
        info,
        nowMs,
        memo(() => mruInfo(ctx)),
      );
      if ("unknown" in r) return CERR_UNKNOWNVAR;
      // ntpd ends a variable list with a line break; ntpq's raw mode prints the text as it comes.
      return fragmentReply(h, textBytes(r.text === "" ? "" : `${r.text}\r\n`));
    }
    case CTL_OP_REQ_NONCE:
      return fragmentReply(h, textBytes(`nonce=${ctx.nonces.issue(source.key, nowMs)}`));
    case CTL_OP_WRITEVAR:
    case CTL_OP_WRITECLOCK:
    case CTL_OP_CONFIGURE:
    case CTL_OP_SAVECONFIG:
    case CTL_OP_SETTRAP:
    case CTL_OP_UNSETTRAP:
      return CERR_PERMISSION; // read-only: nothing is configured over mode 6
    default:
      return CERR_BADOP; // READCLOCK (no reference clocks), ordered lists (ifstats, reslist), traps...
  }
}

/** The MRU list's counters for the mru_* variables (takes the list's lock twice, briefly). */
function mruInfo(ctx: ControlContext): MruInfo | undefined {
  const mru = ctx.mru;
  if (mru === null) return undefined;
  const stats = mru.stats();
  let oldestLastSeen = Number.NaN;
  mru.lock();
  try {
    const r = mru.oldestLocked();
    if (r >= 0) oldestLastSeen = mru.lastSeen[r]! + (ctx.mruTimeOffsetS ?? 0);
  } finally {
    mru.unlock();
  }
  return { ...stats, oldestLastSeen };
}

/** f, computed at most once. */
function memo<T>(f: () => T): () => T {
  let done = false;
  let value: T;
  return () => {
    if (!done) {
      value = f();
      done = true;
    }
    return value;
  };
}

/** READ_MRU: the nonce first, then the list. `proven` when the nonce was valid. */
function readMru(
  req: ControlRequest,
  h: ReplyHeader,
  source: ControlSource,
  nowMs: number,
  ctx: ControlContext,
): { reply: Uint8Array[] | number; proven: boolean } {
  const vars = parseVarList(req.data);
  if (vars === undefined) return { reply: CERR_BADFMT, proven: false };
  const nonce = vars.find((v) => v.name === "nonce")?.value;
  if (nonce === undefined || !ctx.nonces.check(nonce, source.key, nowMs)) {
    return { reply: CERR_PERMISSION, proven: false };
  }
  const q = parseMruRequest(vars);
  if (typeof q === "number") return { reply: q, proven: true };
  const fresh = ctx.nonces.issue(source.key, nowMs);
  if (ctx.mru === null) {
    return {
      reply: fragmentReply(h, textBytes(`nonce=${fresh}, now=${lfpText(nowMs / 1000)}`)),
      proven: true,
    };
  }
  const r = readMruList(q, ctx.mru, nowMs, ctx.mruTimeOffsetS ?? 0, fresh, ctx.mruClientKey);
  return { reply: typeof r === "number" ? r : fragmentReply(h, textBytes(r.text)), proven: true };
}
