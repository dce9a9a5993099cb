// The simulator's building blocks: the seeded generator, the event queue (against a sorted reference),
// the balancer's three policies, and the configuration patch the scenarios use.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { defaultConfig } from "../../src/config/index.ts";
import { addressKey } from "../../src/defence/address-key.ts";
import { Balancer } from "../../src/sim/balancer.ts";
import { EventQueue } from "../../src/sim/queue.ts";
import { hash01, Random } from "../../src/sim/random.ts";
import { patchConfig } from "../../src/sim/server-model.ts";

describe("Random", () => {
  it("gives the same stream for the same seed and another for another seed", () => {
    const a = new Random(42);
    const b = new Random(42);
    const c = new Random(43);
    const xa = Array.from({ length: 100 }, () => a.next32());
    const xb = Array.from({ length: 100 }, () => b.next32());
    const xc = Array.from({ length: 100 }, () => c.next32());
    assert.deepEqual(xa, xb);
    assert.notDeepEqual(xa, xc);
  });

  it("derives independent, repeatable streams by label", () => {
    const r = new Random(7);
    const p1 = r.derive("population:mice").next32();
    const p2 = r.derive("population:mice").next32();
    const p3 = r.derive("population:routers").next32();
    assert.equal(p1, p2);
    assert.notEqual(p1, p3);
  });

  it("draws in range, with the right means", () => {
    const r = new Random(1);
    let sum = 0;
    let expSum = 0;
    const n = 100_000;
    for (let i = 0; i < n; i++) {
      const f = r.float();
      assert.ok(f >= 0 && f < 1);
      sum += f;
      expSum += r.exponential(3);
      const k = r.int(7);
      assert.ok(Number.isInteger(k) && k >= 0 && k < 7);
      const v = r.rng30()();
      assert.ok(Number.isInteger(v) && v >= 0 && v < 2 ** 30);
    }
    assert.ok(Math.abs(sum / n - 0.5) < 0.01, `mean ${sum / n}`);
    assert.ok(Math.abs(expSum / n - 3) < 0.05, `exponential mean ${expSum / n}`);
  });

  it("hash01 is a fixed uniform number per (seed, index)", () => {
    assert.equal(hash01(5, 123), hash01(5, 123));
    assert.notEqual(hash01(5, 123), hash01(6, 123));
    const buckets = new Array(10).fill(0);
    for (let i = 0; i < 50_000; i++) buckets[Math.floor(hash01(9, i) * 10)]++;
    for (const b of buckets) assert.ok(b > 4500 && b < 5500, `bucket ${b}`);
  });
});

describe("EventQueue", () => {
  it("pops in (time, id) order whatever the insertion order (against a sort)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 1000 })), {
          maxLength: 300,
        }),
        (items) => {
          const q = new EventQueue(4);
          for (const [t, id] of items) q.push(t / 4, id);
          const out: [number, number][] = [];
          while (q.size > 0) {
            out.push([q.topTime(), q.topId()]);
            q.pop();
          }
          const ref = items
            .map(([t, id]) => [t / 4, id] as [number, number])
            .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
          assert.deepEqual(out, ref);
        },
      ),
    );
  });

  it("replaceTop reschedules the earliest slot (a simulated client's next request)", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 40 }), (periods) => {
        // Each id fires every periods[id] seconds; the queue must give the same order as a brute-force merge.
        const q = new EventQueue();
        periods.forEach((p, id) => {
          q.push(p, id);
        });
        const got: string[] = [];
        for (let k = 0; k < 200; k++) {
          const t = q.topTime();
          const id = q.topId();
          got.push(`${t}:${id}`);
          q.replaceTop(t + periods[id]!);
        }
        const want: string[] = [];
        const all: [number, number][] = [];
        periods.forEach((p, id) => {
          for (let t = p; t <= 200 * 20; t += p) all.push([t, id]);
        });
        all.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
        for (let k = 0; k < 200; k++) want.push(`${all[k]![0]}:${all[k]![1]}`);
        assert.deepEqual(got, want);
      }),
    );
  });

  it("rejects NaN times", () => {
    const q = new EventQueue();
    assert.throws(() => q.push(Number.NaN, 1), RangeError);
  });
});

describe("Balancer", () => {
  const keys = Array.from({ length: 3000 }, (_, i) => addressKey(`10.${(i >> 8) & 255}.${i & 255}.7`)!);

  it("round-robin cycles over the servers, packet by packet", () => {
    const b = new Balancer("round-robin", 3, new Random(1));
    const key = keys[0]!;
    assert.deepEqual(
      Array.from({ length: 7 }, () => b.pick(key)),
      [0, 1, 2, 0, 1, 2, 0],
    );
  });

  it("source-hash sends one address always to the same server and spreads addresses evenly", () => {
    const b = new Balancer("source-hash", 3, new Random(1));
    const counts = [0, 0, 0];
    for (const k of keys) {
      const s = b.pick(k);
      assert.equal(b.pick(k), s);
      assert.equal(b.pick(k), s);
      counts[s]!++;
    }
    for (const c of counts) assert.ok(c > 850 && c < 1150, `server share ${c}`);
    // With a power of two it is the paper's mask: still every server used.
    const four = new Balancer("source-hash", 4, new Random(1));
    assert.equal(new Set(keys.map((k) => four.pick(k))).size, 4);
  });

  it("random spreads one address over every server", () => {
    const b = new Balancer("random", 3, new Random(1));
    const counts = [0, 0, 0];
    for (let i = 0; i < 3000; i++) counts[b.pick(keys[0]!)]!++;
    for (const c of counts) assert.ok(c > 850 && c < 1150, `server share ${c}`);
  });

  it("rejects a bad kind or server count", () => {
    assert.throws(() => new Balancer("hash" as "random", 3, new Random(1)), RangeError);
    assert.throws(() => new Balancer("random", 0, new Random(1)), RangeError);
  });
});

describe("patchConfig", () => {
  it("replaces the given keys and keeps the rest", () => {
    const base = defaultConfig();
    const c = patchConfig(base, { mru: { maxEntries: 1200 }, callgap: { leak: 0 } });
    assert.equal(c.mru.maxEntries, 1200);
    assert.equal(c.mru.admitProbability, base.mru.admitProbability);
    assert.equal(c.callgap.leak, 0);
    assert.equal(c.callgap.minimum, base.callgap.minimum);
    assert.equal(base.mru.maxEntries, 100_000);
    assert.ok(Object.isFrozen(c.mru));
  });

  it("names an unknown section or key", () => {
    assert.throws(
      () => patchConfig(defaultConfig(), { nope: {} } as never),
      /unknown configuration section \[nope\]/,
    );
    assert.throws(
      () => patchConfig(defaultConfig(), { mru: { size: 1 } } as never),
      /unknown configuration key mru.size/,
    );
  });
});
