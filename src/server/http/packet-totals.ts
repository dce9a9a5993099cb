// Every packet counted once in the families ntpd-rs's exporter names (accepted, denied, rate-limited,
// ignored), from the finer reasons of src/core/reasons.ts: /metrics and /api/stats both show them.

import type { CounterSnapshot } from "../../core/counters.ts";
import { REASON_COUNT, REASON_NAMES, REASON_RESPONSE, RESPONSE_SERVED } from "../../core/reasons.ts";

/**
 * Reasons refused because of who sent them: the access list (noserve, noquery, RSTR kisses), the access
 * rules by reverse-DNS name (denied, or the lookup still pending) and the blocklist. ntpd-rs's "denied" is
 * its deny list, the same idea.
 */
const DENIED = new Set([
  "drop_acl_noserve",
  "kiss_rstr",
  "drop_noquery",
  "drop_name_deny",
  "kiss_deny",
  "drop_name_pending",
  "drop_blocklisted",
]);
/** Requests the call-gap refused (paper §12), whether kissed (RATE) or dropped, KoD limiter included. */
const RATE_LIMITED = new Set(["drop_gapped", "kiss_rate", "drop_kod_limited"]);

/** Every packet in exactly one of accepted, denied, rate-limited, ignored: they add up to received. */
export interface PacketTotals {
  received: number;
  /** Answered (time, symmetric, a call-gap leak, a control reply). */
  accepted: number;
  denied: number;
  rateLimited: number;
  /** Not answered for what the packet is: malformed, a mode never answered, access list `ignore`. */
  ignored: number;
  /** KoDs sent, by kiss code. */
  kod: { RATE: number; RSTR: number; DENY: number };
  /** KoDs that were due but withheld by the KoD limiter (per client or server-wide rate). */
  kodLimited: number;
  sendErrors: number;
  socketErrors: number;
  /** Requests the kernel dropped (socket buffer full) before the server read them: not in received. */
  kernelDrops: number;
}

export function packetTotals(c: CounterSnapshot): PacketTotals {
  let accepted = 0;
  let denied = 0;
  let rateLimited = 0;
  let ignored = 0;
  for (let r = 0; r < REASON_COUNT; r++) {
    const name = REASON_NAMES[r]!;
    const n = c.byReason[name] ?? 0;
    if (REASON_RESPONSE[r] === RESPONSE_SERVED) accepted += n;
    else if (DENIED.has(name)) denied += n;
    else if (RATE_LIMITED.has(name)) rateLimited += n;
    else ignored += n;
  }
  return {
    received: c.received,
    accepted,
    denied,
    rateLimited,
    ignored,
    kod: {
      RATE: c.byReason["kiss_rate"] ?? 0,
      RSTR: c.byReason["kiss_rstr"] ?? 0,
      DENY: c.byReason["kiss_deny"] ?? 0,
    },
    kodLimited: c.byReason["drop_kod_limited"] ?? 0,
    sendErrors: c.sendErrors,
    socketErrors: c.socketErrors,
    kernelDrops: c.kernelDrops,
  };
}
