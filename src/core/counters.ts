// Per-thread packet counters in shared memory: each worker increments its own slots without locks or
// messages, and the main thread sums the workers' arrays whenever it is asked (stats, metrics, logs).
// Float64 slots count exactly up to 2^53, far beyond any uptime.

import { REASON_COUNT, REASON_NAMES, REASON_RESPONSE, RESPONSE_NAMES } from "./reasons.ts";

export const C_SEND_ERRORS = REASON_COUNT;
export const C_SOCKET_ERRORS = REASON_COUNT + 1;
/** Requests the kernel dropped because the socket's receive buffer was full (native I/O reports them). */
export const C_KERNEL_DROPS = REASON_COUNT + 2;
export const COUNTER_SLOTS = REASON_COUNT + 3;

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
