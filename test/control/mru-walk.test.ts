// The read-only walk accessors added to MruList for mrulist (newestLocked, oldestLocked, newerLocked,
// olderLocked): they must follow the list's recency order exactly.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { MruList } from "../../src/defence/mru.ts";
import { createRng } from "../../src/defence/random.ts";
import { key } from "./client.ts";

function walk(list: MruList, from: "newest" | "oldest"): number[] {
  const out: number[] = [];
  list.lock();
  try {
    let r = from === "newest" ? list.newestLocked() : list.oldestLocked();
    while (r >= 0 && out.length <= list.capacity) {
      out.push(r);
      r = from === "newest" ? list.olderLocked(r) : list.newerLocked(r);
    }
  } finally {
    list.unlock();
  }
  return out;
}

describe("MruList walk accessors", () => {
  test("an empty list has no newest or oldest record", () => {
    const list = MruList.create({ maxEntries: 4 }, createRng(1));
    assert.deepEqual(walk(list, "newest"), []);
    list.lock();
    assert.equal(list.newestLocked(), -1);
    assert.equal(list.oldestLocked(), -1);
    list.unlock();
  });

  test("property: both directions match snapshot()'s newest-to-oldest order, under touches and evictions", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 300 }),
        fc.integer({ min: 1, max: 25 }),
        (ops, cap) => {
          const list = MruList.create(
            { maxEntries: cap, maxAge: 5, admitProbability: 0.5, hashSeed: 3 },
            createRng(9),
          );
          ops.forEach((a, t) => {
            list.touch(key(`10.0.0.${a}`), t + 1, 3, 4, 123);
          });
          const expected = list.snapshot().map((e) => e.index);
          assert.deepEqual(walk(list, "newest"), expected);
          assert.deepEqual(walk(list, "oldest"), [...expected].reverse());
        },
      ),
    );
  });
});
