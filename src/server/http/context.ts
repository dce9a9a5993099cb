// What the endpoint's handlers are given: the server they report on (MonitorSource) and the endpoint's own
// state (its clock, the configuration in force), in one MonitorContext that the server keeps and a reload
// updates, so a handler reads the allow list and the blocklist switch as they are when it runs.

import type { IncomingMessage, ServerResponse } from "node:http";
import type { Config } from "../../config/index.ts";
import type { CounterSnapshot, FleetCounts } from "../../core/counters.ts";
import type { Defences } from "../../core/defences.ts";
import type { ServeState } from "../../core/serve-state.ts";
import type { BlocklistEntry, BlocklistStore, BlocklistWrite } from "../blocklist/index.ts";
import type { SharingStats } from "../blocklist/sharing.ts";
import type { Logger } from "../log.ts";
import type { ListenAddress } from "../messages.ts";

/** What the endpoint reads from the server (NtpServer has all of it). */
export interface MonitorSource {
  readonly addresses: readonly ListenAddress[];
  readonly threads: number;
  readonly defences: Defences | undefined;
  readonly blocklistStore: BlocklistStore | undefined;
  /** The fleet's shared list, when [blocklist] redis is set. */
  readonly blocklistSharing?: { stats(): SharingStats } | undefined;
  readonly state: ServeState | undefined;
  stats(): CounterSnapshot;
  /** Broadcasts due since start by what became of them ([broadcast], src/core/broadcast.ts). */
  broadcastStats?(): Record<string, number>;
  /** Active redirection's counts ([fleet]); undefined (or absent) when no peers are configured. */
  fleetCounts?(): FleetCounts | undefined;
  /** NTS-KE's outcomes (src/server/nts-ke.ts), undefined while NTS is off. */
  ntsStats?(): Readonly<Record<string, number>> | undefined;
  blockAddress(write: BlocklistWrite): BlocklistEntry;
  unblockAddress(address: string): boolean;
}

export interface MonitorContext {
  readonly source: MonitorSource;
  readonly log: Logger;
  /** When the server started, Unix ms (its counters run from there). */
  readonly startedAtMs: number;
  /** Unix ms; the server's clock (tests may set it). */
  readonly now: () => number;
  /** The configuration in force: [blocklist] enabled is read from it (replaced on SIGHUP). */
  config: Config;
  /** [control] allow of that configuration, compiled: who may write. */
  allowed: (address: string) => boolean;
}

/** Answers one request to its route (routes.ts); throws HttpError (errors.ts) to refuse it. */
export type Handler = (
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  ctx: MonitorContext,
) => void | Promise<void>;
