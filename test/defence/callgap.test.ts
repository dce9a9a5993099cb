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
  const cfg = createCallGap(options);
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

  test("a 1 s poller (a Wisconsin router) is gapped after its burst allowance, by Rule 1", () => {
    const results = run(every(0, 1, 1000));
    assert.equal(gappedCount(results), 1000 - 8, "only the first 8 answered");
    assert.ok(results.slice(8).every((r) => r === GAP_MINIMUM));
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
    assert.ok(results.slice(8, 100).every(isGapped));
    assert.ok(
      results.slice(100).every((r) => !isGapped(r)),
      GAP_RESULT_NAMES.join(),
    );
  });

  test("gapped requests are counted in the record and flag it limited", () => {
    const list = MruList.create({ maxEntries: 4, hashSeed: 1 }, createRng(2));
    const cfg = createCallGap();
    const rng = createRng(3);
    for (const t of every(0, 1, 20)) decide(list, cfg, t, rng);
    const e = list.read(list.lookup(CLIENT))!;
    assert.equal(e.gapped, 12);
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
      const candidates = n - 8;
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
  test("defaults are the paper's", () => {
    assert.deepEqual(createCallGap(), {
      tokenBucket: false,
      minimum: 2,
      average: 5,
      burst: 8,
      leak: 0,
      interval: 8,
    });
  });

  test("bad options are refused with a code", () => {
    for (const o of [
      { mode: "nope" as "rules" },
      { minimum: -1 },
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
