// The blocklist's change polling: the workers' first load and the messages a change becomes, on an
// in-memory and a file database, then another process's edits seen by a running server's watch.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { type BlocklistChange, BlocklistStore, updatesOf } from "../../../src/server/blocklist/index.ts";

const dir = mkdtempSync(join(tmpdir(), "ntpshield-blocklist-watch-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const freshFile = () => join(dir, `watch-${++files}.db`);

/** A clock the test moves by hand. */
function clock(start = 1_700_000_000_000) {
  let t = start;
  return { now: () => t, set: (v: number) => (t = v), advance: (ms: number) => (t += ms) };
}

const kinds: [string, () => string][] = [
  ["in memory", () => ":memory:"],
  ["in a file", freshFile],
];

for (const [kind, where] of kinds) {
  describe(`BlocklistStore.watch (${kind})`, () => {
    const open = (o: { now: () => number }) => BlocklistStore.open(where(), { pruneIntervalMs: 0, ...o });

    it("gives the workers' snapshot and messages", () => {
      const c = clock();
      const s = open({ now: c.now });
      try {
        s.add({ address: "192.0.2.1", reason: "", source: "manual" });
        s.add({ address: "2001:db8::5", reason: "", source: "auto", expiresMs: c.now() + 10 });
        const changes: BlocklistChange[] = [];
        s.watch((ch) => changes.push(ch), { initial: true })();
        assert.equal(changes.length, 1);
        const load = updatesOf(changes[0]!);
        assert.equal(load.length, 1);
        assert.ok(load[0]?.type === "blocklist-replace");
        const snap = load[0].snapshot;
        assert.equal(snap.words.length, 8);
        assert.deepEqual([...snap.expiresMs].sort(), [c.now() + 10, Number.POSITIVE_INFINITY]);
        const full = updatesOf({ full: true, entries: s.list() });
        assert.equal(full[0]?.type, "blocklist-replace");
        const delta = updatesOf({ full: false, upserts: s.list().slice(0, 1), removed: ["198.51.100.2"] });
        assert.deepEqual(delta, [
          { type: "blocklist-remove", addresses: ["198.51.100.2"] },
          { type: "blocklist-add", items: [{ address: "192.0.2.1", expiresMs: null }] },
        ]);
      } finally {
        s.close();
      }
    });
  });
}

describe("BlocklistStore.watch (a second process)", () => {
  it("watch() reports another process's adds, removals and expiry changes, not its own writes", async () => {
    const path = freshFile();
    const c = clock(Date.now());
    const server = BlocklistStore.open(path, { now: c.now, pruneIntervalMs: 0 });
    const cli = BlocklistStore.open(path, { pruneIntervalMs: 0 });
    const changes: BlocklistChange[] = [];
    const next = async () => {
      const until = Date.now() + 3000;
      while (changes.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
      return changes.shift();
    };
    try {
      server.add({ address: "192.0.2.1", reason: "before", source: "auto" });
      const stop = server.watch((ch) => changes.push(ch), { intervalMs: 20, initial: true });
      const first = changes.shift();
      assert.ok(first?.full);
      assert.deepEqual(
        first.entries.map((e) => e.address),
        ["192.0.2.1"],
      );

      // Its own writes (batched or direct) are not reported back.
      server.enqueue({ address: "192.0.2.2", reason: "own", source: "auto" });
      server.flush();
      server.add({ address: "192.0.2.3", reason: "own", source: "auto" });
      await new Promise((r) => setTimeout(r, 80));
      assert.equal(changes.length, 0);

      cli.add({ address: "2001:db8::9", reason: "cli", source: "manual" });
      let ch = await next();
      assert.ok(ch && !ch.full);
      assert.deepEqual(
        ch.upserts.map((e) => [e.address, e.reason]),
        [["2001:db8::9", "cli"]],
      );
      assert.deepEqual(ch.removed, []);

      // A hit count or reason change is no membership change: not reported.
      cli.enqueueHits("2001:db8::9", 5);
      cli.flush();
      await new Promise((r) => setTimeout(r, 80));
      assert.equal(changes.length, 0);

      cli.remove("192.0.2.1");
      cli.add({
        address: "192.0.2.2",
        reason: "cli shortens",
        source: "manual",
        expiresMs: c.now() + 60_000,
      });
      ch = await next();
      assert.ok(ch && !ch.full);
      assert.deepEqual(ch.removed, ["192.0.2.1"]);
      assert.deepEqual(
        ch.upserts.map((e) => [e.address, e.expiresMs]),
        [["192.0.2.2", c.now() + 60_000]],
      );

      // An entry already expired when seen is reported as removed.
      cli.add({ address: "192.0.2.3", reason: "gone", source: "manual", expiresMs: c.now() - 1 });
      ch = await next();
      assert.ok(ch && !ch.full);
      assert.deepEqual(ch.removed, ["192.0.2.3"]);

      // Pruning trims the log up to what the watcher has read; later changes still arrive.
      server.prune();
      cli.add({ address: "198.51.100.4", reason: "after prune", source: "manual" });
      ch = await next();
      assert.ok(ch && !ch.full);
      assert.deepEqual(
        ch.upserts.map((e) => e.address),
        ["198.51.100.4"],
      );
      stop();
      cli.add({ address: "198.51.100.5", reason: "unwatched", source: "manual" });
      await new Promise((r) => setTimeout(r, 80));
      assert.equal(changes.length, 0, "a stopped watch reports nothing");
    } finally {
      cli.close();
      server.close();
    }
  });
});
