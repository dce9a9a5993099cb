// The verdict cache of the reverse-DNS access lists (src/defence/names-cache.ts): its TTLs and bounds, the
// lookup limits and the queue, and the gate built from the configuration. The rules are tested in
// test/defence/names-rules.test.ts; the lookups themselves, against a real DNS server, in
// test/server/name-resolver.test.ts.

import assert from "node:assert/strict";
import { PerformanceObserver } from "node:perf_hooks";
import { describe, test } from "node:test";
import { getHeapSpaceStatistics, setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { Worker } from "node:worker_threads";
import fc from "fast-check";
import { parseConfig } from "../../src/config/index.ts";
import { addressKey, formatAddressKey, KEY_WORDS } from "../../src/defence/address-key.ts";
import { DefenceError } from "../../src/defence/errors.ts";
import {
  NAME_PENDING,
  NAME_UNKNOWN,
  NameGate,
  NC_EVICTED,
  NC_QUEUED,
  NC_REFUSED_BUSY,
  NC_REFUSED_RATE,
  NC_STALE,
  nameGateBytes,
} from "../../src/defence/names-cache.ts";
import {
  NAME_ALLOW,
  NAME_DENY,
  NAME_MAX_CONCURRENT,
  NAME_MIN_CACHE,
  type NameGateOptions,
  nameGateOptions,
} from "../../src/defence/names-rules.ts";

const T0 = 1_700_000_000_000;
const MIL = [{ suffix: ".mil", action: "allow" }];

/** The key of the n-th address of 10.0.0.0/8 (distinct for n < 2^24). */
function nthKey(n: number): Uint32Array {
  return addressKey(`10.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`)!;
}

function gate(options: NameGateOptions = {}): NameGate {
  return NameGate.create({ rules: MIL, maxRate: 100_000, cacheSize: NAME_MIN_CACHE, seed: 7, ...options });
}

function drained(g: NameGate): string[] {
  const out: string[] = [];
  g.drain((k) => out.push(formatAddressKey(k)));
  return out;
}

describe("the gate", () => {
  test("without rules it is inactive; a reload that adds rules activates it", () => {
    const g = NameGate.create({});
    assert.equal(g.active, false);
    assert.equal(g.size, 0);
    assert.equal(g.peek(nthKey(1)), NAME_UNKNOWN);
    g.reconfigure({ rules: MIL });
    assert.equal(g.active, true);
    assert.equal(g.check(nthKey(1), T0), NAME_PENDING);
  });

  test("views attached to one buffer share verdicts, limits and counters", () => {
    const a = gate({ maxConcurrent: 2 });
    const b = NameGate.attach(a.buffer, { rules: MIL, maxRate: 100_000, maxConcurrent: 2 });
    assert.equal(b.capacity, a.capacity);
    const k = nthKey(1);
    assert.equal(a.check(k, T0), NAME_PENDING);
    assert.equal(b.check(k, T0), NAME_PENDING); // pending in a: b queues nothing
    assert.equal(b.queued, 0);
    assert.equal(a.queued, 1);
    b.check(nthKey(2), T0);
    assert.equal(b.queued, 1);
    assert.equal(a.check(nthKey(3), T0), NAME_PENDING); // two pending in all: the shared limit is reached
    assert.equal(a.queued, 1);
    assert.equal(a.counters[NC_REFUSED_BUSY], 1);
    assert.equal(b.counters[NC_REFUSED_BUSY], 1); // one set of counters
    a.drain((key) => a.settle(key, NAME_ALLOW, 60_000, T0));
    assert.equal(b.check(k, T0 + 1), NAME_ALLOW);
    assert.equal(b.pending, 1);
    // New rules: the first view to take them forgets the verdicts, the next one finds that done.
    a.reconfigure({ rules: [{ suffix: "mil", action: "deny" }], maxRate: 100_000, maxConcurrent: 2 });
    assert.equal(b.peek(k), NAME_UNKNOWN);
    a.check(k, T0 + 2);
    a.drain((key) => a.settle(key, NAME_DENY, 60_000, T0 + 2));
    b.reconfigure({ rules: [{ suffix: ".MIL.", action: "deny" }], maxRate: 100_000, maxConcurrent: 2 });
    assert.equal(b.peek(k), NAME_DENY);
    for (const bad of [new SharedArrayBuffer(64), new SharedArrayBuffer(a.buffer.byteLength - 8)]) {
      assert.throws(() => NameGate.attach(bad), DefenceError);
    }
  });

  test("worker threads hammering one shared gate look every address up exactly once", async () => {
    const g = gate({ maxConcurrent: NAME_MAX_CONCURRENT, cacheSize: 4096 });
    const url = new URL("../../src/defence/names-cache.ts", import.meta.url).href;
    // Each thread checks the same 2000 addresses in its own order, settling whatever it queued at once.
    const code = `
      const { workerData, parentPort } = require("node:worker_threads");
      import(workerData.url).then(({ NameGate }) => {
        const g = NameGate.attach(workerData.buffer, { rules: [{ suffix: ".mil", action: "allow" }], maxRate: 1e5, maxConcurrent: 256 });
        const key = new Uint32Array(4);
        key[2] = 0xffff;
        let queued = 0;
        const sync = new Int32Array(workerData.sync);
        Atomics.add(sync, 0, 1);
        while (Atomics.load(sync, 0) < workerData.threads) {} // start together
        for (let round = 0; round < 20; round++) {
          for (let j = 0; j < 2000; j++) {
            key[3] = 0x0a000000 + ((j * workerData.stride + round) % 2000);
            g.check(key, workerData.t0 + round);
            g.drain((k) => { queued++; g.settle(k, workerData.allow, 3600000, workerData.t0); });
          }
        }
        parentPort.postMessage(queued);
      });`;
    const strides = [1, 1, 7, 1999];
    const sync = new SharedArrayBuffer(4);
    const queued = await Promise.all(
      strides.map(
        (stride) =>
          new Promise<number>((res, rej) => {
            const workerData = {
              buffer: g.buffer,
              url,
              stride,
              t0: T0,
              sync,
              threads: strides.length,
              allow: NAME_ALLOW,
            };
            const w = new Worker(code, { eval: true, workerData });
            w.once("message", res);
            w.once("error", rej);
          }),
      ),
    );
    assert.equal(
      queued.reduce((x, y) => x + y, 0),
      2000,
      `lookups per thread: ${queued.join(", ")}`,
    );
    assert.equal(g.counters[NC_QUEUED], 2000);
    assert.equal(g.size, 2000);
    assert.equal(g.pending, 0);
    for (let j = 0; j < 2000; j++) assert.equal(g.peek(addressKey(`10.0.${j >> 8}.${j & 255}`)!), NAME_ALLOW);
  });

  test("first sight queues one lookup; the settled verdict is served until its TTL", () => {
    const g = gate();
    const k = addressKey("192.0.2.1")!;
    assert.equal(g.check(k, T0), NAME_PENDING);
    assert.equal(g.check(k, T0 + 1), NAME_PENDING); // still pending: not queued twice
    assert.equal(g.queued, 1);
    assert.equal(g.pending, 1);
    assert.equal(g.peek(k), NAME_PENDING);
    assert.deepEqual(drained(g), ["192.0.2.1"]);
    assert.equal(g.queued, 0);
    assert.equal(g.pending, 1); // in the shell's hands until settled
    assert.equal(g.settle(k, NAME_ALLOW, 60_000, T0 + 10), true);
    assert.equal(g.pending, 0);
    assert.equal(g.check(k, T0 + 20), NAME_ALLOW);
    assert.equal(g.check(k, T0 + 60_009), NAME_ALLOW);
    assert.equal(g.queued, 0);
    // Expired: the old verdict stands while the refresh is pending.
    assert.equal(g.check(k, T0 + 60_010), NAME_ALLOW);
    assert.equal(g.queued, 1);
    assert.equal(g.counters[NC_STALE], 1);
    assert.equal(g.check(k, T0 + 60_011), NAME_ALLOW);
    assert.equal(g.queued, 1);
    assert.deepEqual(drained(g), ["192.0.2.1"]);
    assert.equal(g.settle(k, NAME_DENY, 1000, T0 + 60_020), true);
    assert.equal(g.check(k, T0 + 60_021), NAME_DENY);
    assert.equal(g.counters[NC_QUEUED], 2);
  });

  test("settle and release only act on a pending lookup", () => {
    const g = gate();
    const k = nthKey(5);
    assert.equal(g.settle(k, NAME_ALLOW, 1000, T0), false);
    assert.equal(g.release(k), false);
    g.check(k, T0);
    assert.throws(() => g.settle(k, NAME_PENDING, 1000, T0), DefenceError);
    assert.equal(g.release(k), true);
    assert.equal(g.peek(k), NAME_UNKNOWN); // no verdict before: forgotten
    assert.equal(g.pending, 0);
    assert.equal(g.size, 0);
    g.check(k, T0);
    g.settle(k, NAME_DENY, 1000, T0);
    assert.equal(g.settle(k, NAME_ALLOW, 1000, T0), false); // settled already
    g.check(k, T0 + 2000); // expired: refresh queued
    assert.equal(g.release(k), true);
    assert.equal(g.peek(k), NAME_DENY); // the stale verdict is kept
    assert.equal(g.check(k, T0 + 2001), NAME_DENY); // and it asks again
    assert.equal(g.pending, 1);
  });

  test("rate limit: a burst of 1000 new sources queues one second's worth, refused ones store nothing", () => {
    const g = gate({ maxRate: 5 });
    let pending = 0;
    for (let i = 0; i < 1000; i++) if (g.check(nthKey(i), T0) === NAME_PENDING) pending++;
    assert.equal(pending, 1000);
    assert.equal(g.queued, 5);
    assert.equal(g.size, 5);
    assert.equal(g.counters[NC_REFUSED_RATE], 995);
    assert.deepEqual(drained(g), ["10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]);
    // 400 ms earn two tokens.
    for (let i = 1000; i < 1100; i++) g.check(nthKey(i), T0 + 400);
    assert.equal(g.queued, 2);
    // A refused address is asked again on its next packet.
    g.check(nthKey(999), T0 + 800);
    assert.equal(g.queued, 3);
    assert.equal(g.peek(nthKey(999)), NAME_PENDING);
  });

  test("concurrency limit: at most maxConcurrent pending, a settle frees a place", () => {
    const g = gate({ maxConcurrent: 3 });
    for (let i = 0; i < 100; i++) g.check(nthKey(i), T0);
    assert.equal(g.pending, 3);
    assert.equal(g.counters[NC_REFUSED_BUSY], 97);
    const keys: Uint32Array[] = [];
    g.drain((k) => keys.push(k));
    assert.equal(g.check(nthKey(50), T0), NAME_PENDING);
    assert.equal(g.pending, 3); // drained but not settled: still counted
    g.settle(keys[0]!, NAME_ALLOW, 1000, T0);
    g.check(nthKey(50), T0);
    assert.equal(g.pending, 3);
    assert.deepEqual(drained(g), ["10.0.0.50"]);
  });

  test("a full cache evicts an entry not seen again since it was stored (CLOCK), never a pending lookup", () => {
    const g = gate({ maxConcurrent: NAME_MAX_CONCURRENT });
    const cap = g.capacity;
    for (let i = 0; i < cap; i++) {
      g.check(nthKey(i), T0);
      g.drain((k) => g.settle(k, NAME_ALLOW, 3_600_000, T0));
    }
    assert.equal(g.size, cap);
    g.check(nthKey(0), T0 + 1); // 0 has been seen again; 1 has not
    g.check(nthKey(cap), T0 + 2);
    assert.equal(g.size, cap);
    assert.equal(g.counters[NC_EVICTED], 1);
    assert.equal(g.peek(nthKey(1)), NAME_UNKNOWN);
    assert.equal(g.peek(nthKey(0)), NAME_ALLOW);
    // A lookup that stays pending while three cache-fulls of other addresses pass through: the hand passes
    // it again and again, and skips it every time.
    const h = gate({ maxConcurrent: 2 });
    const slow = nthKey(99_999);
    h.check(slow, T0);
    assert.deepEqual(drained(h), ["10.1.134.159"]);
    for (let i = 0; i < 3 * h.capacity; i++) {
      h.check(nthKey(i), T0 + 1);
      h.drain((k) => h.settle(k, NAME_ALLOW, 3_600_000, T0 + 1));
      assert.ok(h.size <= h.capacity);
    }
    assert.equal(h.counters[NC_EVICTED], 2 * h.capacity + 1);
    assert.equal(h.peek(slow), NAME_PENDING);
    assert.equal(h.pending, 1);
    assert.equal(h.settle(slow, NAME_DENY, 1000, T0 + 2), true);
  });

  test("addresses that came back survive a flood of one-packet sources", () => {
    const g = gate({ maxConcurrent: NAME_MAX_CONCURRENT });
    const cap = g.capacity;
    for (let i = 0; i < cap; i++) {
      g.check(nthKey(i), T0);
      g.drain((k) => g.settle(k, NAME_ALLOW, 3_600_000, T0));
    }
    for (let i = 0; i < cap; i += 2) assert.equal(g.check(nthKey(i), T0 + 1), NAME_ALLOW); // the clients
    for (let i = 0; i < cap / 2; i++) {
      g.check(nthKey(100_000 + i), T0 + 2); // the flood: each source once
      g.drain((k) => g.settle(k, NAME_DENY, 3_600_000, T0 + 2));
    }
    assert.equal(g.counters[NC_EVICTED], cap / 2);
    for (let i = 0; i < cap; i++) assert.equal(g.peek(nthKey(i)), i % 2 === 0 ? NAME_ALLOW : NAME_UNKNOWN);
  });

  test("reconfigure: new rules forget verdicts but keep pending lookups; limits apply at once", () => {
    const g = gate();
    const a = nthKey(1);
    const b = nthKey(2);
    g.check(a, T0);
    g.drain((k) => g.settle(k, NAME_ALLOW, 60_000, T0));
    g.check(b, T0);
    g.reconfigure({ rules: MIL, maxRate: 100_000, ttl: 10 }); // same rules: verdicts kept
    assert.equal(g.peek(a), NAME_ALLOW);
    assert.equal(g.ttlMs, 10_000);
    g.reconfigure({ rules: [{ suffix: ".mil", action: "deny" }], maxRate: 100_000 });
    assert.equal(g.peek(a), NAME_UNKNOWN);
    assert.equal(g.peek(b), NAME_PENDING);
    assert.equal(g.pending, 1);
    assert.equal(g.verdictFor("x.mil"), NAME_DENY);
    g.reconfigure({ rules: MIL, pending: "drop", maxConcurrent: 1, maxRate: 100_000 });
    assert.equal(g.dropPending, true);
    g.check(nthKey(3), T0);
    assert.equal(g.pending, 1); // b's lookup fills the single place
    g.reconfigure({ rules: [] });
    assert.equal(g.active, false);
  });

  test("bad options are DefenceErrors", () => {
    for (const o of [
      { cacheSize: 100 },
      { maxConcurrent: 0 },
      { maxConcurrent: NAME_MAX_CONCURRENT + 1 },
      { maxRate: 0 },
      { ttl: 0 },
      { negativeTtl: Number.NaN },
      { pending: "later" },
    ]) {
      assert.throws(() => NameGate.create({ rules: MIL, ...o }), DefenceError, JSON.stringify(o));
    }
  });

  test("property: against a model with no limit reached, every check answers as the model", () => {
    type Op =
      | { op: "check"; k: number; dt: number }
      | { op: "settle"; verdict: number; ttl: number }
      | { op: "release" };
    const ops = fc.array(
      fc.oneof(
        fc.record({ op: fc.constant("check" as const), k: fc.nat(20), dt: fc.nat(3000) }),
        fc.record({
          op: fc.constant("settle" as const),
          verdict: fc.constantFrom(NAME_ALLOW, NAME_DENY),
          ttl: fc.integer({ min: 1, max: 5000 }),
        }),
        fc.record({ op: fc.constant("release" as const) }),
      ),
      { minLength: 50, maxLength: 300, size: "max" },
    );
    fc.assert(
      fc.property(ops, (list: Op[]) => {
        const g = gate();
        const model = new Map<number, { verdict: number; pending: boolean; expires: number }>();
        const inFlight: number[] = []; // drained, in order
        let now = T0;
        for (const o of list) {
          g.drain((k) => inFlight.push(k[3]! & 0xffffff));
          if (o.op === "check") {
            now += o.dt;
            const m = model.get(o.k);
            let expected: number;
            if (m === undefined) {
              model.set(o.k, { verdict: 0, pending: true, expires: 0 });
              expected = NAME_PENDING;
            } else if (m.pending) {
              expected = m.verdict === 0 ? NAME_PENDING : m.verdict;
            } else {
              if (m.expires <= now) m.pending = true;
              expected = m.verdict;
            }
            assert.equal(g.check(nthKey(o.k), now), expected);
          } else if (inFlight.length > 0) {
            const k = inFlight.shift()!;
            const m = model.get(k)!;
            if (o.op === "settle") {
              assert.equal(g.settle(nthKey(k), o.verdict, o.ttl, now), true);
              Object.assign(m, { verdict: o.verdict, pending: false, expires: now + o.ttl });
            } else {
              assert.equal(g.release(nthKey(k)), true);
              if (m.verdict === 0) model.delete(k);
              else m.pending = false;
            }
          }
          const pending = [...model.values()].filter((m) => m.pending).length;
          assert.equal(g.pending, pending);
          assert.equal(g.size, model.size);
        }
      }),
      { numRuns: 300 },
    );
  });

  test("property: under any traffic the budget holds and the cache stays bounded", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ k: fc.nat(5000), dt: fc.nat(50), settle: fc.boolean() }), {
          minLength: 100,
          maxLength: 3000,
          size: "max",
        }),
        fc.integer({ min: 1, max: 8 }),
        fc.double({ min: 0.5, max: 50, noNaN: true }),
        (traffic, maxConcurrent, maxRate) => {
          const g = NameGate.create({
            rules: MIL,
            maxConcurrent,
            maxRate,
            cacheSize: NAME_MIN_CACHE,
            seed: 3,
          });
          const held: Uint32Array[] = [];
          let now = T0;
          for (const t of traffic) {
            now += t.dt;
            g.check(nthKey(t.k), now);
            g.drain((k) => held.push(k));
            if (t.settle && held.length > 0) g.settle(held.shift()!, NAME_ALLOW, 1000, now);
            assert.ok(g.pending <= maxConcurrent);
            assert.ok(g.size <= g.capacity);
            assert.equal(g.pending, held.length);
          }
          const seconds = (now - T0) / 1000;
          assert.ok(g.counters[NC_QUEUED]! <= Math.max(1, maxRate) + maxRate * seconds + 1e-9);
        },
      ),
      { numRuns: 100 },
    );
  });

  test("checkNow allocates nothing: a million hits, stale verdicts and refusals, no garbage collection", async () => {
    const g = gate({ maxRate: 1, maxConcurrent: 4 });
    const known = nthKey(1);
    g.check(known, T0 - 10);
    g.drain((k) => g.settle(k, NAME_ALLOW, 5, T0 - 10)); // expired at T0: every check tries a refresh
    const unknown = new Uint32Array(KEY_WORDS);
    unknown[2] = 0xffff;
    // The hot path's form: time in the gate's clock array, moving forward by 10 ns steps (too slowly to
    // earn a token) and back every 1000 steps.
    const run = (n: number) => {
      let served = 0;
      for (let i = 0; i < n; i++) {
        g.clock[0] = T0 + (i % 1000) / 100_000;
        served += g.checkNow(known); // stale verdict, refresh refused by the rate limit
        unknown[3] = i; // a new source each time: refused by the rate limit, nothing stored
        served += g.checkNow(unknown);
      }
      return served;
    };
    run(200_000); // warm up, so the optimizing compiler has settled
    const young = () => getHeapSpaceStatistics().find((s) => s.space_name === "new_space")!.space_used_size;
    // A full collection first, so the loop starts with an empty young generation.
    setFlagsFromString("--expose-gc");
    (runInNewContext("gc") as () => void)();
    await new Promise((r) => setTimeout(r, 20));
    const gcs: string[] = [];
    const observer = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) gcs.push(e.name);
    });
    observer.observe({ entryTypes: ["gc"] });
    const before = young();
    run(1_000_000);
    const grown = young() - before;
    await new Promise((r) => setTimeout(r, 50)); // GC entries are delivered asynchronously
    observer.disconnect();
    // Two million calls allocating even 16 bytes each would make 32 MB of garbage: either the young
    // generation grows by that much, or it is collected (and the collection observed) on the way.
    assert.equal(gcs.length, 0, `${gcs.length} collections during the loop`);
    assert.ok(grown < 1024 * 1024, `the young generation grew by ${grown} bytes`);
    assert.equal(g.size, 1); // only the known address: the refused ones stored nothing
    assert.ok(g.counters[NC_REFUSED_RATE]! >= 2_000_000);
  });
});

describe("configuration", () => {
  test("[names] builds a gate", () => {
    const c = parseConfig(
      [
        "[names]",
        'default = "deny"',
        "max-concurrent = 10",
        "max-rate = 8",
        "cache-size = 100000",
        '[[names.rule]]\nsuffix = "bad.mil"\naction = "deny"',
        '[[names.rule]]\nsuffix = ".mil"\naction = "allow"',
      ].join("\n"),
    );
    const o = nameGateOptions(c.names);
    assert.equal(o.maxConcurrent, 10);
    assert.equal(o.maxRate, 8);
    assert.equal(o.cacheSize, 100_000);
    const g = NameGate.create(o);
    assert.equal(g.capacity, 100_000);
    assert.equal(g.buffer.byteLength, nameGateBytes(100_000));
    assert.equal(g.active, true);
    assert.equal(g.verdictFor("a.bad.mil"), NAME_DENY);
    assert.equal(g.verdictFor("a.good.mil"), NAME_ALLOW);
    assert.equal(g.verdictFor(null), NAME_DENY);
    assert.equal(NameGate.create(nameGateOptions(parseConfig("").names)).active, false);
  });

  test("a rule missing its suffix or action is reported by key", () => {
    assert.throws(
      () => parseConfig('[[names.rule]]\naction = "allow"\n[[names.rule]]\nsuffix = ".mil"\n'),
      (e: unknown) => {
        const keys = (e as { problems: { key: string }[] }).problems.map((p) => p.key);
        assert.deepEqual(keys, ["names.rule[0].suffix", "names.rule[1].action"]);
        return true;
      },
    );
  });
});
