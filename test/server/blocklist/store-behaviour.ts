// One suite of blocklist-store behaviour, run against every store: the SQLite file (store.test.ts) and
// the fleet's shared Redis (redis-store.test.ts). Both must merge writes the same way, so that an entry
// reads the same on every server of a fleet whichever store it went through (docs/fleet.md).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BlocklistError } from "../../../src/defence/blocklist.ts";
import type { BlocklistEntry, BlocklistWrite } from "../../../src/server/blocklist/index.ts";

/** A store seen through what every kind has: asynchronous, since Redis is a round trip away. */
export interface StoreUnderTest {
  add(write: BlocklistWrite): Promise<BlocklistEntry>;
  remove(address: string): Promise<boolean>;
  get(address: string): Promise<BlocklistEntry | undefined>;
  list(options?: { nowMs?: number; includeExpired?: boolean }): Promise<BlocklistEntry[]>;
  count(nowMs?: number): Promise<number>;
  addHits(address: string, count: number, atMs: number): Promise<void>;
  prune(nowMs: number): Promise<number>;
  close(): Promise<void>;
}

const T0 = 1_700_000_000_000;

/** Runs the suite; `open()` gives an empty store each time. */
export function storeBehaviour(kind: string, open: () => Promise<StoreUnderTest>): void {
  describe(`blocklist store behaviour (${kind})`, () => {
    const withStore = async (fn: (s: StoreUnderTest) => Promise<void>) => {
      const s = await open();
      try {
        await fn(s);
      } finally {
        await s.close();
      }
    };

    it("adds, reads back in canonical form, lists oldest first, and removes", () =>
      withStore(async (s) => {
        const e = await s.add({
          address: "::ffff:192.0.2.1",
          reason: "10 KoDs sent (RATE)",
          source: "auto",
          hits: 10,
          atMs: T0,
        });
        assert.deepEqual(e, {
          address: "192.0.2.1",
          reason: "10 KoDs sent (RATE)",
          addedMs: T0,
          updatedMs: T0,
          expiresMs: null,
          hits: 10,
          source: "auto",
        });
        await s.add({
          address: "2001:DB8::0:1",
          reason: "by hand",
          source: "manual",
          expiresMs: T0 + 61_000,
          atMs: T0 + 1000,
        });
        assert.deepEqual(
          (await s.list({ nowMs: T0 + 1000 })).map((x) => x.address),
          ["192.0.2.1", "2001:db8::1"],
        );
        assert.equal((await s.get("2001:db8::1"))?.expiresMs, T0 + 61_000);
        assert.deepEqual(await s.get("192.0.2.1"), e);
        assert.equal(await s.count(T0 + 1000), 2);
        assert.equal(await s.remove("192.0.2.1"), true);
        assert.equal(await s.remove("192.0.2.1"), false);
        assert.equal(await s.get("192.0.2.1"), undefined);
        await assert.rejects(
          async () => s.add({ address: "192.0.2.300", reason: "", source: "manual" }),
          BlocklistError,
        );
      }));

    it("keeps prefix entries in canonical text, with their hits", () =>
      withStore(async (s) => {
        await s.add({ address: "2001:DB8:1:2:0::/64", reason: "kod", source: "auto", hits: 10, atMs: T0 });
        await s.add({ address: "192.0.2.64/28", reason: "kod", source: "auto", hits: 10, atMs: T0 });
        await s.addHits("2001:db8:1:2::/64", 5, T0 + 10);
        assert.deepEqual((await s.list({ nowMs: T0 })).map((e) => [e.address, e.hits]).sort(), [
          ["192.0.2.64/28", 10],
          ["2001:db8:1:2::/64", 15],
        ]);
        assert.equal((await s.get("2001:db8:1:2::/64"))?.updatedMs, T0 + 10);
        await assert.rejects(
          async () => s.add({ address: "2001:db8:1:2::1/64", reason: "", source: "auto" }),
          BlocklistError,
        );
        assert.equal(await s.remove("2001:db8:1:2::/64"), true);
        assert.equal(await s.count(T0), 1);
      }));

    it("updates: keeps the first-added time, adds hits, and lets a manual entry win over the server", () =>
      withStore(async (s) => {
        await s.add({
          address: "198.51.100.1",
          reason: "first",
          source: "auto",
          hits: 10,
          expiresMs: T0 + 5000,
          atMs: T0,
        });
        let e = await s.add({
          address: "198.51.100.1",
          reason: "again",
          source: "auto",
          hits: 3,
          expiresMs: T0 + 10_000,
          atMs: T0 + 1000,
        });
        assert.equal(e.addedMs, T0);
        assert.equal(e.updatedMs, T0 + 1000);
        assert.equal(e.hits, 13);
        assert.equal(e.reason, "again");
        assert.equal(e.expiresMs, T0 + 10_000);
        e = await s.add({
          address: "198.51.100.1",
          reason: "operator says so",
          source: "manual",
          atMs: T0 + 2000,
        });
        assert.equal(e.source, "manual");
        assert.equal(e.expiresMs, null);
        e = await s.add({
          address: "198.51.100.1",
          reason: "server again",
          source: "auto",
          hits: 1,
          expiresMs: T0 + 2001,
          atMs: T0 + 2000,
        });
        assert.equal(e.source, "manual", "an automatic write does not override the operator");
        assert.equal(e.reason, "operator says so");
        assert.equal(e.expiresMs, null);
        assert.equal(e.hits, 14, "but its hits still count");
        // A hit older than the last write leaves the updated time alone.
        await s.addHits("198.51.100.1", 2, T0);
        assert.equal((await s.get("198.51.100.1"))?.updatedMs, T0 + 2000);
        assert.equal((await s.get("198.51.100.1"))?.hits, 16);
      }));

    it("expires: expired entries are not listed, are pruned, and come back as new entries", () =>
      withStore(async (s) => {
        await s.add({
          address: "203.0.113.5",
          reason: "short",
          source: "auto",
          hits: 10,
          expiresMs: T0 + 1000,
          atMs: T0,
        });
        await s.add({ address: "203.0.113.6", reason: "for ever", source: "auto", atMs: T0 });
        assert.equal(await s.count(T0), 2);
        assert.deepEqual(
          (await s.list({ nowMs: T0 + 1000 })).map((e) => e.address),
          ["203.0.113.6"],
        );
        assert.equal((await s.list({ nowMs: T0 + 1000, includeExpired: true })).length, 2);
        const e = await s.add({
          address: "203.0.113.5",
          reason: "back",
          source: "auto",
          hits: 10,
          atMs: T0 + 6000,
        });
        assert.equal(e.addedMs, T0 + 6000, "an expired entry that comes back is new");
        assert.equal(e.hits, 10);
        // An expired manual entry gives way to the server's.
        await s.add({
          address: "203.0.113.7",
          reason: "short",
          source: "manual",
          expiresMs: T0 + 6010,
          atMs: T0 + 6000,
        });
        const back = await s.add({
          address: "203.0.113.7",
          reason: "kod",
          source: "auto",
          hits: 4,
          atMs: T0 + 6010,
        });
        assert.equal(back.source, "auto");
        assert.equal(back.hits, 4);
        await s.add({
          address: "203.0.113.8",
          reason: "short",
          source: "manual",
          expiresMs: T0 + 6010,
          atMs: T0 + 6000,
        });
        assert.equal(await s.prune(T0 + 6010), 1);
        assert.equal((await s.list({ nowMs: T0 + 6010, includeExpired: true })).length, 3);
        assert.equal(await s.get("203.0.113.8"), undefined);
      }));

    it("ignores hits for an address not on the list", () =>
      withStore(async (s) => {
        await s.addHits("192.0.2.9", 3, T0);
        assert.equal(await s.get("192.0.2.9"), undefined);
        assert.equal(await s.count(T0), 0);
      }));
  });
}
