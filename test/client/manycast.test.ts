// Manycast discovery's choice (src/client/manycast.ts, paper §9): "all but the best three are discarded".
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MANYCAST_KEEP, type ManycastAnswer, ManycastSet } from "../../src/client/manycast.ts";
import type { Sample } from "../../src/client/measure.ts";
import { sample } from "../helpers/client.ts";

const T0 = Date.UTC(2026, 11, 5, 1, 0, 0);

function answer(server: string, o: Partial<Sample> = {}, atMs = T0): ManycastAnswer {
  return {
    server,
    port: 123,
    sample: sample(atMs, o),
  };
}

describe("ManycastSet", () => {
  it("keeps all of three or fewer, best first", () => {
    const s = new ManycastSet();
    assert.equal(s.keep, MANYCAST_KEEP);
    const r = s.round(
      [answer("192.0.2.4", { rootDispersion: 0.5 }), answer("192.0.2.1"), answer("192.0.2.2")],
      T0,
    );
    assert.deepEqual(
      r.kept.map((k) => k.server),
      ["192.0.2.1", "192.0.2.2", "192.0.2.4"],
    );
    assert.deepEqual(r.added.sort(), ["192.0.2.1", "192.0.2.2", "192.0.2.4"]);
    assert.deepEqual(r.discarded, []);
  });

  it("discards a fourth, worse server when a fifth, better one appears", () => {
    const s = new ManycastSet();
    s.round([answer("192.0.2.1"), answer("192.0.2.2"), answer("192.0.2.4", { rootDispersion: 0.5 })], T0);
    const r = s.round(
      [
        answer("192.0.2.1"),
        answer("192.0.2.2"),
        answer("192.0.2.4", { rootDispersion: 0.5 }),
        answer("192.0.2.5"),
      ],
      T0 + 64_000,
    );
    assert.deepEqual(
      r.kept.map((k) => k.server),
      ["192.0.2.1", "192.0.2.2", "192.0.2.5"],
    );
    assert.deepEqual(r.added, ["192.0.2.5"]);
    assert.deepEqual(r.discarded, ["192.0.2.4"]);
    assert.deepEqual(s.servers().sort(), ["192.0.2.1", "192.0.2.2", "192.0.2.5"]);
  });

  it("ranks by root distance: stratum alone is not the measure, distance to the reference is", () => {
    const s = new ManycastSet(2);
    const r = s.round(
      [
        answer("192.0.2.1", { stratum: 1, rootDelay: 0.2 }),
        answer("192.0.2.2", { stratum: 3, rootDelay: 0.002 }),
        answer("192.0.2.3", { stratum: 2, rootDelay: 0.02 }),
      ],
      T0,
    );
    assert.deepEqual(
      r.kept.map((k) => k.server),
      ["192.0.2.2", "192.0.2.3"],
    );
    assert.deepEqual(r.discarded, ["192.0.2.1"]);
  });

  it("a kept server that stops answering ages and is overtaken", () => {
    const s = new ManycastSet(1);
    s.round([answer("192.0.2.1")], T0);
    // A day later, its last sample has grown by PHI * 86400 s = 1.3 s of distance; the newcomer's is fresh.
    const r = s.round([answer("192.0.2.2", { rootDispersion: 0.1 }, T0 + 86_400_000)], T0 + 86_400_000);
    assert.deepEqual(
      r.kept.map((k) => k.server),
      ["192.0.2.2"],
    );
    assert.deepEqual(r.discarded, ["192.0.2.1"]);
  });
});
