// Per-thread packet counters in shared memory: each worker increments its own slots without locks or
// messages, and the main thread sums the workers' arrays whenever it is asked (stats, metrics, logs).
// Float64 slots count exactly up to 2^53, far beyond any uptime.

import { REASON_COUNT, REASON_NAMES, REASON_RESPONSE, RESPONSE_NAMES } from "./reasons.ts";

export const C_SEND_ERRORS = REASON_COUNT;
export const C_SOCKET_ERRORS = REASON_COUNT + 1;
/** Requests the kernel dropped because the socket's receive buffer was full (native I/O reports them). */
export const C_KERNEL_DROPS = REASON_COUNT + 2;
// Active redirection in a fleet (paper §8, src/server/fleet.ts), beside the reasons: a forwarded request
// is decided by the peer that takes it, not here.
/** Requests this server forwarded to a fleet peer. */
export const C_FLEET_FORWARDED = REASON_COUNT + 3;
/** Forwarded requests taken from fleet peers (each also counted under its reason here). */
export const C_FLEET_TAKEN = REASON_COUNT + 4;
/** Forwarding headers from an address not of the fleet: dropped (never an open relay). */
export const C_FLEET_REFUSED = REASON_COUNT + 5;
/** Replies that carried the redirection extension field. */
export const C_FLEET_REDIRECTED = REASON_COUNT + 6;
export const COUNTER_SLOTS = REASON_COUNT + 7;

/** The fleet counters summed over the workers. */
export interface FleetCounts {
  forwarded: number;
  taken: number;
  refused: number;
  redirected: number;
}

export function summariseFleet(arrays: readonly Float64Array[]): FleetCounts {
  const out = { forwarded: 0, taken: 0, refused: 0, redirected: 0 };
  for (const a of arrays) {
    out.forwarded += a[C_FLEET_FORWARDED] ?? 0;
    out.taken += a[C_FLEET_TAKEN] ?? 0;
    out.refused += a[C_FLEET_REFUSED] ?? 0;
    out.redirected += a[C_FLEET_REDIRECTED] ?? 0;
  }
  return out;
}

export function createCounters(shared = true): Float64Array {
  const bytes = COUNTER_SLOTS * Float64Array.BYTES_PER_ELEMENT;
  return new Float64Array(shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
}

export interface CounterSnapshot {
  received: number;
  byResponse: Record<(typeof RESPONSE_NAMES)[number], number>;
  byReason: Record<string, number>;
  sendErrors: number;
  socketErrors: number;
  /** Requests lost in the kernel before the server could read them (not counted in `received`). */
  kernelDrops: number;
}

/** Sums several threads' counters into one snapshot. */
export function summarise(arrays: readonly Float64Array[]): CounterSnapshot {
  const byReason: Record<string, number> = {};
  const byResponse = { served: 0, kissed: 0, dropped: 0 };
  let received = 0;
  for (let r = 0; r < REASON_COUNT; r++) {
    let n = 0;
    for (const a of arrays) n += a[r] ?? 0;
    byReason[REASON_NAMES[r]!] = n;
    byResponse[RESPONSE_NAMES[REASON_RESPONSE[r]!]] += n;
    received += n;
  }
  let sendErrors = 0;
  let socketErrors = 0;
  let kernelDrops = 0;
  for (const a of arrays) {
    sendErrors += a[C_SEND_ERRORS] ?? 0;
    socketErrors += a[C_SOCKET_ERRORS] ?? 0;
    kernelDrops += a[C_KERNEL_DROPS] ?? 0;
  }
  return { received, byResponse, byReason, sendErrors, socketErrors, kernelDrops };
}
