// Many clients at once, in virtual time: the paper's hourly-script peak (§4) and the Wisconsin routers that
// all came back at the same moment (§3). Clients started at the same instant must not arrive together:
// the random start spreads the first wave, and the jitter of every interval keeps clients that happen to
// share a start from marching in step for ever.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { seededRandom } from "../../src/client/random.ts";
import { answer, literal, type Network, Sim } from "./sim.ts";

const SERVER = "192.0.2.1"; // virtual only (RFC 5737)

/** Requests per virtual second, from every client's send times. */
function perSecond(times: number[], seconds: number): number[] {
  const bins = new Array<number>(seconds).fill(0);
  for (const t of times) if (t < seconds) bins[Math.floor(t)]!++;
  return bins;
}

const answering: Network = (send, _at, wall) => [answer(send, wall)];

describe("10,000 clients started at the same instant", () => {
  const N = 10_000;
  const sim = new Sim();
  const clients = Array.from({ length: N }, (_, i) =>
    sim.client([{ host: SERVER, port: 123 }], {}, seededRandom(1 + i), literal, answering),
  );
  for (const c of clients) c.start();
  const HOURS = 3;
  sim.run(HOURS * 3600);
  const times = clients.flatMap((c) => c.sends.map((s) => s.atS));

  it("no second holds more than three times the mean rate (first 10 minutes, every client at 64 s)", () => {
    const WINDOW = 600;
    const bins = perSecond(times, WINDOW);
    const mean = bins.reduce((a, b) => a + b, 0) / WINDOW;
    const peak = Math.max(...bins);
    assert.ok(mean > 100, `mean ${mean}/s`); // every client polls: 10,000 / 64 s = 156/s at first
    assert.ok(peak <= 3 * mean, `peak ${peak}/s against a mean of ${mean.toFixed(1)}/s`);
    // Figures for the report: without the random start the first second would hold all 10,000.
    process.stdout.write(`# 10k clients, first 10 min: mean ${mean.toFixed(1)}/s, peak ${peak}/s\n`);
  });

  it("nor, over three hours while intervals rise to 1024 s, more than three times the mean of its 15 minutes", () => {
    const S = HOURS * 3600;
    const bins = perSecond(times, S);
    const half = 450;
    const prefix = [0];
    for (const b of bins) prefix.push(prefix.at(-1)! + b);
    let worst = 0;
    for (let t = 0; t < S; t++) {
      const lo = Math.max(0, t - half);
      const hi = Math.min(S, t + half);
      const mean = (prefix[hi]! - prefix[lo]!) / (hi - lo);
      worst = Math.max(worst, bins[t]! / mean);
    }
    assert.ok(worst <= 3, `worst second: ${worst.toFixed(2)} x its local mean`);
    process.stdout.write(`# 10k clients, 3 h: worst second ${worst.toFixed(2)} x the 15-minute mean\n`);
  });

  it("and they do slow down: the last hour carries about a sixteenth of the first minutes' rate", () => {
    const early = times.filter((t) => t >= 64 && t < 256).length / 192;
    const late = times.filter((t) => t >= (HOURS - 1) * 3600).length / 3600;
    assert.ok(late < early / 10, `early ${early.toFixed(1)}/s, late ${late.toFixed(1)}/s`);
    assert.ok(
      late > N / 1024 / 1.3,
      `late ${late.toFixed(1)}/s: every client still polls about every 1024 s`,
    );
  });
});

describe("clients that share their start second", () => {
  it("drift apart with the jitter of every interval instead of arriving together for ever", () => {
    // 1,000 clients whose first random draw (the start delay) is the same: all send their first request
    // in the same instant. The jitter of each following interval is drawn independently. The interval is
    // held at 64 s (minpoll = maxpoll), so that only the jitter can separate them (a rising interval
    // would draw a new phase at each step: poll.ts).
    const sim = new Sim();
    const N = 1000;
    const clients = Array.from({ length: N }, (_, i) => {
      const r = seededRandom(7 + i);
      let first = true;
      const shared = () => {
        if (first) {
          first = false;
          return 0.5;
        }
        return r();
      };
      return sim.client(
        [{ host: SERVER, port: 123 }],
        { minpoll: 64, maxpoll: 64 },
        shared,
        literal,
        answering,
      );
    });
    for (const c of clients) c.start();
    sim.run(2 * 3600);
    const firstSecond = clients.filter((c) => Math.floor(c.sends[0]!.atS) === 32).length;
    assert.equal(firstSecond, N, "the premise: all started in the same second");
    // In the second hour no second holds a tenth of them (without jitter: all 1,000, at every poll).
    const late = clients.flatMap((c) => c.sends.filter((s) => s.atS >= 3600).map((s) => s.atS - 3600));
    const peak = Math.max(...perSecond(late, 3600));
    assert.ok(peak < 100, `peak ${peak} requests in one second`);
    process.stdout.write(
      `# 1,000 clients with a shared start, second hour: peak ${peak} requests in a second\n`,
    );
  });
});
