// The system variables a READVAR request for association 0 reads (`ntpq -c rv`), and the system status word
// that heads every reply (RFC 9327 §3.1, "System Status Word"). Names, units and text forms are ntpd's, so
// that ntpq formats them as it formats ntpd's: times as l_fp hex (reftime, clock), root delay/dispersion and
// offset in milliseconds, leap as 0-3, strings in double quotes.
//
// Besides the clock's variables, ntpshield answers with its own packet counters under ntpd's `ss_*` names
// (ntpq's `sysstats` reads them) and its MRU list's counters under ntpd's `mru_*` names (`monstats`); the
// counters appear in the default `rv` list, the MRU ones only when asked for by name, as ntpd does.

import { REASON_NAMES } from "../core/reasons.ts";
import type { ServeState } from "../core/serve-state.ts";
import type { MruStats } from "../defence/mru.ts";
import { refIdText } from "../protocol/refid.ts";
import { lfpText, quoted, VarText } from "./codec.ts";

/** The per-reason packet counts of the whole server (src/core/counters.ts summarise(): byReason). */
export interface ControlCounters {
  /** Every datagram received. */
  received: number;
  /** Count per reason name (REASON_NAMES of src/core/reasons.ts); missing names count 0. */
  byReason: Readonly<Record<string, number>>;
}

/** What the server says about itself, read once per READVAR request. */
export interface SystemInfo {
  /** The clock as replies describe it (leap, stratum, precision, root delay/dispersion, refid, reftime). */
  state: ServeState;
  /** `version=`: the program and its version, e.g. "ntpshield 0.1.0". */
  version: string;
  /** `processor=` and `system=` (ntpd's uname fields), when known. */
  processor?: string;
  system?: string;
  /**
   * Clock source of the status word (RFC 9327 §3.1: 0 unspecified, 5 local clock, 6 NTP, ...). Default: 0
   * when unsynchronised (leap 3), 5 at stratum 1, 6 above.
   */
  syncSource?: number;
  /** `tc=` and `mintc=`: the upstream poll interval now and at least, log2 s (omitted when undefined). */
  poll?: number;
  minPoll?: number;
  /** Seconds since the server started (`ss_uptime`, `ss_reset`). */
  uptimeS?: number;
  /** Packet counters (the `ss_*` variables); omitted when undefined. */
  counters?: ControlCounters;
}

/** The system status word: leap (2 bits), clock source (6), event count (4), event code (4). */
export function systemStatus(info: SystemInfo): number {
  const s = info.state;
  const leap = s.leap & 3;
  const source = info.syncSource ?? (leap === 3 ? 0 : s.stratum <= 1 ? 5 : 6);
  return ((leap << 14) | ((source & 0x3f) << 8)) >>> 0;
}

const NUMERIC_LOOKING = /^[-+0-9.]|^(inf|infinity|nan)$/i;

/**
 * The refid variable as ntpd sends it: the one display of src/protocol (text at stratum 0, 1 and 16, a dotted
 * quad at 2-15), quoted where ntpq would read the text as a number or find it empty (ntpq strips quotes).
 */
export function refIdVar(refId: number, stratum: number): string {
  const s = refIdText(refId, stratum);
  if (stratum >= 2 && stratum <= 15) return s;
  return s === "" || NUMERIC_LOOKING.test(s) ? quoted(s) : s;
}

function ms(seconds: number): string {
  return (seconds * 1000).toFixed(6);
}

function sum(c: ControlCounters, names: readonly string[]): number {
  let n = 0;
  for (const name of names) n += c.byReason[name] ?? 0;
  return n;
}

const MALFORMED = REASON_NAMES.filter((n) => n.startsWith("malformed_"));
const DECLINED = REASON_NAMES.filter(
  (n) => n.startsWith("drop_mode_") || n === "drop_symmetric_disabled" || n === "drop_manycast_mode",
);

/** The MRU list's counters and the Unix time of its oldest record's last packet (NaN when empty). */
export type MruInfo = MruStats & { oldestLastSeen: number };

/** A variable: its value's text at this moment, or undefined when not available. */
type Getter = (info: SystemInfo, nowMs: number, mru: () => MruInfo | undefined) => string | undefined;

const counter =
  (f: (c: ControlCounters) => number): Getter =>
  (info) =>
    info.counters === undefined ? undefined : String(f(info.counters));

const mruStat =
  (f: (m: MruInfo, nowMs: number) => number): Getter =>
  (_info, nowMs, mru) => {
    const m = mru();
    return m === undefined ? undefined : String(f(m, nowMs));
  };

const VARIABLES: ReadonlyMap<string, Getter> = new Map<string, Getter>([
  ["version", (i) => quoted(i.version)],
  ["processor", (i) => (i.processor === undefined ? undefined : quoted(i.processor))],
  ["system", (i) => (i.system === undefined ? undefined : quoted(i.system))],
  ["leap", (i) => String(i.state.leap & 3)],
  ["stratum", (i) => String(i.state.stratum)],
  ["precision", (i) => String(i.state.precision)],
  ["rootdelay", (i) => ms(i.state.rootDelay)],
  [
    "rootdisp",
    (i, now) => {
      const s = i.state;
      const age = s.refTimeMs > 0 ? (now - s.refTimeMs) / 1000 : 0;
      return ms(s.rootDispersion + (age > 0 ? age * s.dispersionRate : 0));
    },
  ],
  ["refid", (i) => refIdVar(i.state.refId, i.state.stratum)],
  ["reftime", (i) => (i.state.refTimeMs > 0 ? lfpText(i.state.refTimeMs / 1000) : "0x00000000.00000000")],
  ["clock", (_i, now) => lfpText(now / 1000)],
  ["peer", () => "0"],
  ["tc", (i) => (i.poll === undefined ? undefined : String(i.poll))],
  ["mintc", (i) => (i.minPoll === undefined ? undefined : String(i.minPoll))],
  ["offset", (i) => i.state.offsetMs.toFixed(6)],
  // ntpd's packet counters (`ntpq -c sysstats`).
  ["ss_uptime", (i) => (i.uptimeS === undefined ? undefined : String(Math.floor(i.uptimeS)))],
  ["ss_reset", (i) => (i.uptimeS === undefined ? undefined : String(Math.floor(i.uptimeS)))],
  ["ss_received", counter((c) => c.received)],
  [
    "ss_processed",
    counter((c) => sum(c, ["served_client", "served_symmetric", "served_leak", "served_manycast"])),
  ],
  ["ss_kodsent", counter((c) => sum(c, ["kiss_rate", "kiss_rstr"]))],
  [
    "ss_limited",
    counter((c) => sum(c, ["drop_gapped", "kiss_rate", "served_leak", "drop_kod_limited", "drop_overload"])),
  ],
  [
    "ss_restricted",
    counter((c) =>
      sum(c, ["drop_acl_ignore", "drop_blocklisted", "drop_acl_noserve", "kiss_rstr", "drop_noquery"]),
    ),
  ],
  ["ss_badformat", counter((c) => sum(c, MALFORMED))],
  ["ss_declined", counter((c) => sum(c, DECLINED))],
  ["ss_numctlreq", counter((c) => sum(c, ["served_control", "drop_noquery"]))],
  // ntpd's MRU counters (`ntpq -c monstats`), read by name only.
  ["mru_enabled", mruStat(() => 1)],
  ["mru_depth", mruStat((m) => m.size)],
  ["mru_maxdepth", mruStat((m) => m.capacity)],
  ["mru_mem", mruStat((m) => Math.ceil(m.bufferBytes / 1024))],
  ["mru_maxmem", mruStat((m) => Math.ceil(m.bufferBytes / 1024))],
  ["mru_new", mruStat((m) => m.inserted + m.recycled + m.evicted)],
  ["mru_exists", mruStat((m) => m.hits)],
  ["mru_recycleold", mruStat((m) => m.recycled)],
  ["mru_recyclefull", mruStat((m) => m.evicted)],
  ["mru_none", mruStat((m) => m.refused)],
  [
    "mru_oldest_age",
    mruStat((m, now) =>
      Number.isNaN(m.oldestLastSeen) ? 0 : Math.max(0, Math.floor(now / 1000 - m.oldestLastSeen)),
    ),
  ],
]);

/** The variables `rv` returns when no names are given, in this order (those available). */
export const DEFAULT_SYSTEM_VARIABLES: readonly string[] = Object.freeze([
  "version",
  "processor",
  "system",
  "leap",
  "stratum",
  "precision",
  "rootdelay",
  "rootdisp",
  "refid",
  "reftime",
  "clock",
  "peer",
  "tc",
  "mintc",
  "offset",
  "ss_uptime",
  "ss_received",
  "ss_processed",
  "ss_limited",
  "ss_kodsent",
  "ss_restricted",
  "ss_badformat",
  "ss_declined",
  "ss_numctlreq",
]);

/** Every variable name a READVAR may ask for. */
export const SYSTEM_VARIABLE_NAMES: readonly string[] = Object.freeze([...VARIABLES.keys()]);

/**
 * The text of a READVAR reply: the named variables in the order asked (or the default list when `names`
 * is empty). Returns the name of the first variable that is unknown or not available now, to be answered
 * with CERR_UNKNOWNVAR, as { unknown }.
 */
export function systemVariablesText(
  names: readonly string[],
  info: SystemInfo,
  nowMs: number,
  mru: () => MruInfo | undefined,
): { text: string } | { unknown: string } {
  const out = new VarText();
  if (names.length === 0) {
    for (const name of DEFAULT_SYSTEM_VARIABLES) {
      const v = VARIABLES.get(name)!(info, nowMs, mru);
      if (v !== undefined) out.add(name, v);
    }
    return { text: out.text };
  }
  for (const name of names) {
    const v = VARIABLES.get(name)?.(info, nowMs, mru);
    if (v === undefined) return { unknown: name };
    out.add(name, v);
  }
  return { text: out.text };
}
