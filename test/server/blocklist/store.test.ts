// The blocklist's durable half: one shared suite run against an in-memory and a file database, then what
// only a file can show: kill -9 durability, locks. Change polling and bad files have files of their own.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { BlocklistError, type BlocklistSnapshot } from "../../../src/defence/blocklist.ts";
import {
  type BlocklistChange,
  BlocklistStore,
  type BlocklistStoreError,
  type BlocklistStoreOptions,
  resolveBlocklistPath,
  updatesOf,
} from "../../../src/server/blocklist/index.ts";
import { type StoreUnderTest, storeBehaviour } from "./store-behaviour.ts";

const dir = mkdtempSync(join(tmpdir(), "ntpshield-blocklist-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const freshFile = () => join(dir, `store-${++files}.db`);

/** A clock the test moves by hand. */
function clock(start = 1_700_000_000_000) {
  let t = start;
  return { now: () => t, set: (v: number) => (t = v), advance: (ms: number) => (t += ms) };
}

/** The workers' first load, as the server makes it: the watch's initial full change, as messages. */
function workersLoad(s: BlocklistStore): BlocklistSnapshot {
  const changes: BlocklistChange[] = [];
  s.watch((ch) => changes.push(ch), { initial: true })();
  assert.equal(changes.length, 1);
  const updates = updatesOf(changes[0]!);
  assert.equal(updates.length, 1);
  const [load] = updates;
  assert.ok(load?.type === "blocklist-replace");
  return load.snapshot;
}

const STORE_MODULE = pathToFileURL(join(import.meta.dirname, "../../../src/server/blocklist/index.ts")).href;

const isStoreError = (code: string, re?: RegExp) => (e: unknown) => {
  assert.equal((e as BlocklistStoreError).code, code, (e as Error).message);
  if (re) assert.match((e as Error).message, re);
  return true;
};

const kinds: [string, () => string][] = [
  ["in memory", () => ":memory:"],
  ["in a file", freshFile],
];

for (const [kind, where] of kinds) {
  describe(`BlocklistStore (${kind})`, () => {
    const open = (o: BlocklistStoreOptions = {}) =>
      BlocklistStore.open(where(), { pruneIntervalMs: 0, ...o });

    it("adds, reads back in canonical form, and removes", () => {
      const c = clock();
      const s = open({ now: c.now });
      try {
        const e = s.add({
          address: "::ffff:192.0.2.1",
          reason: "10 KoDs sent (RATE)",
          source: "auto",
          hits: 10,
        });
        assert.deepEqual(e, {
          address: "192.0.2.1",
          reason: "10 KoDs sent (RATE)",
          addedMs: c.now(),
          updatedMs: c.now(),
          expiresMs: null,
          hits: 10,
          source: "auto",
        });
        c.advance(1000);
        s.add({ address: "2001:DB8::0:1", reason: "by hand", source: "manual", expiresMs: c.now() + 60_000 });
        assert.deepEqual(
          s.list().map((x) => x.address),
          ["192.0.2.1", "2001:db8::1"],
          "oldest first, canonical text",
        );
        assert.equal(s.get("2001:db8::1")?.expiresMs, c.now() + 60_000);
        assert.equal(s.count(), 2);
        assert.equal(s.remove("192.0.2.1"), true);
        assert.equal(s.remove("192.0.2.1"), false);
        assert.equal(s.get("192.0.2.1"), undefined);
        assert.throws(() => s.add({ address: "192.0.2.300", reason: "", source: "manual" }), BlocklistError);
        assert.throws(() => s.remove("nonsense"), BlocklistError);
      } finally {
        s.close();
      }
    });

    it("keeps the server's prefix entries: canonical text, hits, removal, and the workers' load", () => {
      const s = open();
      try {
        s.enqueue({ address: "2001:DB8:1:2:0::/64", reason: "kod", source: "auto", hits: 10 });
        s.enqueue({ address: "192.0.2.64/28", reason: "kod", source: "auto", hits: 10 });
        s.enqueueHits("2001:db8:1:2::/64", 5);
        s.flush();
        assert.deepEqual(
          s
            .list()
            .map((e) => [e.address, e.hits])
            .sort(),
          [
            ["192.0.2.64/28", 10],
            ["2001:db8:1:2::/64", 15],
          ],
        );
        const load = workersLoad(s);
        assert.deepEqual([...load.bits].sort(), [124, 64]);
        assert.throws(
          () => s.add({ address: "2001:db8:1:2::1/64", reason: "", source: "auto" }),
          BlocklistError,
        );
        assert.equal(s.remove("2001:db8:1:2::/64"), true);
        assert.equal(s.get("192.0.2.64/28")?.hits, 10);
        assert.equal(s.count(), 1);
      } finally {
        s.close();
      }
    });

    it("updates: keeps the first-added time, adds hits, and lets a manual entry win over the server", () => {
      const c = clock();
      const s = open({ now: c.now });
      try {
        s.add({
          address: "198.51.100.1",
          reason: "first",
          source: "auto",
          hits: 10,
          expiresMs: c.now() + 5000,
        });
        const added = c.now();
        c.advance(1000);
        let e = s.add({
          address: "198.51.100.1",
          reason: "again",
          source: "auto",
          hits: 3,
          expiresMs: c.now() + 9000,
        });
        assert.equal(e.addedMs, added);
        assert.equal(e.updatedMs, c.now());
        assert.equal(e.hits, 13);
        assert.equal(e.reason, "again");
        e = s.add({ address: "198.51.100.1", reason: "operator says so", source: "manual" });
        assert.equal(e.source, "manual");
        assert.equal(e.expiresMs, null);
        e = s.add({
          address: "198.51.100.1",
          reason: "server again",
          source: "auto",
          hits: 1,
          expiresMs: c.now() + 1,
        });
        assert.equal(e.source, "manual", "an automatic write does not override the operator");
        assert.equal(e.reason, "operator says so");
        assert.equal(e.expiresMs, null);
        assert.equal(e.hits, 14, "but its hits still count");
      } finally {
        s.close();
      }
    });

    it("expires: expired entries are not listed, are pruned, and come back as new entries", () => {
      const c = clock();
      const s = open({ now: c.now });
      try {
        s.add({
          address: "203.0.113.5",
          reason: "short",
          source: "auto",
          hits: 10,
          expiresMs: c.now() + 1000,
        });
        s.add({ address: "203.0.113.6", reason: "for ever", source: "auto" });
        assert.equal(s.count(), 2);
        c.advance(1000);
        assert.deepEqual(
          s.list().map((e) => e.address),
          ["203.0.113.6"],
        );
        assert.equal(s.list({ includeExpired: true }).length, 2);
        assert.equal(workersLoad(s).expiresMs.length, 1);
        c.advance(5000);
        const e = s.add({ address: "203.0.113.5", reason: "back", source: "auto", hits: 10 });
        assert.equal(e.addedMs, c.now(), "an expired entry that comes back is new");
        assert.equal(e.hits, 10);
        s.add({ address: "203.0.113.7", reason: "short", source: "manual", expiresMs: c.now() + 10 });
        c.advance(10);
        assert.equal(s.prune(), 1);
        assert.equal(s.list({ includeExpired: true }).length, 2);
        assert.equal(s.stats().pruned, 1);
      } finally {
        s.close();
      }
    });

    it("batches: thousands of enqueued writes commit in a few transactions", () => {
      const s = open({ maxBatch: 1000, flushIntervalMs: 60_000 });
      try {
        const before = s.stats().transactions;
        for (let i = 0; i < 2500; i++) {
          s.enqueue({ address: `10.0.${i >> 8}.${i & 255}`, reason: "kod", source: "auto", hits: 10 });
        }
        // 2000 went out when the batch filled, twice; 500 wait for the timer or a flush.
        assert.equal(s.stats().transactions - before, 2);
        assert.equal(s.stats().queued, 500);
        for (let i = 0; i < 300; i++) s.enqueueHits("10.0.0.1", 1);
        assert.equal(s.stats().queued, 501, "hits for one address are one write");
        assert.equal(s.flush(), 501);
        assert.equal(s.stats().transactions - before, 3);
        assert.equal(s.count(), 2500);
        assert.equal(s.get("10.0.0.1")?.hits, 310);
        assert.equal(s.flush(), 0, "nothing left");
        assert.equal(s.stats().transactions - before, 3, "an empty flush is no transaction");
      } finally {
        s.close();
      }
    });

    it("commits a batch by itself after flushIntervalMs, in the order written", async () => {
      const s = open({ flushIntervalMs: 20 });
      try {
        s.enqueue({ address: "192.0.2.10", reason: "a", source: "auto" });
        s.enqueueRemove("192.0.2.10");
        s.enqueue({ address: "192.0.2.11", reason: "b", source: "auto" });
        s.enqueueRemove("192.0.2.11");
        s.enqueue({ address: "192.0.2.11", reason: "c", source: "auto" });
        assert.equal(s.count(), 0, "not yet");
        const until = Date.now() + 2000;
        while (s.stats().queued > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
        assert.equal(s.stats().queued, 0);
        assert.deepEqual(
          s.list().map((e) => [e.address, e.reason]),
          [["192.0.2.11", "c"]],
        );
        assert.equal(s.stats().transactions, 1);
      } finally {
        s.close();
      }
    });

    it("close() commits what is queued; a closed store says so", () => {
      const path = where();
      const s = BlocklistStore.open(path, { flushIntervalMs: 60_000, pruneIntervalMs: 0 });
      s.enqueue({ address: "192.0.2.99", reason: "at exit", source: "auto" });
      s.close();
      s.close();
      assert.throws(() => s.list(), isStoreError("ERR_BLOCKLIST_CLOSED"));
      assert.throws(
        () => s.enqueue({ address: "192.0.2.1", reason: "", source: "auto" }),
        isStoreError("ERR_BLOCKLIST_CLOSED"),
      );
      if (path !== ":memory:") {
        const again = BlocklistStore.open(path, { pruneIntervalMs: 0 });
        assert.equal(again.get("192.0.2.99")?.reason, "at exit");
        again.close();
      }
    });
  });
}

describe("BlocklistStore file", () => {
  it("is WAL with synchronous=FULL and a busy timeout", () => {
    const path = freshFile();
    // synchronous and busy_timeout belong to the connection, so they are read on the store's own: caught
    // as it is opened (node:sqlite is one module, whoever loads it).
    const exec = DatabaseSync.prototype.exec;
    let own: DatabaseSync | undefined;
    DatabaseSync.prototype.exec = function (this: DatabaseSync, sql: string) {
      own ??= this;
      return exec.call(this, sql);
    };
    let s: BlocklistStore;
    try {
      s = BlocklistStore.open(path, { busyTimeoutMs: 1234, pruneIntervalMs: 0 });
    } finally {
      DatabaseSync.prototype.exec = exec;
    }
    const pragma = (db: DatabaseSync, name: string) =>
      Object.values(db.prepare(`PRAGMA ${name}`).get() as Record<string, unknown>)[0];
    try {
      assert.ok(own !== undefined);
      assert.equal(pragma(own, "synchronous"), 2, "FULL");
      assert.equal(pragma(own, "busy_timeout"), 1234);
      // The journal mode and the schema version are the file's: any other connection sees them.
      const other = new DatabaseSync(path);
      try {
        assert.equal(pragma(other, "journal_mode"), "wal");
        assert.equal(pragma(other, "user_version"), 1);
      } finally {
        other.close();
      }
    } finally {
      s.close();
    }
  });

  it("keeps every committed entry when the server is killed with SIGKILL", async () => {
    const path = freshFile();
    // The child commits batches as fast as it can, saying "committed N" after each; more writes are always
    // queued but not committed. It is killed at an arbitrary moment, possibly inside a transaction.
    const code = `
      import { BlocklistStore } from ${JSON.stringify(STORE_MODULE)};
      const store = BlocklistStore.open(${JSON.stringify(path)}, { flushIntervalMs: 1, maxBatch: 100000 });
      for (let round = 0; ; round++) {
        for (let i = 0; i < 50; i++) {
          store.enqueue({ address: "10." + (round >> 8) + "." + (round & 255) + "." + i, reason: "r" + round, source: "auto", hits: 10 });
        }
        store.flush();
        process.stdout.write("committed " + round + "\\n");
        store.enqueue({ address: "172.16." + (round >> 8) + "." + (round & 255), reason: "queued", source: "auto" });
        await new Promise((r) => setImmediate(r));
      }`;
    const child = spawn(process.execPath, ["--input-type=module", "-e", code], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stderr.on("data", (d) => (err += d));
    let lastCommitted = -1;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`child too slow; stderr: ${err}`)), 20_000);
      child.stdout.on("data", (d) => {
        out += d;
        const lines = out.split("\n");
        out = lines.pop()!;
        for (const l of lines) {
          const m = /^committed (\d+)$/.exec(l);
          if (m) lastCommitted = Number(m[1]);
        }
        if (lastCommitted >= 30 && !child.killed) {
          child.kill("SIGKILL");
          clearTimeout(timer);
          resolve();
        }
      });
      child.on("exit", (c, sig) => {
        if (sig !== "SIGKILL") reject(new Error(`child exited ${c}: ${err}`));
      });
    });
    await new Promise((r) => child.once("close", r));
    assert.equal(child.signalCode, "SIGKILL");

    const check = new DatabaseSync(path);
    assert.equal(
      (check.prepare("PRAGMA integrity_check").get() as Record<string, string>)["integrity_check"],
      "ok",
    );
    check.close();
    const s = BlocklistStore.open(path, { pruneIntervalMs: 0 });
    try {
      const have = new Set(s.list().map((e) => e.address));
      for (let round = 0; round <= lastCommitted; round++) {
        for (let i = 0; i < 50; i++) {
          const a = `10.${round >> 8}.${round & 255}.${i}`;
          assert.ok(have.has(a), `${a} was committed (round ${round} of ${lastCommitted}) and must survive`);
        }
      }
      assert.ok(have.size >= 50 * (lastCommitted + 1));
    } finally {
      s.close();
    }
  });

  it("reads while another process holds the write lock; a write waits, then says it is locked", () => {
    const path = freshFile();
    const s = BlocklistStore.open(path, { busyTimeoutMs: 100, pruneIntervalMs: 0 });
    const locker = new DatabaseSync(path);
    try {
      s.add({ address: "192.0.2.1", reason: "", source: "manual" });
      locker.exec("BEGIN IMMEDIATE");
      locker.exec("INSERT INTO blocklist VALUES ('192.0.2.200', '', 0, 0, NULL, 0, 'manual')");
      assert.equal(s.list().length, 1, "WAL: a reader does not wait for the writer");
      const t0 = Date.now();
      assert.throws(
        () => s.add({ address: "192.0.2.2", reason: "", source: "manual" }),
        isStoreError("ERR_BLOCKLIST_LOCKED", /locked by another process \(waited 100 ms/),
      );
      assert.ok(Date.now() - t0 >= 90, "it waited busy_timeout first");
      // A batch that cannot commit stays queued and is retried.
      s.enqueue({ address: "192.0.2.3", reason: "", source: "auto" });
      assert.throws(() => s.flush(), isStoreError("ERR_BLOCKLIST_LOCKED"));
      assert.equal(s.stats().queued, 1);
      locker.exec("COMMIT");
      assert.equal(s.flush(), 1);
      assert.deepEqual(
        s.list().map((e) => e.address),
        ["192.0.2.200", "192.0.2.1", "192.0.2.3"],
      );
    } finally {
      if (locker.isTransaction) locker.exec("ROLLBACK");
      locker.close();
      s.close();
    }
  });

  it("reports a failed background flush through onError and retries it", async () => {
    const path = freshFile();
    const errors: BlocklistStoreError[] = [];
    const s = BlocklistStore.open(path, {
      busyTimeoutMs: 10,
      flushIntervalMs: 10,
      pruneIntervalMs: 0,
      onError: (e) => errors.push(e),
    });
    const locker = new DatabaseSync(path);
    try {
      locker.exec("BEGIN IMMEDIATE");
      s.enqueue({ address: "192.0.2.7", reason: "", source: "auto" });
      const until = Date.now() + 3000;
      while (errors.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
      assert.equal(errors[0]?.code, "ERR_BLOCKLIST_LOCKED");
      assert.equal(s.stats().errors >= 1, true);
      locker.exec("COMMIT");
      const until2 = Date.now() + 5000;
      while (s.stats().queued > 0 && Date.now() < until2) await new Promise((r) => setTimeout(r, 20));
      assert.equal(s.get("192.0.2.7")?.source, "auto", "retried after the lock went away");
    } finally {
      if (locker.isTransaction) locker.exec("ROLLBACK");
      locker.close();
      s.close();
    }
  });

  it("resolves a configured path against the configuration file's directory", () => {
    assert.equal(resolveBlocklistPath("bl.db", "/etc/ntpshield/ntpshield.toml"), "/etc/ntpshield/bl.db");
    assert.equal(resolveBlocklistPath("/var/lib/x.db", "/etc/ntpshield/ntpshield.toml"), "/var/lib/x.db");
    assert.equal(resolveBlocklistPath(":memory:", "/etc/a.toml"), ":memory:");
    assert.equal(resolveBlocklistPath("bl.db"), join(process.cwd(), "bl.db"));
  });
});

/** The SQLite store through the shared suite's asynchronous face (the same suite runs against Redis). */
function sqliteUnderTest(path: string): StoreUnderTest {
  const s = BlocklistStore.open(path, { pruneIntervalMs: 0 });
  return {
    add: async (w) => s.add(w),
    remove: async (a) => s.remove(a),
    get: async (a) => s.get(a),
    list: async (o) => s.list(o),
    count: async (n) => s.count(n),
    addHits: async (a, n, at) => {
      s.enqueueHits(a, n, at);
      s.flush();
    },
    prune: async (n) => s.prune(n),
    close: async () => s.close(),
  };
}

for (const [kind, where] of kinds) storeBehaviour(`SQLite ${kind}`, async () => sqliteUnderTest(where()));
