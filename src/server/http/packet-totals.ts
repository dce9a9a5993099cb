// Every packet counted once in the families ntpd-rs's exporter names (accepted, denied, rate-limited,
// ignored), from the finer reasons by their category (REASON_CATEGORY, src/core/reasons.ts): /metrics and
// /api/stats both show them.

import type { CounterSnapshot } from "../../core/counters.ts";
import {
  CATEGORY_ACCEPTED,
  CATEGORY_DENIED,
  CATEGORY_RATE_LIMITED,
  REASON_CATEGORY,
  REASON_COUNT,
  REASON_NAMES,
} from "../../core/reasons.ts";

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
    const n = c.byReason[REASON_NAMES[r]!] ?? 0;
    const category = REASON_CATEGORY[r];
    if (category === CATEGORY_ACCEPTED) accepted += n;
    else if (category === CATEGORY_DENIED) denied += n;
    else if (category === CATEGORY_RATE_LIMITED) rateLimited += n;
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
    kodLimited: (c.byReason["drop_kod_limited"] ?? 0) + (c.byReason["drop_kod_limited_denied"] ?? 0),
    sendErrors: c.sendErrors,
    socketErrors: c.socketErrors,
    kernelDrops: c.kernelDrops,
  };
}
