// Properties of consolidate() on random snapshots (fast-check): the load-share curve is monotone, the
// shares add up to 100%, the result does not depend on the order of servers or records, and a client whose
// packets a balancer split over several servers counts once, with the figures of the unsplit client.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { consolidate, type SurveyResult } from "../../src/survey/consolidate.ts";
import { SurveyError } from "../../src/survey/errors.ts";
import type { Snapshot, SnapshotClient } from "../../src/survey/snapshot.ts";
import { client, snapshot } from "./fixtures.ts";

const T = 1_700_000_000;
const RUNS = { numRuns: 150 };

// Addresses that collide on purpose: the same client written as IPv4, IPv4-mapped and in upper case.
const POOL = [
  "192.0.2.1",
  "192.0.2.2",
  "::ffff:192.0.2.2",
  "192.0.2.3",
  "198.51.100.7",
  "2001:db8::1",
  "2001:DB8:0:0::1",
  "2001:db8::2",
  "203.0.113.5",
  "203.0.113.6",
];

const recordArb: fc.Arbitrary<SnapshotClient> = fc
  .record({
    address: fc.constantFrom(...POOL),
    last: fc.integer({ min: -2000, max: 0 }),
    duration: fc.integer({ min: 0, max: 4000 }),
    count: fc.integer({ min: 1, max: 3000 }),
  })
  .map(({ address, last, duration, count }) =>
    client(address, T + last / 2 - duration / 2, T + last / 2, duration === 0 ? Math.min(count, 3) : count),
  );

const snapshotsArb: fc.Arbitrary<Snapshot[]> = fc
  .uniqueArray(
    fc.record({
      name: fc.constantFrom("a", "b", "c", "d"),
      skew: fc.integer({ min: 0, max: 8 }),
      lost: fc.constantFrom(0, 0, 0, 2),
      received: fc.integer({ min: 0, max: 10_000_000 }),
      clients: fc.array(recordArb, { maxLength: 14 }),
    }),
    { minLength: 1, maxLength: 4, selector: (s) => s.name },
  )
  .map((list) =>
    list.map((s) =>
      snapshot(s.name, T + s.skew / 4, T - 5000, s.clients, { received: s.received, evicted: s.lost }),
    ),
  );

/** consolidate, or undefined when the random lists happen to share no span of time (a correct refusal). */
function survey(snapshots: Snapshot[]): SurveyResult | undefined {
  try {
    return consolidate(snapshots, { top: 100 });
  } catch (e) {
    if (e instanceof SurveyError && e.code === "ERR_SURVEY_NO_WINDOW") return undefined;
    throw e;
  }
}

const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));

describe("consolidate: properties", () => {
  it("the load-share curve rises from (0, 0) to (1, 1), never falling", () => {
    fc.assert(
      fc.property(snapshotsArb, (snapshots) => {
        const r = survey(snapshots);
        if (r === undefined) return;
        const p = r.curve.points;
        assert.deepEqual(p[0], { clients: 0, load: 0 });
        if (r.clients > 0) assert.deepEqual(p.at(-1), { clients: 1, load: 1 });
        for (let i = 1; i < p.length; i++) {
          assert.ok(p[i]!.clients > p[i - 1]!.clients, "client share increases");
          assert.ok(p[i]!.load >= p[i - 1]!.load, "load share never falls");
          assert.ok(p[i]!.load <= 1 + 1e-12);
        }
        // Heaviest first: the curve is concave, never below the diagonal.
        for (const q of p)
          assert.ok(q.load >= q.clients - 1e-12, `(${q.clients}, ${q.load}) below the diagonal`);
        for (let i = 1; i < r.curve.at.length; i++) assert.ok(r.curve.at[i]!.load >= r.curve.at[i - 1]!.load);
      }),
      RUNS,
    );
  });

  it("the shares add up to 100%: bins plus non-bursters, clients and servers", () => {
    fc.assert(
      fc.property(snapshotsArb, (snapshots) => {
        const r = survey(snapshots);
        if (r === undefined || r.clients === 0) return;
        for (const bins of [r.byRate, r.byDuration]) {
          const packets = bins.reduce((s, b) => s + b.packets, 0);
          const clients = bins.reduce((s, b) => s + b.clients, 0);
          assert.equal(packets, r.bursters.packets);
          assert.equal(clients, r.bursters.clients);
          assert.equal(packets + r.nonBursters.packets, r.packets);
          assert.equal(clients + r.nonBursters.clients, r.clients);
          const share = bins.reduce((s, b) => s + b.loadShare, 0) + r.nonBursters.loadShare;
          assert.ok(close(share, 1), `load shares sum to ${share}`);
          const clientShare = bins.reduce((s, b) => s + b.clientShare, 0) + r.nonBursters.clientShare;
          assert.ok(close(clientShare, 1), `client shares sum to ${clientShare}`);
        }
        assert.equal(
          r.servers.reduce((s, x) => s + x.packetsInWindow, 0),
          r.packets,
          "every packet in the window is some server's",
        );
        const all = consolidate(snapshots, { top: r.clients });
        assert.ok(
          close(
            all.elephants.reduce((s, c) => s + c.share, 0),
            1,
          ),
        );
        for (const c of all.elephants) assert.ok(c.packets >= 1 && c.packets <= c.count);
      }),
      RUNS,
    );
  });

  it("merging does not depend on the order of the snapshots or of their records", () => {
    fc.assert(
      fc.property(
        snapshotsArb.chain((snapshots) =>
          fc.tuple(
            fc.constant(snapshots),
            fc.shuffledSubarray(snapshots, { minLength: snapshots.length, maxLength: snapshots.length }),
            fc.array(fc.integer(), { minLength: snapshots.length, maxLength: snapshots.length }),
          ),
        ),
        ([snapshots, shuffled, seeds]) => {
          const reordered = shuffled.map((s, i) => {
            // A deterministic shuffle of the records from the seed.
            const seed = seeds[i]!;
            const clients = s.clients
              .map((c, j) => ({ c, key: Math.imul(j + 1, 0x9e3779b1) ^ seed }))
              .sort((x, y) => x.key - y.key)
              .map((x) => x.c);
            return { ...s, clients };
          });
          const r1 = survey(snapshots);
          const r2 = survey(reordered);
          assert.deepEqual(r2, r1);
        },
      ),
      RUNS,
    );
  });

  it("a client split round-robin over several servers counts once, with the unsplit figures", () => {
    const trainArb = fc.record({
      start: fc.integer({ min: -4000, max: 0 }), // half-seconds before T
      spacing: fc.integer({ min: 1, max: 24 }), // half-seconds: 0.5 s to 12 s
      count: fc.integer({ min: 1, max: 400 }),
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(
          fc.tuple(fc.constantFrom(...POOL.filter((a) => !a.includes(":") || a === "2001:db8::2")), trainArb),
          {
            minLength: 1,
            maxLength: 6,
            selector: (t) => t[0],
          },
        ),
        fc.integer({ min: 2, max: 4 }),
        fc.integer({ min: -1500, max: 0 }),
        (trains, k, windowStart) => {
          const times = trains.map(([address, t]) => ({
            address,
            times: Array.from({ length: t.count }, (_, i) => T + (t.start + i * t.spacing) / 2),
          }));
          const record = (address: string, ts: number[]) => client(address, ts[0]!, ts.at(-1)!, ts.length);
          const whole = snapshot(
            "whole",
            T + 5000,
            T - 5000,
            times.map(({ address, times: ts }) => record(address, ts)),
          );
          const parts: Snapshot[] = [];
          for (let s = 0; s < k; s++) {
            const clients: SnapshotClient[] = [];
            for (const { address, times: ts } of times) {
              const mine = ts.filter((_, i) => i % k === s);
              // Server 1 writes IPv4 clients IPv4-mapped, as a dual-stack socket reports them.
              const written = s === 1 && !address.includes(":") ? `::ffff:${address}` : address;
              if (mine.length > 0) clients.push(record(written, mine));
            }
            parts.push(snapshot(`s${s}`, T + 5000, T - 5000, clients));
          }
          const window = { start: T + windowStart / 2, end: T + windowStart / 2 + 300 };
          const a = consolidate([whole], { window, top: 100 });
          const b = consolidate(parts, { window, top: 100 });
          assert.equal(b.clients, a.clients);
          assert.equal(b.packets, a.packets);
          assert.equal(b.bursters.clients, a.bursters.clients);
          assert.equal(b.bursters.packets, a.bursters.packets);
          const key = (c: SurveyResult["elephants"][number]) =>
            [c.address, c.count, c.firstSeen, c.lastSeen, c.packets, c.burster, c.burstRate].join(" ");
          assert.deepEqual(b.elephants.map(key).sort(), a.elephants.map(key).sort());
        },
      ),
      RUNS,
    );
  });
});
