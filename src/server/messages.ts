// The messages between the main thread and the worker threads. Packets never cross threads: each worker
// owns its sockets; only state changes (rare) travel as messages.

import type { Config } from "../config/index.ts";
import type { SharedDefences } from "../core/defences.ts";
import type { ServeState } from "../core/serve-state.ts";
import type { BlocklistUpdate } from "../defence/blocklist.ts";
import type { CookieKey } from "../nts/keys.ts";

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
  /** The configuration the defences are built from (access list, call-gap, KoD, blocklist switches). */
  config: Config;
  /** The MRU list and KoD limiter every thread shares. */
  shared: SharedDefences;
  /** Batched native I/O (src/server/native-udp.ts) or node:dgram; the main thread chose. */
  io: "native" | "dgram";
  /** Socket receive buffer to ask for, bytes. */
  recvBuffer: number;
  /** Every worker's counters (the ntpq system variables sum them). */
  allCounters: Float64Array[];
  /** The secret of ntpq's mrulist nonces, the same in every thread. */
  nonceSecret: Uint8Array;
  /** When the server started, Unix ms. */
  startedMs: number;
  /** The blocklist as it stands, applied before the first packet is read. */
  blocklist?: BlocklistUpdate | undefined;
  /** NTS's cookie keys ([nts] enabled): the worker answers NTS requests with them. Absent: NTS off. */
  ntsKeys?: CookieKey[] | undefined;
  /** How long a new NTS key waits before it seals, ms (src/nts/keys.ts activationMs). */
  ntsActivationMs?: number | undefined;
}

/** Packets from a blocked address that a worker discarded since its last report. */
export interface BlockHits {
  address: string;
  count: number;
}

/**
 * An address a worker's defences blocked (paper §11), or the prefix where clients are known by prefix
 * ([mru] ipv4-prefix, ipv6-prefix), for the main thread to persist and share.
 */
export interface BlockedItem {
  /** Canonical text: an address, or "prefix/length". */
  address: string;
  /** Unix ms; null = for ever. */
  expiresMs: number | null;
  kods: number;
}

export type ToWorker =
  | { type: "state"; state: ServeState }
  | { type: "offset"; sharedOffset: number }
  | { type: "config"; config: Config }
  | { type: "blocklist"; update: BlocklistUpdate }
  | { type: "nts-keys"; keys: CookieKey[]; activationMs: number }
  | { type: "stop" };

export type FromWorker =
  | { type: "bound"; index: number }
  | { type: "bind-error"; index: number; address: string; code: string; message: string }
  | { type: "socket-error"; index: number; address: string; code: string; message: string }
  | { type: "blocked"; index: number; items: BlockedItem[]; lost: number; hits: BlockHits[] }
  | { type: "stopped"; index: number };

export function formatAddress(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
