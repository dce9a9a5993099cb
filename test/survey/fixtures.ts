// Snapshots for the survey tests: a builder with defaults, and the hand-computed three-server survey of
// consolidate.test.ts (every figure of it is worked out in that file's comments).

import type { Snapshot, SnapshotClient } from "../../src/survey/snapshot.ts";

export function client(address: string, firstSeen: number, lastSeen: number, count: number): SnapshotClient {
  return {
    address,
    firstSeen,
    lastSeen,
    count,
    avgInterval: count > 1 ? (lastSeen - firstSeen) / (count - 1) : 0,
    mode: 3,
    version: 4,
    port: 123,
    gapped: 0,
    kods: 0,
    restrictions: [],
  };
}

export function snapshot(
  server: string,
  takenAt: number,
  startedAt: number,
  clients: SnapshotClient[],
  extra: { received?: number; evicted?: number; refused?: number; capacity?: number } = {},
): Snapshot {
  return {
    format: 1,
    server,
    takenAt,
    startedAt,
    counters: { received: extra.received ?? 0, served: 0, kissed: 0, dropped: 0 },
    mru: {
      capacity: extra.capacity ?? 1000,
      size: clients.length,
      evicted: extra.evicted ?? 0,
      recycled: 0,
      refused: extra.refused ?? 0,
    },
    clients,
  };
}

/** Now, in the hand-computed survey; the servers started 200,000 s before. */
export const T = 1_700_000_000;
export const S = T - 200_000;

/**
 * Three full lists (each has evicted records, so each covers from its oldest lastSeen): a's and c's oldest
 * record was last seen at T, b's at T - 5; a and c were taken at T + 100, b at T + 101. Window [T, T + 100].
 */
export function handSurvey(): Snapshot[] {
  const a = snapshot(
    "a",
    T + 100,
    S,
    [
      client("192.0.2.1", T - 600, T + 99, 467), // E1 (2 PPS round-robin over a, b, c): every 3rd packet
      client("192.0.2.2", T + 10, T + 19, 10), // E2: 1 PPS for 9 s
      client("2001:db8::3", T + 20, T + 52, 5), // E3 (4 s spacing over a and b)
      client("192.0.2.4", T - 190_000, T + 98, 95_050), // E4: one every 2 s for over two days
      client("198.51.100.1", T - 64, T, 2), // M1, the oldest record of a
    ],
    { received: 2_001_000, evicted: 5, refused: 3, capacity: 5 },
  );
  const b = snapshot(
    "b",
    T + 101,
    S,
    [
      client("192.0.2.1", T - 599.5, T + 99.5, 467), // E1
      client("2001:DB8:0::3", T + 24, T + 56, 5), // E3, written the long way
      client("192.0.2.6", T - 7200, T + 99, 2434), // E6: one every 3 s for two hours
      client("198.51.100.3", T + 30, T + 30, 1), // M3, 5 s before its packet on c
      client("198.51.100.4", T + 90, T + 100.8, 3), // M4: 5.4 s spacing, its last packet after the window
      client("198.51.100.7", T - 100, T - 5, 2), // Mb, the oldest record of b: before the window
    ],
    { received: 2_001_010, evicted: 2, capacity: 6 },
  );
  const c = snapshot(
    "c",
    T + 100,
    S,
    [
      client("192.0.2.1", T - 599, T + 98.5, 466), // E1
      client("::ffff:192.0.2.2", T + 19.5, T + 19.5, 1), // E2, IPv4-mapped
      client("192.0.2.5", S + 0.5, T + 99.5, 200_100), // E5: 1 PPS since the servers started
      client("203.0.113.9", T + 80, T + 81.5, 10), // F: 6 PPS for 1.5 s
      client("198.51.100.2", T + 90, T + 90, 1), // M2
      client("198.51.100.3", T + 35, T + 35, 1), // M3
      client("198.51.100.8", T, T, 1), // Mc, the oldest record of c
    ],
    { received: 4_002_000, evicted: 1, capacity: 7 },
  );
  return [a, b, c];
}
