// The messages between the main thread and the worker threads. Packets never cross threads: each worker
// owns its sockets; only state changes (rare) travel as messages.

import type { ServeState } from "../core/serve-state.ts";

export interface ListenAddress {
  host: string;
  port: number;
  family: 4 | 6;
}

export interface WorkerInit {
  index: number;
  listen: ListenAddress[];
  counters: Float64Array;
  state: ServeState;
  sharedOffset: number;
}

export type ToWorker =
  | { type: "state"; state: ServeState }
  | { type: "offset"; sharedOffset: number }
  | { type: "stop" };

export type FromWorker =
  | { type: "bound"; index: number }
  | { type: "bind-error"; index: number; address: string; code: string; message: string }
  | { type: "socket-error"; index: number; address: string; code: string; message: string }
  | { type: "stopped"; index: number };

export function formatAddress(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
