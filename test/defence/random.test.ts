// The defences' PRNG (src/defence/random.ts).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createRng, RNG_RANGE } from "../../src/defence/random.ts";

describe("createRng", () => {
  test("30-bit integers, uniform enough for sampling, reproducible by seed", () => {
    const a = createRng(11);
    const b = createRng(11);
    const buckets = new Uint32Array(16);
    for (let i = 0; i < 160_000; i++) {
      const x = a();
      assert.equal(x, b());
      assert.ok(Number.isInteger(x) && x >= 0 && x < RNG_RANGE);
      buckets[x >>> 26]!++;
    }
    // 10,000 expected per bucket, sd ~97.
    for (const n of buckets) assert.ok(Math.abs(n - 10_000) < 600, `bucket ${n}`);
    assert.notEqual(createRng(1)(), createRng(2)());
  });
});
