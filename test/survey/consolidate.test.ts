// consolidate() on snapshots small enough to work out by hand (fixtures.ts handSurvey), figure by figure,
// and its edge cases: the window rules, clipping at the window's ends, merging across servers, errors.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  consolidate,
  coverageOf,
  mergeClients,
  packetsInSpan,
  type SurveyClient,
} from "../../src/survey/consolidate.ts";
import { SurveyError } from "../../src/survey/errors.ts";
import { client, handSurvey, S, snapshot, T } from "./fixtures.ts";

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return e instanceof SurveyError ? e.code : `not a SurveyError: ${e}`;
  }
  return undefined;
}

const near = (actual: number, expected: number, what: string) =>
  assert.ok(Math.abs(actual - expected) < 1e-9, `${what}: ${actual}, expected ${expected}`);

describe("packetsInSpan: a record's packets in a window, evenly spaced", () => {
  it("counts a record wholly inside the window in full, and none wholly outside", () => {
    assert.equal(packetsInSpan(10, 100, 109, 50, 200), 10);
    assert.equal(packetsInSpan(10, 100, 109, 110, 200), 0);
    assert.equal(packetsInSpan(10, 100, 109, 0, 99.9), 0);
  });
  it("includes both ends of the window", () => {
    // Packets at 0, 2, 4, ..., 20; window [4, 10]: 4, 6, 8, 10.
    assert.equal(packetsInSpan(11, 0, 20, 4, 10), 4);
    assert.equal(packetsInSpan(11, 0, 20, 4.1, 9.9), 2);
    assert.equal(packetsInSpan(1, 7, 7, 7, 9), 1);
    assert.equal(packetsInSpan(1, 7, 7, 5, 7), 1);
  });
  it("counts several packets at one instant together", () => {
    assert.equal(packetsInSpan(5, 7, 7, 6, 8), 5);
    assert.equal(packetsInSpan(5, 7, 7, 8, 9), 0);
  });
  it("is exact on large Unix times with fractional spacing", () => {
    // E1 on server a of the hand survey: 467 packets from T - 600 every 1.5 s; in [T, T + 100]: 67.
    assert.equal(packetsInSpan(467, T - 600, T + 99, T, T + 100), 67);
    assert.equal(packetsInSpan(467, T - 599.5, T + 99.5, T, T + 100), 67);
    assert.equal(packetsInSpan(466, T - 599, T + 98.5, T, T + 100), 66);
  });
});

describe("coverageOf: from when a list holds every client", () => {
  it("since the server started while the list never lost a record", () => {
    const s = snapshot("x", T, S, [client("192.0.2.1", T - 10, T - 5, 3)]);
    assert.deepEqual(coverageOf(s), { start: S, coverage: "since-start" });
  });
  it("from the oldest lastSeen once records were evicted or recycled", () => {
    const s = snapshot(
      "x",
      T,
      S,
      [client("192.0.2.1", T - 10, T - 5, 3), client("192.0.2.2", T - 9, T - 1, 2)],
      {
        evicted: 1,
      },
    );
    assert.deepEqual(coverageOf(s), { start: T - 5, coverage: "oldest-record" });
    const r = { ...s, mru: { ...s.mru, evicted: 0, recycled: 4 } };
    assert.equal(coverageOf(r).start, T - 5);
  });
  it("from the oldest lastSeen when the snapshot holds fewer records than the list", () => {
    const s = snapshot("x", T, S, [client("192.0.2.1", T - 10, T - 5, 3)]);
    s.mru.size = 2;
    assert.equal(coverageOf(s).coverage, "oldest-record");
  });
});

describe("consolidate: the hand-computed three-server survey", () => {
  const r = consolidate(handSurvey(), { top: 12 });

  it("takes the window common to all lists: the latest coverage start to the earliest snapshot", () => {
    assert.deepEqual(
      r.servers.map((s) => [s.server, s.coverageStart - T, s.offset]),
      [
        ["a", 0, 0],
        ["b", -5, 1],
        ["c", 0, 0],
      ],
    );
    assert.equal(r.window.start, T);
    assert.equal(r.window.end, T + 100);
    assert.equal(r.window.duration, 100);
    assert.equal(r.window.kind, "common");
    assert.equal(r.skew, 1);
  });

  it("counts records, clients (one per address across servers) and packets in the window", () => {
    assert.equal(r.records, 18);
    // E1, E2, E3, E4, E5, E6, F, M1, M2, M3, M4, Mc; Mb (b's oldest) ended before the window.
    assert.equal(r.clients, 12);
    assert.equal(r.clientsOutsideWindow, 1);
    // E1 (a, b, c), E2 (a, c: IPv4-mapped on c), E3 (a, b: written two ways), M3 (b, c).
    assert.equal(r.sharedClients, 4);
    // E1 200 + E2 11 + E3 10 + E4 50 + E5 100 + E6 34 + F 10 + M1 1 + M2 1 + M3 2 + M4 2 + Mc 1.
    assert.equal(r.packets, 422);
    near(r.rate, 4.22, "rate");
    assert.deepEqual(
      r.servers.map((s) => [s.packetsInWindow, s.clientsInWindow]),
      [
        [67 + 10 + 5 + 50 + 1, 5],
        [67 + 5 + 34 + 1 + 2, 5],
        [66 + 1 + 100 + 10 + 1 + 1 + 1, 7],
      ],
    );
  });

  it("estimates the arrivals in the window from the counters", () => {
    // a: 2,001,000 in 200,100 s = 10 PPS; b: 2,001,010 in 200,101 s = 10 PPS; c: 20 PPS. Over 100 s: 4,000.
    near(r.arrivals.estimated!, 4000, "arrivals");
    near(r.arrivals.share!, 422 / 4000, "share of arrivals");
    near(r.servers[0]!.arrivalShare!, 133 / 1000, "a's share");
  });

  it("finds the bursters (mean spacing under 5 s) and their share of the load", () => {
    assert.equal(r.bursters.clients, 7);
    near(r.bursters.clientShare, 7 / 12, "client share");
    assert.equal(r.bursters.packets, 415);
    near(r.bursters.rate, 4.15, "bursters' rate");
    near(r.bursters.loadShare, 415 / 422, "load share");
    // E1 3 records, E2 2, E3 2, E4, E5, E6, F 1 each.
    assert.equal(r.bursters.records, 11);
    assert.equal(r.nonBursters.clients, 5);
    assert.equal(r.nonBursters.packets, 7);
    const byAddress = new Map(r.elephants.map((c) => [c.address, c]));
    // M3: two packets 5 s apart (on two servers) is not under 5 s; M4: 5.4 s.
    assert.equal(byAddress.get("198.51.100.3")!.burster, false);
    assert.equal(byAddress.get("198.51.100.3")!.spacing, 5);
    assert.equal(byAddress.get("198.51.100.4")!.burster, false);
  });

  it("merges a client's records over the servers: counts add up, first and last span them all", () => {
    const e1 = r.elephants.find((c) => c.address === "192.0.2.1")!;
    assert.deepEqual(e1.servers, ["a", "b", "c"]);
    assert.equal(e1.records, 3);
    assert.equal(e1.count, 1400);
    assert.equal(e1.firstSeen, T - 600);
    assert.equal(e1.lastSeen, T + 99.5);
    near(e1.spacing!, 0.5, "E1 spacing");
    near(e1.burstRate, 2, "E1 burst rate");
    assert.equal(e1.packets, 200);
    near(e1.rate, 2, "E1 rate in the window");
    const e2 = r.elephants.find((c) => c.address === "192.0.2.2")!;
    assert.deepEqual([e2.count, e2.duration, e2.packets], [11, 9.5, 11]);
    near(e2.burstRate, 10 / 9.5, "E2 burst rate");
    const e3 = r.elephants.find((c) => c.address === "2001:db8::3")!;
    assert.deepEqual([e3.count, e3.duration, e3.spacing, e3.burstRate], [10, 36, 4, 0.25]);
  });

  it("bins the bursters by burst rate (under 1, 1-2, 2-5, 5 or more PPS)", () => {
    assert.deepEqual(
      r.byRate.map((b) => [b.label, b.from, b.to, b.clients, b.packets]),
      [
        ["under 1 PPS", 0, 1, 3, 94], // E3 0.25, E4 0.5, E6 0.33
        ["1-2 PPS", 1, 2, 2, 111], // E5 1.0 (the bin includes its start), E2 1.05
        ["2-5 PPS", 2, 5, 1, 200], // E1 2.0
        ["5 PPS or more", 5, null, 1, 10], // F 6
      ],
    );
    near(r.byRate[1]!.rate, 1.11, "1-2 PPS rate");
    near(r.byRate[2]!.loadShare, 200 / 422, "2-5 PPS share");
  });

  it("bins the bursters by duration (under a minute, an hour, a day, longer)", () => {
    assert.deepEqual(
      r.byDuration.map((b) => [b.label, b.clients, b.packets]),
      [
        ["under a minute", 3, 31], // E2 9.5 s, E3 36 s, F 1.5 s
        ["under an hour", 1, 200], // E1 699.5 s
        ["under a day", 1, 34], // E6 7,299 s
        ["a day or more", 2, 150], // E4 190,098 s, E5 200,099 s
      ],
    );
  });

  it("marks a burst that was already on when its server started", () => {
    const flagged = r.elephants.filter((c) => c.sinceStart).map((c) => c.address);
    assert.deepEqual(flagged, ["192.0.2.5"]);
  });

  it("lists the elephants heaviest first (packets, then burst rate, then address)", () => {
    assert.deepEqual(
      r.elephants.map((c) => [c.address, c.packets]),
      [
        ["192.0.2.1", 200],
        ["192.0.2.5", 100],
        ["192.0.2.4", 50],
        ["192.0.2.6", 34],
        ["192.0.2.2", 11],
        ["203.0.113.9", 10], // 6 PPS before E3's 0.25
        ["2001:db8::3", 10],
        ["198.51.100.3", 2], // spacing 5 before M4's 5.4
        ["198.51.100.4", 2],
        ["198.51.100.1", 1], // 1/64 PPS before the single packets
        ["198.51.100.2", 1],
        ["198.51.100.8", 1],
      ],
    );
    assert.equal(consolidate(handSurvey(), { top: 3 }).elephants.length, 3);
  });

  it("draws the load-share curve and reads it", () => {
    // Loads 200, 100, 50, 34, 11, 10, 10, 2, 2, 1, 1, 1: cumulative 200, 300, 350, 384, ...
    assert.equal(r.curve.points.length, 13);
    assert.deepEqual(r.curve.points[0], { clients: 0, load: 0 });
    near(r.curve.points[2]!.load, 300 / 422, "two heaviest");
    assert.deepEqual(r.curve.points[12], { clients: 1, load: 1 });
    assert.deepEqual(
      r.curve.clientsFor.map((p) => [p.load, p.clients]),
      [
        [0.5, 2 / 12],
        [0.8, 3 / 12],
        [0.9, 4 / 12],
      ],
    );
    // 10% of 12 clients = 1.2: the heaviest (200) and a fifth of the second (100).
    near(r.curve.at.find((p) => p.clients === 0.1)!.load, 220 / 422, "top 10%");
    assert.equal(r.curve.at.find((p) => p.clients === 1)!.load, 1);
  });

  it("warns that a list refusing newcomers is a sample", () => {
    assert.equal(r.warnings.length, 1);
    assert.match(r.warnings[0]!, /a's list refused 3 newcomers/);
  });
});

describe("consolidate: windows and options", () => {
  it("a window of one's own (here: the first 20 s) counts only its packets", () => {
    const r = consolidate(handSurvey(), { window: { start: T, end: T + 20 } });
    assert.equal(r.window.kind, "given");
    // E1 packets at T, T + 0.5, ..., T + 20: 41; E2 11 (T + 10 .. T + 19.5); E3 at T + 20: 1; E4 T .. T + 20: 11;
    // E5 at T + 0.5 .. T + 19.5: 20; E6 at T, T + 3, ..., T + 18: 7; M1 at T: 1; Mc at T: 1.
    assert.equal(r.packets, 41 + 11 + 1 + 11 + 20 + 7 + 1 + 1);
    assert.equal(r.clients, 8);
  });

  it("lists that never lost a record give the span since the latest start", () => {
    const a = snapshot("a", 1000, 100, [client("192.0.2.1", 150, 950, 801)], { received: 1800 });
    const b = snapshot("b", 1000.25, 200, [client("192.0.2.1", 200.5, 949.5, 750)], { received: 800 });
    const r = consolidate([a, b]);
    assert.deepEqual(
      [r.window.start, r.window.end, r.window.startServer, r.window.endServer],
      [200, 1000, "b", "a"],
    );
    // a's record: one packet a second from 150 to 950; from 200 on: 751. b's: every second from 200.5: 750.
    assert.equal(r.packets, 751 + 750);
    // Both lists are complete since start, so the counters are spread as the lists' packets: 751 of a's 801
    // fall in the window, all 750 of b's.
    near(r.arrivals.estimated!, (1800 * 751) / 801 + 800, "arrivals");
    // Otherwise (a list that lost records) the mean rate since start: 1,800 in 900 s = 2 PPS over 800 s.
    const lossy = consolidate([{ ...a, mru: { ...a.mru, evicted: 1 } }, b], {
      window: { start: 200, end: 1000 },
    });
    near(lossy.servers[0]!.arrivalsInWindow!, 1600, "a's arrivals at its mean rate");
  });

  it("fails clearly when the lists share no span of time", () => {
    const a = snapshot("a", 1000, 0, [client("192.0.2.1", 990, 999, 10)], { evicted: 1 });
    const b = snapshot("b", 900, 0, [client("192.0.2.2", 890, 899, 10)], { evicted: 1 });
    assert.equal(
      codeOf(() => consolidate([a, b])),
      "ERR_SURVEY_NO_WINDOW",
    );
    try {
      consolidate([a, b]);
    } catch (e) {
      assert.match(
        (e as Error).message,
        /a's list covers only from 999 s, but b's snapshot was taken at 900 s/,
      );
    }
  });

  it("rejects bad options and no snapshots with stable codes", () => {
    const s = handSurvey();
    assert.equal(
      codeOf(() => consolidate([])),
      "ERR_SURVEY_NO_SNAPSHOTS",
    );
    assert.equal(
      codeOf(() => consolidate(s, { burstSpacing: 0 })),
      "ERR_SURVEY_OPTION",
    );
    assert.equal(
      codeOf(() => consolidate(s, { top: -1 })),
      "ERR_SURVEY_OPTION",
    );
    assert.equal(
      codeOf(() => consolidate(s, { rateEdges: [2, 1] })),
      "ERR_SURVEY_OPTION",
    );
    assert.equal(
      codeOf(() => consolidate(s, { durationEdges: [0, 60] })),
      "ERR_SURVEY_OPTION",
    );
    assert.equal(
      codeOf(() => consolidate(s, { maxCurvePoints: 1 })),
      "ERR_SURVEY_OPTION",
    );
    assert.equal(
      codeOf(() => consolidate(s, { window: { start: 5, end: 5 } })),
      "ERR_SURVEY_NO_WINDOW",
    );
    const bad = snapshot("x", T, S, [client("not-an-address", T - 1, T, 2)]);
    assert.equal(
      codeOf(() => consolidate([bad])),
      "ERR_SURVEY_FORMAT",
    );
  });

  it("a wider burst spacing makes more bursters, and custom bins apply", () => {
    const r = consolidate(handSurvey(), { burstSpacing: 6, rateEdges: [0.5], durationEdges: [30] });
    assert.equal(r.bursters.clients, 9); // M3 (5 s) and M4 (5.4 s) join
    assert.deepEqual(
      r.byRate.map((b) => [b.label, b.clients]),
      [
        ["under 0.5 PPS", 4], // E3 0.25, E6 0.33, M3 0.2, M4 0.185
        ["0.5 PPS or more", 5],
      ],
    );
    assert.deepEqual(
      r.byDuration.map((b) => [b.label, b.clients]),
      [
        ["under 30 s", 4], // E2, F, M3, M4
        ["30 s or more", 5],
      ],
    );
  });

  it("thins the curve to maxCurvePoints, keeping both ends", () => {
    const r = consolidate(handSurvey(), { maxCurvePoints: 4 });
    assert.equal(r.curve.points.length, 4);
    assert.deepEqual(r.curve.points[0], { clients: 0, load: 0 });
    assert.deepEqual(r.curve.points[3], { clients: 1, load: 1 });
    // The figures still use every client.
    assert.deepEqual(
      r.curve.clientsFor.map((p) => p.clients),
      [2 / 12, 3 / 12, 4 / 12],
    );
  });

  it("gives a burst of packets with one timestamp a finite rate", () => {
    const r = consolidate([snapshot("a", 10, 0, [client("192.0.2.1", 5, 5, 4)])]);
    const c = r.elephants[0] as SurveyClient;
    assert.equal(c.spacing, 0);
    assert.equal(c.burster, true);
    assert.ok(Number.isFinite(c.burstRate) && c.burstRate > 5);
  });

  it("mergeClients is usable on its own (the simulator's view of every client)", () => {
    const all = mergeClients(handSurvey(), T, T + 100);
    assert.equal(all.length, 13);
    assert.equal(all.filter((c) => c.burster).length, 7);
  });
});
