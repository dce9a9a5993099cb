// A survey snapshot (paper §5, format 1 of snapshot.ts) built from a live MRU list: what /api/snapshot
// serves and what the simulator hands to consolidate(). No I/O and no clock: the caller says when the
// snapshot is taken (its own clock, or the simulator's virtual time) and passes the server's counters.

import { MRU_FLAG_KOD, MRU_FLAG_LIMITED, type MruList } from "../defence/mru.ts";
import type { Snapshot, SnapshotCounters } from "./snapshot.ts";

export interface SnapshotSource {
  /** What the server calls itself. */
  server: string;
  /** Unix seconds: when the snapshot is taken, and when the server (its counters) started. */
  takenAt: number;
  startedAt: number;
  counters: SnapshotCounters;
  /**
   * Names of a record's restriction flags (ntpq's rstr). Default: "limited" for MRU_FLAG_LIMITED, "kod"
   * for MRU_FLAG_KOD; the access lists' flags (bits 8-31) are theirs to name.
   */
  restrictionNames?: (flags: number) => string[];
}

/** The flags the defence modules set, by name. */
export function defaultRestrictionNames(flags: number): string[] {
  const names: string[] = [];
  if (flags & MRU_FLAG_LIMITED) names.push("limited");
  if (flags & MRU_FLAG_KOD) names.push("kod");
  return names;
}

/**
 * The whole list, newest first, with its counters. Walks the list in chunks under its lock (MruList.entries),
 * so the server's workers go on meanwhile; a record touched during the walk is reported once.
 */
export function snapshotFromMru(list: MruList, source: SnapshotSource): Snapshot {
  const names = source.restrictionNames ?? defaultRestrictionNames;
  const clients = [];
  for (const e of list.entries()) {
    clients.push({
      address: e.address,
      firstSeen: e.firstSeen,
      lastSeen: e.lastSeen,
      count: e.count,
      avgInterval: e.avgInterval,
      mode: e.mode,
      version: e.version,
      port: e.port,
      gapped: e.gapped,
      kods: e.kods,
      restrictions: names(e.flags),
    });
  }
  const stats = list.stats();
  return {
    format: 1,
    server: source.server,
    takenAt: source.takenAt,
    startedAt: source.startedAt,
    counters: { ...source.counters },
    mru: {
      capacity: stats.capacity,
      size: stats.size,
      evicted: stats.evicted,
      recycled: stats.recycled,
      refused: stats.refused,
    },
    clients,
  };
}
