import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { hashKeyWords } from "../../src/defence/address-key.ts";
import {
  CLASS_KNOWN,
  CLASS_MOUSE,
  CLASS_NEW,
  nextAutoRedline,
  OVERLOAD_ADMIT,
  OVERLOAD_WITHHOLD,
  OverloadControl,
  POOLS,
  WINDOW,
} from "../../src/defence/overload.ts";
import { createRng } from "../../src/defence/random.ts";

/**
 * Offers `perSecond[k]` requests of class k, each a different source, the classes interleaved evenly through
 * each second (so every measurement window sees the same mix).
 */
function run(
  oc: OverloadControl,
  seconds: number,
  perSecond: [number, number, number],
  start = 0,
): { offered: number[]; admitted: number[] } {
  const offered = [0, 0, 0];
  const admitted = [0, 0, 0];
  const total = perSecond[0] + perSecond[1] + perSecond[2];
  let n = 0;
  for (let sec = 0; sec < seconds; sec++) {
    const sent = [0, 0, 0];
    for (let i = 0; i < total; i++) {
      oc.clock[0] = start + sec + i / total;
      // The class furthest behind its share of the second so far.
      let k = 0;
      let lag = Number.NEGATIVE_INFINITY;
      for (let c = 0; c < 3; c++) {
        const behind = ((i + 1) * perSecond[c]!) / total - sent[c]!;
        if (perSecond[c]! > 0 && behind > lag) {
          lag = behind;
          k = c;
        }
      }
      sent[k]!++;
      const hash = hashKeyWords(n++, 0, 0, 0, 7); // a different source each time, hashed as the core does
      offered[k]!++;
      if (oc.admitNow(k, hash) === OVERLOAD_ADMIT) admitted[k]!++;
    }
  }
  return { offered, admitted };
}

/** Requests per second that one request a window amounts to. */
const grainOf = () => 1 / WINDOW;

describe("overload control (paper §12): past the redline, mice first, rotating pools", () => {
  test("no redline known: everything admitted, whatever the load", () => {
    const oc = OverloadControl.create({ workers: 1 }, createRng(1));
    const r = run(oc, 5, [10, 100, 5000]);
    assert.deepEqual(r.admitted, r.offered);
    assert.equal(oc.stats().overloaded, false);
  });

  test("below the redline: everything admitted, never overloaded", () => {
    const oc = OverloadControl.create({ workers: 1 }, createRng(2));
    oc.setRedline(1000);
    const r = run(oc, 10, [100, 300, 500]);
    assert.deepEqual(r.admitted, r.offered);
    assert.equal(oc.stats().entered, 0);
  });

  test("a flood of newcomers past the redline: every mouse and known client served, newcomers get what is left", () => {
    const oc = OverloadControl.create({ workers: 1 }, createRng(3));
    oc.setRedline(1000);
    // The first second measures; from the second on, the pools are set.
    run(oc, 1, [200, 300, 5000]);
    const r = run(oc, 20, [200, 300, 5000], 1);
    assert.equal(r.admitted[CLASS_MOUSE], r.offered[CLASS_MOUSE]);
    assert.equal(r.admitted[CLASS_KNOWN], r.offered[CLASS_KNOWN]);
    // 500 of capacity left for 5,000 newcomers: 10% served, rounded down to whole pools (6 of 64 = 9.4%).
    const share = r.admitted[CLASS_NEW]! / r.offered[CLASS_NEW]!;
    assert.ok(share > 0.06 && share <= 0.1, `newcomers served ${share}`);
    const s = oc.stats();
    assert.equal(s.overloaded, true);
    assert.equal(s.entered, 1);
    assert.deepEqual(s.withheldPools.slice(0, 2), [0, 0]);
    assert.equal(s.withheldPools[CLASS_NEW], Math.ceil(0.9 * POOLS));
  });

  test("when mice alone exceed the redline, they share it and nobody else is served", () => {
    const oc = OverloadControl.create({ workers: 1 }, createRng(4));
    oc.setRedline(100);
    run(oc, 1, [400, 100, 1000]);
    const r = run(oc, 10, [400, 100, 1000], 1);
    assert.equal(r.admitted[CLASS_KNOWN], 0);
    assert.equal(r.admitted[CLASS_NEW], 0);
    const share = r.admitted[CLASS_MOUSE]! / r.offered[CLASS_MOUSE]!;
    // A quarter in whole pools (64 of 256), give or take the hash's spread over the mice's sources.
    assert.ok(share > 0.15 && share <= 0.26, `mice served ${share}`);
  });

  test("a withheld source is withheld for a whole period, and every pool is served in turn", () => {
    const oc = OverloadControl.create({ workers: 1, periodMin: 4, periodMax: 8, hashSeed: 1 }, createRng(5));
    oc.setRedline(1000);
    // One source per pool, asking every 0.05 s alongside a steady flood of newcomers (five steps a window, so
    // every window sees the same demand).
    const servedAt: number[][] = Array.from({ length: POOLS }, () => []);
    let n = 0;
    for (let step = 0; step < 4000; step++) {
      const t = step * 0.05;
      oc.clock[0] = t;
      for (let i = 0; i < 200; i++) oc.admitNow(CLASS_NEW, (n++ * 0x9e3779b1) >>> 2);
      for (let p = 0; p < POOLS; p++) {
        if (oc.admitNow(CLASS_NEW, p) === OVERLOAD_ADMIT) servedAt[p]!.push(t);
      }
    }
    for (let p = 0; p < POOLS; p++) {
      assert.ok(servedAt[p]!.length > 0, `pool ${p} was served at some time`);
      // Runs of silence: once withheld, withheld for at least the shortest period (minus one window of
      // measurement), never a packet here and there.
      const times = servedAt[p]!;
      for (let i = 1; i < times.length; i++) {
        const gap = times[i]! - times[i - 1]!;
        assert.ok(
          gap < 0.075 || gap >= 3.75,
          `pool ${p}: a silence of ${gap.toFixed(2)} s is not a whole period`,
        );
      }
    }
    assert.ok(oc.stats().withheld[CLASS_NEW]! > 0);
  });

  test("workers share one state: capacity is the sum of their redlines, demand the sum of their counts", () => {
    const a = OverloadControl.create({ workers: 2 }, createRng(6));
    const b = a.view(1);
    a.setRedline(500);
    b.setRedline(500);
    // 1,400 requests/s in all, 700 on each worker: past 1,000 only together.
    for (let t = 0; t < 5; t += 1 / 700) {
      a.clock[0] = t;
      b.clock[0] = t;
      a.admitNow(CLASS_NEW, (t * 1e6) & 0x3fffffff);
      b.admitNow(CLASS_NEW, (t * 3e6) & 0x3fffffff);
    }
    const s = a.stats();
    assert.equal(s.capacity, 1000);
    assert.ok(Math.abs(s.demand[CLASS_NEW]! - 1400) <= 2, `demand ${s.demand[CLASS_NEW]}`);
    assert.equal(s.overloaded, true);
    assert.equal(b.overloaded, true);
    // 28.6% of 256 pools, give or take one for the demand's window-to-window jitter.
    const expected = Math.ceil((1 - 1000 / 1400) * POOLS);
    assert.ok(Math.abs(s.withheldPools[CLASS_NEW]! - expected) <= 1, `${s.withheldPools[CLASS_NEW]} pools`);
  });

  test("overload is left below 90% of the redline, not at the first dip (no flapping)", () => {
    const oc = OverloadControl.create({ workers: 1 }, createRng(7));
    oc.setRedline(1000);
    run(oc, 3, [0, 0, 1500]);
    assert.equal(oc.stats().overloaded, true);
    run(oc, 3, [0, 0, 950], 3);
    assert.equal(oc.stats().overloaded, true, "still in overload at 95% of the redline");
    assert.equal(oc.stats().withheldPools[CLASS_NEW], 0, "but nothing withheld: the load fits");
    run(oc, 3, [0, 0, 800], 6);
    const s = oc.stats();
    assert.equal(s.overloaded, false);
    assert.equal(s.entered, 1);
    assert.equal(s.left, 1);
  });

  test("property: past the redline, the admitted load of each class never exceeds what the classes before leave", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 100, max: 2000 }),
        fc.tuple(
          fc.integer({ min: 0, max: 1500 }),
          fc.integer({ min: 0, max: 1500 }),
          fc.integer({ min: 0, max: 4000 }),
        ),
        (redline, load) => {
          const oc = OverloadControl.create({ workers: 1 }, createRng(8));
          oc.setRedline(redline);
          run(oc, 1, load);
          const r = run(oc, 4, load, 1);
          const perSec = r.admitted.map((x) => x / 4);
          let left = redline;
          const total = load[0] + load[1] + load[2];
          for (let k = 0; k < 3; k++) {
            if (Math.abs(total - redline) < grainOf()) return; // at the redline a window's rounding decides
            if (total <= redline) {
              assert.equal(perSec[k], load[k], "under the redline everything is served");
              continue;
            }
            // Whole pools: a class is served at most its share, and a class that fits whole is served whole,
            // give or take one request a window (a quarter-second window holds a quarter of a second's load,
            // rounded to whole requests).
            const grain = 1 / WINDOW;
            if (load[k]! + grain <= left) assert.equal(perSec[k], load[k]);
            else {
              // The pools withheld are exactly the share the capacity leaves (rounded up to whole pools, give
              // or take one for a window's rounding)...
              const held = oc.stats().withheldPools[k]!;
              // A window holds a quarter second's requests in whole numbers, so the demand and what the
              // classes before leave are each known to a request a window (`grain` a second).
              const pools = (demand: number, room: number) =>
                Math.min(
                  POOLS,
                  Math.max(0, Math.ceil((1 - Math.max(room, 0) / Math.max(demand, 1e-9)) * POOLS)),
                );
              const lo = pools(load[k]! - grain, left + grain) - 1;
              const hi = pools(load[k]! + grain, left - grain) + 1;
              assert.ok(held >= lo && held <= hi, `class ${k}: ${held} pools, not ${lo}-${hi}`);
              // ...and what gets through them is that share, within the spread of a hash over the sources
              // (four standard deviations of a binomial draw over the run's requests).
              const share = (POOLS - held) / POOLS;
              const spread = (4 * Math.sqrt(load[k]! * 4 * share * (1 - share))) / 4;
              const most = Math.max(left, share * load[k]!) + spread + grain;
              assert.ok(perSec[k]! <= most, `class ${k}: ${perSec[k]} > ${most}`);
            }
            left = Math.max(0, left - load[k]!);
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  test("an attached view refuses a foreign buffer and a slot out of range", () => {
    const oc = OverloadControl.create({ workers: 2 }, createRng(9));
    assert.throws(() => OverloadControl.attach(new SharedArrayBuffer(512), 0, createRng(1)), {
      code: "ERR_DEFENCE_BUFFER",
    });
    assert.throws(() => OverloadControl.attach(oc.buffer, 2, createRng(1)), { code: "ERR_DEFENCE_OPTION" });
    assert.equal(OVERLOAD_WITHHOLD, 1);
  });
});

describe("overload control: a period's run of withheld pools, mid-period", () => {
  test("a redline raised well within a period lets the newcomers in at once, not at the period's end", () => {
    const oc = OverloadControl.create({ workers: 1, periodMin: 30, periodMax: 30 }, createRng(11));
    oc.setRedline(1000);
    run(oc, 2, [0, 0, 5000]);
    const low = run(oc, 2, [0, 0, 5000], 2);
    // Raised in steps of less than a tenth (as the automatic redline climbs): each step alone forces nothing.
    for (let r = 1050; r <= 2500; r = Math.ceil(r * 1.05)) oc.setRedline(r);
    run(oc, 1, [0, 0, 5000], 4);
    const high = run(oc, 2, [0, 0, 5000], 5);
    // Still inside the 30 s period that began at the start, yet about 2,500 a second are served now.
    assert.ok(
      high.admitted[CLASS_NEW]! > 1.8 * low.admitted[CLASS_NEW]!,
      `${low.admitted} -> ${high.admitted}`,
    );
  });
});

describe("overload control seen from outside the packet path", () => {
  test("a state that nothing recomputed for two windows (the flood stopped, nothing came since) is over", () => {
    const oc = OverloadControl.create({ workers: 1 }, createRng(12));
    assert.equal(oc.overloadedAt(0.5), false);
    oc.setRedline(100);
    run(oc, 3, [0, 0, 2000]);
    assert.equal(oc.overloaded, true);
    assert.equal(oc.overloadedAt(3.2), true, "in the window after the last request");
    assert.equal(oc.overloadedAt(4.9), true);
    assert.equal(oc.overloadedAt(6.1), false, "nothing recomputed since the third window");
    assert.equal(oc.overloaded, true, "the shared state itself is as it was left");
  });
});

describe("the automatic redline (a worker's own measure of what it can carry)", () => {
  const quiet = { processed: 1000, answered: 1000, kernelDrops: 0, fullBatches: 0 };
  test("no redline until the first saturated second", () => {
    assert.equal(nextAutoRedline(0, quiet, false), 0);
    assert.equal(nextAutoRedline(0, { ...quiet, processed: 90_000, answered: 90_000 }, false), 0);
  });

  test("the more the kernel dropped, the deeper the cut: one and a half answers per dropped request", () => {
    const heavy = { processed: 100_000, answered: 60_000, kernelDrops: 20_000, fullBatches: 1 };
    assert.equal(nextAutoRedline(0, heavy, false), 30_000);
    assert.equal(nextAutoRedline(45_000, heavy, true), 30_000);
  });

  test("each saturated second (the kernel dropped requests) cuts it below what was answered", () => {
    const dropped = { processed: 50_000, answered: 50_000, kernelDrops: 1200, fullBatches: 0.2 };
    assert.equal(nextAutoRedline(0, dropped, false), 42_500);
    const still = { processed: 50_000, answered: 42_500, kernelDrops: 900, fullBatches: 0.9 };
    assert.equal(nextAutoRedline(42_500, still, true), 36_125);
    // Never raised by a saturated second.
    assert.equal(nextAutoRedline(10_000, dropped, true), 10_000);
  });

  test("never below what the mice ask (with a margin): past that the worker is bound by what it receives", () => {
    const dropped = { processed: 120_000, answered: 3000, kernelDrops: 8000, fullBatches: 1 };
    // The mice asked 2,900/s: half again as much is the least the redline may be.
    assert.equal(nextAutoRedline(3000, dropped, true, 2900), 4351);
    assert.equal(nextAutoRedline(0, { ...dropped, answered: 1000 }, true, 2900), 4351);
    // Without mice the floor is one request a second, so the redline stays a redline.
    assert.equal(nextAutoRedline(2, { ...dropped, answered: 0 }, true, 0), 1);
  });

  test("full batches without drops neither set nor cut a redline (a busy worker that keeps up), but stop a raise", () => {
    const full = { processed: 50_000, answered: 50_000, kernelDrops: 0, fullBatches: 0.9 };
    assert.equal(nextAutoRedline(0, full, false), 0);
    assert.equal(nextAutoRedline(40_000, full, false), 40_000);
    assert.equal(nextAutoRedline(40_000, full, true), 40_000, "at its edge: not raised");
  });

  test("no raise within ten seconds of the last drops: the redline does not walk back into them", () => {
    // Batches a third full: the worker keeps up, but not with room to spare.
    const calm = { processed: 1000, answered: 1000, kernelDrops: 0, fullBatches: 0.3 };
    assert.equal(nextAutoRedline(40_000, { ...calm, sinceDrops: 3 }, true), 40_000);
    assert.equal(nextAutoRedline(40_000, { ...calm, sinceDrops: 9.9 }, true), 40_000);
    assert.equal(nextAutoRedline(40_000, { ...calm, sinceDrops: 12 }, true), 42_000);
  });

  test("a worker with room (batches nearly empty) climbs back a second after the drops, by 25% a second", () => {
    const roomy = { processed: 300_000, answered: 127_000, kernelDrops: 0, fullBatches: 0.02, seconds: 0.1 };
    // Within the second after the drops the queue they filled may still be draining: no raise yet.
    assert.equal(nextAutoRedline(127_000, { ...roomy, sinceDrops: 0.5, ceiling: 200_000 }, true), 127_000);
    // Then 25% of the ceiling a second: 5,000 in a tenth of a second.
    assert.equal(nextAutoRedline(127_000, { ...roomy, sinceDrops: 1.2, ceiling: 200_000 }, true), 132_000);
    // Batches filling again (the edge is near) stop the fast climb; the slow one waits for ten quiet seconds.
    const edge = { ...roomy, fullBatches: 0.2, sinceDrops: 1.2, ceiling: 200_000 };
    assert.equal(nextAutoRedline(127_000, edge, true), 127_000);
    assert.equal(nextAutoRedline(127_000, { ...edge, sinceDrops: 11 }, true), 128_000);
  });

  test("a redline cut to a handful of mice by a spike climbs back by 5% of the ceiling a second", () => {
    const calm = {
      processed: 1000,
      answered: 100,
      kernelDrops: 0,
      fullBatches: 0.3,
      sinceDrops: 30,
      ceiling: 40_000,
    };
    assert.equal(nextAutoRedline(150, calm, true), 2151); // 150 + 5% of 40,000, rounded up
    assert.equal(nextAutoRedline(150, { ...calm, seconds: 0.1 }, true), 351);
    // With room to spare (batches nearly empty), 25%.
    assert.equal(nextAutoRedline(150, { ...calm, fullBatches: 0.05 }, true), 10_150);
  });

  test("the raise is 5% a second however often the worker measures", () => {
    const tenth = { processed: 1000, answered: 1000, kernelDrops: 0, fullBatches: 0.3, seconds: 0.1 };
    assert.equal(nextAutoRedline(40_000, tenth, true), 40_200);
    assert.equal(nextAutoRedline(40_000, { ...tenth, fullBatches: 0 }, true), 41_000);
  });

  test("past the redline without saturation it probes upward; below it, it stays", () => {
    const busy = { ...quiet, fullBatches: 0.3 };
    assert.equal(nextAutoRedline(40_000, busy, true), 42_000);
    assert.equal(nextAutoRedline(40_000, busy, false), 40_000);
    assert.equal(nextAutoRedline(40_000, quiet, true), 50_000, "with room: 25%");
    assert.equal(nextAutoRedline(40_000, quiet, false), 40_000);
  });
});
