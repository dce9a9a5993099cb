// The survey's input (paper §5): one server's whole MRU list with its clock and counters at the moment it
// was taken. The HTTP endpoint's /api/snapshot serves exactly this (as JSON), and the simulator builds the
// same thing from its simulated servers, so that one consolidation code serves both.

/** One client record of an MRU list, as of the snapshot. Times are Unix seconds (fractional). */
export interface SnapshotClient {
  /**
   * Canonical text: dotted quad for IPv4 (also when it arrived IPv4-mapped), RFC 5952 for IPv6; a client
   * known by a prefix shorter than the address is "prefix/length" ("2001:db8:1:2::/64").
   */
  address: string;
  /** First and last packet seen from this address while its record lived. */
  firstSeen: number;
  lastSeen: number;
  /** Packets counted in the record (from firstSeen to lastSeen, both included). */
  count: number;
  /** Exponentially averaged interval between its packets, seconds (0 before the second packet). */
  avgInterval: number;
  /** Last packet's NTP mode, version and source port. */
  mode: number;
  version: number;
  port: number;
  /** Packets the call-gap refused, KoDs sent. */
  gapped: number;
  kods: number;
  /** Names of the restriction flags its packets hit (as `ntpq -c mrulist` shows in rstr). */
  restrictions: string[];
}

/** The server's packet counters at the moment of the snapshot, since start. */
export interface SnapshotCounters {
  /** Every datagram received. */
  received: number;
  served: number;
  kissed: number;
  dropped: number;
}

export interface Snapshot {
  /** Format version of this record. */
  format: 1;
  /** What the server calls itself (its listen address or a configured name). */
  server: string;
  /** The server's clock when the snapshot was taken, Unix seconds. */
  takenAt: number;
  /** When the server started, Unix seconds (counters run from there). */
  startedAt: number;
  counters: SnapshotCounters;
  /** MRU list capacity and the records evicted, recycled or refused so far (how much the list missed). */
  mru: { capacity: number; size: number; evicted: number; recycled: number; refused: number };
  /** Newest first, as the MRU list holds them. */
  clients: SnapshotClient[];
}
