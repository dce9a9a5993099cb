// The intersection algorithm (src/client/select.ts): worked cases, and a property test against ground truth:
// a majority of servers whose intervals contain the true offset, and a minority of falsetickers far away.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { type Candidate, selectTruechimers } from "../../src/client/select.ts";

const c = (id: number, offsetS: number, distanceS: number): Candidate => ({ id, offsetS, distanceS });

describe("selectTruechimers", () => {
  it("one server is its own majority", () => {
    const s = selectTruechimers([c(0, 0.5, 0.1)]);
    assert.equal(s.majority, true);
    assert.deepEqual(s.truechimers, [0]);
    assert.ok(s.low <= 0.5 && s.high >= 0.5);
  });

  it("nobody is a falseticker without a majority: two servers that disagree both stay", () => {
    const s = selectTruechimers([c(0, 0, 0.01), c(1, 3, 0.01)]);
    assert.equal(s.majority, false);
    assert.deepEqual(s.truechimers, [0, 1]);
    assert.deepEqual(s.falsetickers, []);
  });

  it("three servers, one 5 s off with the smallest distance: it is the falseticker", () => {
    const s = selectTruechimers([c(0, 0.001, 0.03), c(1, -0.002, 0.05), c(2, 5, 0.005)]);
    assert.equal(s.majority, true);
    assert.equal(s.allowed, 1);
    assert.deepEqual(s.falsetickers, [2]);
    assert.deepEqual(s.truechimers, [0, 1]);
    assert.ok(s.low <= 0 && s.high >= 0);
  });

  it("truechimers come ranked by root distance", () => {
    const s = selectTruechimers([c(0, 0, 0.3), c(1, 0.01, 0.1), c(2, -0.01, 0.2), c(3, 0, 0.05)]);
    assert.deepEqual(s.truechimers, [3, 1, 2, 0]);
  });

  it("intervals touching at one point make no intersection; overlapping ones do", () => {
    const s = selectTruechimers([c(0, 0, 1), c(1, 2, 1)]);
    assert.equal(s.majority, false, "a single point is not an interval (RFC 5905: high > low)");
    const t = selectTruechimers([c(0, 0, 1), c(1, 1.5, 1), c(2, 0.7, 1)]);
    assert.equal(t.majority, true);
    assert.deepEqual(t.falsetickers, []);
  });

  it("no candidates: no majority, nothing chosen", () => {
    const s = selectTruechimers([]);
    assert.equal(s.majority, false);
    assert.deepEqual(s.truechimers, []);
  });

  it("finds exactly the falsetickers when they are fewer than half (property)", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            d: fc.double({ min: 1, max: 2, noNaN: true }),
            o: fc.double({ min: -0.24, max: 0.24, noNaN: true }),
          }),
          { minLength: 1, maxLength: 12 },
        ),
        fc.array(
          fc.record({
            d: fc.double({ min: 1, max: 2, noNaN: true }),
            o: fc.double({ min: 100, max: 1000, noNaN: true }),
            neg: fc.boolean(),
          }),
          { maxLength: 11 },
        ),
        (good, bad) => {
          fc.pre(bad.length < good.length);
          const cands: Candidate[] = [
            ...good.map((g, i) => c(i, g.o, g.d)),
            ...bad.map((b, i) => c(good.length + i, b.neg ? -b.o : b.o, b.d)),
          ];
          // Shuffle deterministically so that input order does not help.
          cands.sort((a, b) => ((a.id * 7919) % 13) - ((b.id * 7919) % 13));
          const s = selectTruechimers(cands);
          assert.equal(s.majority, true);
          assert.deepEqual(
            [...s.truechimers].sort((a, b) => a - b),
            good.map((_, i) => i),
          );
          assert.deepEqual(
            [...s.falsetickers].sort((a, b) => a - b),
            bad.map((_, i) => good.length + i),
          );
          assert.ok(s.low <= 0 && s.high >= 0, "the intersection holds the true offset");
          const dist = s.truechimers.map((id) => cands.find((x) => x.id === id)!.distanceS);
          assert.deepEqual(
            dist,
            [...dist].sort((a, b) => a - b),
          );
        },
      ),
      { numRuns: 500 },
    );
  });
});
