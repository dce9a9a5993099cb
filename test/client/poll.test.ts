// The poll schedule's rules (src/client/poll.ts), each with a test that fails without it.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { ClientError } from "../../src/client/errors.ts";
import {
  BURST_SPACING_S,
  POLL_CEILING_S,
  POLL_DEFAULTS,
  POLL_FLOOR_S,
  PollSchedule,
  resolvePollOptions,
} from "../../src/client/poll.ts";
import { seededRandom } from "../../src/client/random.ts";

function schedule(o: Parameters<typeof resolvePollOptions>[0] = {}): PollSchedule {
  return new PollSchedule(resolvePollOptions(o).options);
}

describe("options", () => {
  it("defaults: minpoll 64 s, maxpoll 1024 s, no burst, jitter ±10%, start spread 64 s", () => {
    const { options, notices } = resolvePollOptions();
    assert.equal(options.minpoll, 64);
    assert.equal(options.maxpoll, 1024);
    assert.equal(options.burst, 0);
    assert.equal(options.jitter, 0.1);
    assert.equal(options.startSpread, 64);
    assert.deepEqual(notices, []);
    assert.deepEqual(options, POLL_DEFAULTS);
  });

  it("never below 15 s whatever the configuration: minpoll and maxpoll are raised, and say so", () => {
    const { options, notices } = resolvePollOptions({ minpoll: 1, maxpoll: 2 });
    assert.equal(options.minpoll, POLL_FLOOR_S);
    assert.equal(options.maxpoll, POLL_FLOOR_S);
    assert.match(notices.join("\n"), /minpoll 1 s raised to 15 s/);
  });

  it("every interval carries jitter, and the start is always random: jitter 0 and spread 0 are raised", () => {
    const { options, notices } = resolvePollOptions({ jitter: 0, startSpread: 0 });
    assert.ok(options.jitter >= 0.05);
    assert.ok(options.startSpread >= 1);
    assert.equal(notices.length, 2);
  });

  it("a burst is at most 7 extra requests; a non-number is an error with a stable code", () => {
    assert.equal(resolvePollOptions({ burst: 100 }).options.burst, 7);
    assert.throws(
      () => resolvePollOptions({ minpoll: Number.NaN }),
      (e: unknown) => e instanceof ClientError && e.code === "ERR_CLIENT_INVALID_OPTION",
    );
    assert.throws(() => resolvePollOptions({ burst: 1.5 }), ClientError);
  });
});

describe("intervals", () => {
  it("no delay is ever below 15 s, whatever the options and the random draws (bursts aside)", () => {
    fc.assert(
      fc.property(
        fc.record({
          minpoll: fc.double({ min: 0, max: 100, noNaN: true }),
          maxpoll: fc.double({ min: 0, max: 200, noNaN: true }),
          jitter: fc.double({ min: 0, max: 1, noNaN: true }),
        }),
        fc.integer(),
        fc.array(fc.constantFrom("valid", "failed", "rate", "jump"), { minLength: 1, maxLength: 40 }),
        (o, seed, steps) => {
          const s = schedule(o);
          const r = seededRandom(seed);
          let offset = 0;
          for (const step of steps) {
            let d: number;
            if (step === "valid") d = s.valid(offset, r);
            else if (step === "jump") {
              offset += 1;
              d = s.valid(offset, r);
            } else if (step === "failed") d = s.failed(r);
            else d = s.rate(0, r);
            assert.ok(d >= POLL_FLOOR_S, `${step} gave ${d} s`);
            assert.ok(d <= POLL_CEILING_S * 1.5);
          }
        },
      ),
    );
  });

  it("starts at minpoll and rises to maxpoll, doubling after 4 stable samples, never beyond", () => {
    const s = schedule();
    const r = seededRandom(1);
    const bases: number[] = [];
    for (let i = 0; i < 30; i++) {
      const before = s.intervalS;
      const d = s.valid(0.001 * (i % 2), r);
      bases.push(s.intervalS);
      if (s.intervalS > before) {
        // The first delay at a longer interval J takes a fresh phase: uniform in [J/2, 3J/2).
        assert.ok(d >= s.intervalS / 2 && d < 1.5 * s.intervalS, `new phase: ${d}`);
      } else {
        assert.ok(Math.abs(d - s.intervalS) <= 0.1 * s.intervalS + 1e-9, `jitter within ±10%: ${d}`);
      }
    }
    assert.deepEqual(bases.slice(0, 4), [64, 64, 64, 128]);
    assert.deepEqual([...new Set(bases)], [64, 128, 256, 512, 1024]);
    assert.equal(bases.at(-1), 1024);
  });

  it("does not rise while the server is unstable (offsets jumping more than 128 ms)", () => {
    const s = schedule();
    const r = seededRandom(2);
    for (let i = 0; i < 30; i++) s.valid(i % 2 === 0 ? 0 : 0.5, r);
    assert.equal(s.intervalS, 64);
  });

  it("an unanswered server sees the interval double to maxpoll and stay there; a reply ends the backoff", () => {
    const s = schedule();
    const r = seededRandom(3);
    const bases: number[] = [];
    for (let i = 0; i < 8; i++) {
      const before = s.intervalS;
      const d = s.failed(r);
      bases.push(s.intervalS);
      assert.ok(
        d >= before * 0.9,
        `never sooner than the interval before, less its jitter: ${d} < ${before}`,
      );
    }
    assert.deepEqual(bases, [128, 256, 512, 1024, 1024, 1024, 1024, 1024]);
    s.valid(0, r);
    assert.equal(s.intervalS, 64);
  });

  it("every interval is jittered: 1000 draws at 64 s spread over ±10%, not one value", () => {
    const s = schedule({ stableSamples: 1_000_000 });
    const r = seededRandom(4);
    const d = Array.from({ length: 1000 }, () => s.valid(0, r));
    const min = Math.min(...d);
    const max = Math.max(...d);
    assert.ok(min >= 57.6 && max <= 70.4, `${min}..${max}`);
    assert.ok(max - min > 11, `spread ${max - min} s`);
    assert.ok(new Set(d.map((x) => x.toFixed(3))).size > 900);
  });

  it("the first request goes out after a uniform random delay in [0, startSpread)", () => {
    const r = seededRandom(5);
    const d = Array.from({ length: 2000 }, () => schedule().start(r));
    assert.ok(Math.min(...d) >= 0 && Math.max(...d) < 64);
    // Roughly uniform: each quarter of the spread holds about a quarter of the draws.
    for (let q = 0; q < 4; q++) {
      const n = d.filter((x) => x >= q * 16 && x < (q + 1) * 16).length;
      assert.ok(n > 400 && n < 600, `quarter ${q}: ${n}`);
    }
  });
});

describe("burst", () => {
  it("none unless configured", () => {
    const s = schedule();
    assert.ok(s.valid(0, seededRandom(6)) >= 57.6);
  });

  it("when configured: the extra requests follow valid replies 2-3 s apart, then the normal interval", () => {
    const s = schedule({ burst: 3 });
    const r = seededRandom(7);
    const d = [s.valid(0, r), s.valid(0, r), s.valid(0, r), s.valid(0, r)];
    for (const x of d.slice(0, 3)) assert.ok(x >= BURST_SPACING_S && x < BURST_SPACING_S + 1, `${x}`);
    assert.ok(d[3]! >= 57.6);
    // Burst samples do not count as stable polls: the interval has not risen.
    assert.equal(s.intervalS, 64);
  });

  it("only while the server answers: a first request unanswered means no burst at all", () => {
    const s = schedule({ burst: 3 });
    const r = seededRandom(8);
    assert.ok(s.failed(r) >= 64);
    assert.ok(s.valid(0, r) >= 57.6, "the burst does not start after a failure");
  });

  it("a failure in the middle of the burst ends it for good", () => {
    const s = schedule({ burst: 5 });
    const r = seededRandom(9);
    assert.ok(s.valid(0, r) < 3);
    assert.ok(s.failed(r) >= 64);
    assert.ok(s.valid(0, r) >= 57.6);
    assert.equal(s.burstLeft, 0);
  });
});

describe("RATE kiss-o'-death", () => {
  it("the interval becomes at least twice the current one, and the burst stops", () => {
    const s = schedule({ burst: 5 });
    const r = seededRandom(10);
    s.valid(0, r); // burst under way
    const d = s.rate(0, r);
    assert.ok(d >= 128, `${d}`);
    assert.equal(s.burstLeft, 0);
    assert.ok(s.valid(0, r) >= 128 * 0.9, "the raised interval stays: it is this server's floor now");
  });

  it("at least the server's poll when that is larger (2^12 = 4096 s, above maxpoll)", () => {
    const s = schedule();
    const d = s.rate(12, seededRandom(11));
    assert.ok(d >= 4096 && d < 8192, `${d}`);
    assert.equal(s.floorS, 4096);
  });

  it("a poll field outside RFC 5905's 16 s-36 h range is ignored, and the ceiling is 36 h", () => {
    const s = schedule();
    const r = seededRandom(12);
    assert.ok(s.rate(127, r) < 200);
    for (let i = 0; i < 30; i++) s.rate(0, r);
    assert.equal(s.intervalS, POLL_CEILING_S);
  });

  it("successive RATE kisses keep doubling: 128, 256, 512, 1024, 2048", () => {
    const s = schedule();
    const r = seededRandom(13);
    const bases = Array.from({ length: 5 }, () => {
      s.rate(0, r);
      return s.intervalS;
    });
    assert.deepEqual(bases, [128, 256, 512, 1024, 2048]);
  });
});
