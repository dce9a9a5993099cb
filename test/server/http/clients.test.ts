// /api/clients' rows without a server: a client known by a prefix shows the prefix, its last address and
// the length, and sorts by address among whole addresses as ntpq's sort=addr would.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { MruEntry } from "../../../src/defence/mru.ts";
import { clientRow, selectClients } from "../../../src/server/http/clients.ts";
import { parseClientQuery } from "../../../src/server/http/clients-query.ts";

function entry(address: string, lastAddress: string, prefixLength: number, count = 1): MruEntry {
  return {
    index: 0,
    address,
    lastAddress,
    prefixLength,
    firstSeen: 100,
    lastSeen: 100 + count - 1,
    count,
    avgInterval: 1,
    mode: 3,
    version: 4,
    port: 123,
    flags: 0,
    gapped: 0,
    kods: 0,
    lastKod: Number.NEGATIVE_INFINITY,
    lastReason: 0,
    credit: 0,
    fast: 0,
  };
}

describe("/api/clients rows for clients known by a prefix", () => {
  test("the row carries the prefix as the address, the last address and the length", () => {
    const row = clientRow(entry("2001:db8:1:2::/64", "2001:db8:1:2::77", 64, 40), 200);
    assert.equal(row.address, "2001:db8:1:2::/64");
    assert.equal(row.lastAddress, "2001:db8:1:2::77");
    assert.equal(row.prefixLength, 64);
    assert.equal(row.count, 40);
    const whole = clientRow(entry("192.0.2.1", "192.0.2.1", 32), 200);
    assert.deepEqual([whole.address, whole.lastAddress, whole.prefixLength], ["192.0.2.1", "192.0.2.1", 32]);
  });

  test("sort=addr: IPv4 before IPv6, numerically, a prefix at its first address", () => {
    const rows = [
      entry("2001:db8:1:3::/64", "2001:db8:1:3::1", 64),
      entry("2001:db8:1:2::9", "2001:db8:1:2::9", 128),
      entry("192.0.2.64/28", "192.0.2.70", 28),
      entry("2001:db8:1:2::/64", "2001:db8:1:2::5", 64),
      entry("10.0.0.1", "10.0.0.1", 32),
    ].map((e) => clientRow(e, 200));
    const sorted = selectClients(rows, parseClientQuery(new URLSearchParams("sort=addr")));
    assert.deepEqual(
      sorted.map((r) => r.address),
      ["10.0.0.1", "192.0.2.64/28", "2001:db8:1:2::/64", "2001:db8:1:2::9", "2001:db8:1:3::/64"],
    );
  });
});
