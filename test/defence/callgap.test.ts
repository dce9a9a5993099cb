import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { addressKey } from "../../src/defence/address-key.ts";
import {
  type CallGapConfig,
  type CallGapOptions,
  callGap,
  createCallGap,
  GAP_AVERAGE,
  GAP_MINIMUM,
  GAP_PASS,
  GAP_PASS_BURST,
  GAP_PASS_FAST,
  GAP_PASS_LEAK,
  GAP_RATE,
  GAP_RESULT_NAMES,
  isGapped,
} from "../../src/defence/callgap.ts";
import { DefenceError } from "../../src/defence/errors.ts";
import { MRU_FLAG_LIMITED, MruList } from "../../src/defence/mru.ts";
import { createRng, type Rng } from "../../src/defence/random.ts";

const CLIENT = addressKey("192.0.2.10")!;

/** Runs one client's request times through touch + callGap; returns the result of each request. */
function run(times: readonly number[], options: CallGapOptions = {}, rng: Rng = createRng(1)): number[] {
  const list = MruList.create({ maxEntries: 16, hashSeed: 1 }, createRng(2));
  // The rules' exact counts: no leak unless a test asks for one (the default, 2, answers 1 in 4 on purpose).
  const cfg = createCallGap({ leak: 0, ...options });
  return times.map((t) => decide(list, cfg, t, rng));
}

function decide(list: MruList, cfg: CallGapConfig, t: number, rng: Rng): number {
  list.lock();
  try {
    const r = list.touchLocked(CLIENT, t, 3, 4, 123);
    return callGap(cfg, list, r, rng);
  } finally {
    list.unlock();
  }
}

function every(start: number, interval: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => start + i * interval);
}

function gappedCount(results: readonly number[]): number {
  return results.filter(isGapped).length;
}

/** A client that starts with an iburst of `burst` requests `spacing` apart, then polls every `poll` s. */
function iburstThenPoll(
  start: number,
  burst: number,
  spacing: readonly number[],
  poll: number,
  polls: number,
) {
  const times = [start];
  for (let i = 1; i < burst; i++) times.push(times[i - 1]! + spacing[(i - 1) % spacing.length]!);
  for (let i = 0; i < polls; i++) times.push(times[times.length - 1]! + poll);
  return times;
}

describe("call-gap, rules form (paper §12)", () => {
  test("chrony's iburst (4 requests 2 s apart) and ntpd's (8), then 64 s polling: never gapped", () => {
    for (const burst of [4, 8]) {
      const results = run(iburstThenPoll(1000, burst, [2], 64, 50));
      assert.equal(gappedCount(results), 0, `iburst of ${burst}`);
      assert.ok(results.slice(1, burst).includes(GAP_PASS_BURST), "the allowance is what let it through");
    }
  });

  test("iburst with timer jitter (1.5-2.5 s), polling of 6 s or more, restarts 40 s apart: never gapped (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 1.5, max: 2.5, noNaN: true }), { minLength: 1, maxLength: 7 }),
        fc.integer({ min: 6, max: 1024 }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 3 }),
        (spacing, poll, polls, restarts) => {
          let times: number[] = [];
          let start = 1e6;
          for (let i = 0; i < restarts; i++) {
            const session = iburstThenPoll(start, 8, spacing, poll, polls);
            times = times.concat(session);
            // A restart comes at least burst x average (40 s) after the last request: the time it takes a
            // quiet client to earn its whole allowance back.
            start = session[session.length - 1]! + Math.max(poll, 40);
          }
          assert.equal(gappedCount(run(times)), 0);
        },
      ),
      { numRuns: 300 },
    );
  });

  test("a 1 s poller (a Wisconsin router) is gapped after its fast allowance, by Rule 1", () => {
    const results = run(every(0, 1, 1000));
    assert.equal(gappedCount(results), 1000 - 3, "only the first 3 answered");
    assert.deepEqual(results.slice(0, 3), [GAP_PASS, GAP_PASS_FAST, GAP_PASS_FAST]);
    assert.ok(results.slice(3).every((r) => r === GAP_MINIMUM));
  });

  test("a 3 s poller passes Rule 1 but is gapped by Rule 2 once its average settles", () => {
    const results = run(every(0, 3, 200));
    assert.ok(results.slice(8).every((r) => r === GAP_AVERAGE));
    assert.equal(gappedCount(results), 200 - 8);
  });

  test("a 64 s poller, and a 6 s one, are never gapped", () => {
    assert.equal(gappedCount(run(every(0, 64, 500))), 0);
    assert.equal(gappedCount(run(every(0, 6, 500))), 0);
  });

  test("an elephant that goes quiet is served again once its average recovers", () => {
    const times = every(0, 1, 100).concat(every(100 + 60, 64, 10));
    const results = run(times);
    assert.ok(results.slice(3, 100).every(isGapped));
    assert.ok(
      results.slice(100).every((r) => !isGapped(r)),
      GAP_RESULT_NAMES.join(),
    );
  });

  test("gapped requests are counted in the record and flag it limited", () => {
    const list = MruList.create({ maxEntries: 4, hashSeed: 1 }, createRng(2));
    const cfg = createCallGap({ leak: 0 });
    const rng = createRng(3);
    for (const t of every(0, 1, 20)) decide(list, cfg, t, rng);
    const e = list.read(list.lookup(CLIENT))!;
    assert.equal(e.gapped, 17);
    assert.equal(e.flags & MRU_FLAG_LIMITED, MRU_FLAG_LIMITED);
  });

  test("no record (refused by the MRU): nothing to measure, answered", () => {
    const list = MruList.create({ maxEntries: 1 });
    assert.equal(callGap(createCallGap(), list, -1, createRng(1)), GAP_PASS);
  });

  test("leak n answers about 1 in 2^n gapped requests", () => {
    for (const leak of [1, 2, 4]) {
      const n = 20_000;
      const results = run(every(0, 0.5, n), { leak }, createRng(99 + leak));
      const leaked = results.filter((r) => r === GAP_PASS_LEAK).length;
      const candidates = n - 3;
      const p = 1 / 2 ** leak;
      const sd = Math.sqrt(candidates * p * (1 - p));
      // Six standard deviations: fails only if the leak rate is wrong.
      assert.ok(Math.abs(leaked - candidates * p) < 6 * sd, `leak ${leak}: ${leaked} of ${candidates}`);
      assert.equal(leaked + gappedCount(results), candidates);
    }
  });
});

describe("call-gap, token-bucket form", () => {
  const tb: CallGapOptions = { mode: "token-bucket", interval: 8, burst: 8 };

  test("a 1 s poller is answered at the bucket's rate, one per interval, after its burst", () => {
    const n = 800;
    const results = run(every(0, 1, n), tb);
    const answered = results.filter((r) => r === GAP_PASS).length;
    // 8 from the full bucket plus one per 8 s over the 799 s.
    assert.ok(answered >= 8 + 99 && answered <= 8 + 100, `${answered} answered`);
    assert.ok(results.filter(isGapped).every((r) => r === GAP_RATE));
  });

  test("iburst and polling at the interval or slower: never gapped", () => {
    assert.equal(gappedCount(run(iburstThenPoll(0, 8, [2], 64, 100), tb)), 0);
    assert.equal(gappedCount(run(every(0, 8, 500), tb)), 0);
  });

  test("leak applies too", () => {
    const results = run(every(0, 0.25, 8000), { ...tb, leak: 3 }, createRng(5));
    const leaked = results.filter((r) => r === GAP_PASS_LEAK).length;
    const gapped = gappedCount(results);
    const p = leaked / (leaked + gapped);
    assert.ok(p > 0.1 && p < 0.15, `leaked fraction ${p}`);
  });
});

describe("createCallGap", () => {
  test("defaults are the paper's numbers, with the configuration's leak (2, as chrony's)", () => {
    assert.deepEqual(createCallGap(), {
      tokenBucket: false,
      minimum: 2,
      tolerance: 0.5,
      gapBelow: 1.5,
      average: 5,
      burst: 8,
      fast: 3,
      fastQuiet: 60,
      leak: 2,
      interval: 8,
    });
  });

  test("bad options are refused with a code", () => {
    for (const o of [
      { mode: "nope" as "rules" },
      { minimum: -1 },
      { tolerance: -0.5 },
      { tolerance: 2.5 },
      { minimum: 0.25 },
      { tolerance: Number.NaN },
      { fast: -1 },
      { fast: 101 },
      { fast: 2.5 },
      { fastQuiet: 0 },
      { fastQuiet: Number.POSITIVE_INFINITY },
      { average: 0 },
      { burst: 0 },
      { burst: 1.5 },
      { leak: 17 },
      { interval: Number.NaN },
    ]) {
      assert.throws(
        () => createCallGap(o),
        (e: unknown) => e instanceof DefenceError && e.code === "ERR_DEFENCE_OPTION",
        JSON.stringify(o),
      );
    }
  });
});

/** One client's record in a list of its own: `at(t)` sends a request at t seconds, `fastLeft()` reads it. */
function client(options: CallGapOptions = {}) {
  const list = MruList.create({ maxEntries: 16, hashSeed: 1 }, createRng(2));
  const cfg = createCallGap({ leak: 0, ...options });
  const rng = createRng(1);
  return {
    at: (t: number) => decide(list, cfg, t, rng),
    /** Fast requests left (bits 0-6 of the record's fast byte). */
    fastLeft: () => list.fast[list.lookup(CLIENT)]! & 0x7f,
  };
}

/** Times of a burst: `start`, then each gap in turn. */
function burstAt(start: number, gaps: readonly number[]): number[] {
  const times = [start];
  for (const g of gaps) times.push(times[times.length - 1]! + g);
  return times;
}

const BACK_TO_BACK = fc.array(fc.double({ min: 0, max: 1.4999, noNaN: true }), {
  minLength: 2,
  maxLength: 2,
});

describe("call-gap, the start-up and the fast allowance (rules form)", () => {
  test("8 requests 0.5 s apart (leak 0): the first 3 answered, the other 5 gapped by Rule 1", () => {
    const results = run(every(1000, 0.5, 8), { leak: 0 });
    assert.deepEqual(results, [
      GAP_PASS,
      GAP_PASS_FAST,
      GAP_PASS_FAST,
      GAP_MINIMUM,
      GAP_MINIMUM,
      GAP_MINIMUM,
      GAP_MINIMUM,
      GAP_MINIMUM,
    ]);
    // The start-up allowance (burst 8, whole) exempts Rule 2 only: it answers none of them.
    assert.ok(!results.includes(GAP_PASS_BURST));
  });

  test("3 back to back from a brand-new address are all answered, a 4th is not (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 1.4999, noNaN: true }), { minLength: 3, maxLength: 3 }),
        (gaps) => {
          const results = run(burstAt(5000, gaps), { leak: 0 });
          assert.deepEqual(results, [GAP_PASS, GAP_PASS_FAST, GAP_PASS_FAST, GAP_MINIMUM]);
        },
      ),
      { numRuns: 300 },
    );
  });

  test("3 back to back after 60 s or more of quiet are all answered, whatever came before (property)", () => {
    const history = fc.oneof(
      // a polite poller, an iburst start, an elephant (gapped, kissed: bad history), an earlier burst
      fc.integer({ min: 1, max: 20 }).map((n) => every(0, 64, n)),
      fc.constant(every(0, 2, 8)),
      fc
        .tuple(fc.double({ min: 0.01, max: 4, noNaN: true }), fc.integer({ min: 2, max: 300 }))
        .map(([step, n]) => every(0, step, n)),
      fc.constant([0, 0.01, 0.02, 0.03, 0.04]),
    );
    fc.assert(
      fc.property(
        history,
        fc.double({ min: 60.001, max: 5000, noNaN: true }),
        BACK_TO_BACK,
        (before, quiet, gaps) => {
          const c = client({ leak: 0 });
          for (const t of before) c.at(t);
          // quiet from 60.001 s: a millisecond clear of the rounding in start - last.
          const start = before[before.length - 1]! + quiet;
          const results = burstAt(start, gaps).map(c.at);
          assert.ok(!results.some(isGapped), `${GAP_RESULT_NAMES.join()} -> ${results}`);
          assert.deepEqual(results.slice(1), [GAP_PASS_FAST, GAP_PASS_FAST]);
        },
      ),
      { numRuns: 300 },
    );
  });

  test("a RIPE Atlas probe (3 back to back every 240 s) is answered whole, measurement after measurement", () => {
    const times: number[] = [];
    for (let m = 0; m < 50; m++) times.push(...burstAt(m * 240, [0.003, 0.003]));
    const results = run(times, { leak: 0 });
    assert.equal(gappedCount(results), 0);
    assert.equal(results.filter((r) => r === GAP_PASS_FAST).length, 100);
  });

  test("a second burst sooner than fast-quiet gets its first request answered only; a minute later, whole", () => {
    const c = client({ leak: 0 });
    assert.ok(!burstAt(0, [0.01, 0.01]).map(c.at).some(isGapped));
    assert.equal(c.fastLeft(), 0);
    assert.deepEqual(burstAt(30, [0.01, 0.01]).map(c.at), [GAP_PASS_BURST, GAP_MINIMUM, GAP_MINIMUM]);
    assert.deepEqual(burstAt(90.03, [0.01, 0.01]).map(c.at), [GAP_PASS, GAP_PASS_FAST, GAP_PASS_FAST]);
  });

  test("each burst's first request counts once a fast request follows it: two pairs 2 s apart get 3 answers", () => {
    const results = run([0, 0.1, 2, 2.1], { leak: 0 });
    assert.deepEqual(results, [GAP_PASS, GAP_PASS_FAST, GAP_PASS_BURST, GAP_MINIMUM]);
  });

  test("iburst spaced 1.5-2.5 s (jitter, NTPsec's 1 s timer): all 8 answered, the fast allowance untouched (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 1.5, max: 2.5, noNaN: true }), { minLength: 7, maxLength: 7 }),
        (spacing) => {
          const c = client({ leak: 0 });
          const results = burstAt(1e6, spacing).map(c.at);
          assert.ok(
            results.every((r) => r === GAP_PASS || r === GAP_PASS_BURST),
            `${results}`,
          );
          assert.equal(c.fastLeft(), 3);
        },
      ),
      { numRuns: 300 },
    );
  });

  test("an elephant at 1 s, pausing up to 59 s now and then, never earns a fast request back (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 100 }), fc.double({ min: 0, max: 58.9, noNaN: true })), {
          minLength: 1,
          maxLength: 20,
        }),
        (phases) => {
          const c = client({ leak: 0 });
          const results: number[] = [];
          let start = 0;
          for (const [n, pause] of phases) {
            // n + 3 requests a second, then a silence of 1 + pause seconds: under a minute.
            for (let i = 0; i < n + 3; i++) results.push(c.at(start + i));
            assert.equal(c.fastLeft(), 0);
            start += n + 2 + 1 + pause;
          }
          assert.equal(results.slice(3).filter((r) => r === GAP_PASS_FAST).length, 0);
          // Past its first 3, only the first request after each pause (no faster than 1.5 s) may pass.
          assert.ok(results.filter((r) => !isGapped(r)).length <= 3 + phases.length - 1);
        },
      ),
      { numRuns: 200 },
    );
  });

  test("a client gapped by Rule 2 loses its fast allowance until a quiet period", () => {
    const c = client({ leak: 0 });
    const slow = every(0, 3, 20).map(c.at);
    assert.equal(slow.at(-1), GAP_AVERAGE);
    assert.deepEqual([60, 60.01].map(c.at), [GAP_AVERAGE, GAP_MINIMUM]);
    assert.equal(c.fastLeft(), 0);
    assert.deepEqual([120.01, 120.02].map(c.at), [GAP_PASS, GAP_PASS_FAST]);
  });

  test("tolerance: a 1.6 s poller passes Rule 1 (Rule 2 catches it after the start-up allowance), unless it is 0", () => {
    const loose = run(every(0, 1.6, 20), { leak: 0 });
    assert.equal(gappedCount(loose), 20 - 8);
    assert.ok(loose.slice(8).every((r) => r === GAP_AVERAGE));
    const strict = run(every(0, 1.6, 20), { leak: 0, tolerance: 0, fast: 0 });
    assert.ok(strict.slice(1).every((r) => r === GAP_MINIMUM));
    // tolerance = minimum turns Rule 1 off: a 1 s poller is caught by Rule 2 instead.
    const off = run(every(0, 1, 20), { leak: 0, tolerance: 2 });
    assert.ok(off.slice(8).every((r) => r === GAP_AVERAGE));
  });

  test("fast 0 (or 1: a burst of one is no burst) turns the fast allowance off; a larger one answers longer bursts", () => {
    for (const fast of [0, 1]) {
      assert.deepEqual(run([0, 0.01, 0.02], { leak: 0, fast }), [GAP_PASS, GAP_MINIMUM, GAP_MINIMUM]);
    }
    // A reload to fast 0 takes a client's allowance away at once.
    const list = MruList.create({ maxEntries: 4, hashSeed: 1 }, createRng(2));
    const rng = createRng(3);
    assert.equal(decide(list, createCallGap({ leak: 0 }), 0, rng), GAP_PASS);
    assert.equal(decide(list, createCallGap({ leak: 0, fast: 0 }), 0.01, rng), GAP_MINIMUM);
    const eight = run(every(0, 0.5, 9), { leak: 0, fast: 8 });
    assert.equal(gappedCount(eight), 1);
    assert.equal(eight[8], GAP_MINIMUM);
  });
});
