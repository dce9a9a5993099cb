// The blocklist's write queue on its own, with a commit that the test makes fail at will and a mocked
// clock: when a batch falls due, how hits add up, what a failed batch keeps, what a full queue drops.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it, mock } from "node:test";
import { type Hits, type Op, WriteQueue } from "../../../src/server/blocklist/write-queue.ts";

const add = (address: string): Op => ({
  kind: "upsert",
  address,
  reason: "",
  source: "auto",
  expires: null,
  hits: 0,
  at: 0,
});

/** A queue whose commits are recorded (or refused while `failing`), and whose due batches are counted. */
function harness(
  options: {
    flushMs?: number;
    maxBatch?: number;
    maxQueue?: number;
    full?: (dropped: number, queued: number) => void;
  } = {},
) {
  const h = {
    failing: false,
    due: 0,
    commits: [] as { ops: string[]; hits: [string, Hits][] }[],
    queue: undefined as unknown as WriteQueue,
  };
  h.queue = new WriteQueue({
    flushMs: options.flushMs ?? 250,
    maxBatch: options.maxBatch ?? 1000,
    maxQueue: options.maxQueue ?? 100_000,
    commit: (ops, hits) => {
      if (h.failing) throw new Error("database is locked");
      h.commits.push({
        ops: ops.map((o) => `${o.kind} ${o.address}`),
        hits: [...hits].map(([a, x]) => [a, { ...x }]),
      });
    },
    due: () => h.due++,
    ...(options.full === undefined ? {} : { full: options.full }),
  });
  return h;
}

describe("WriteQueue", () => {
  beforeEach(() => mock.timers.enable({ apis: ["setTimeout"] }));
  afterEach(() => mock.timers.reset());

  it("is due flushMs after the first write, or at once when a batch is full", () => {
    const h = harness({ flushMs: 250, maxBatch: 3 });
    h.queue.push(add("192.0.2.1"));
    mock.timers.tick(249);
    assert.equal(h.due, 0);
    mock.timers.tick(1);
    assert.equal(h.due, 1);
    assert.equal(h.queue.flush(), 1);
    h.queue.push(add("192.0.2.2"));
    h.queue.push(add("192.0.2.3"));
    assert.equal(h.due, 1, "one timer for the batch, set by its first write");
    h.queue.push(add("192.0.2.4"));
    assert.equal(h.due, 2, "full: due without waiting");
    assert.equal(h.queue.flush(), 3);
    mock.timers.tick(1000);
    assert.equal(h.due, 2, "a flush stops the timer");
  });

  it("adds up hits on one address into one write, at the latest time", () => {
    const h = harness();
    h.queue.addHits("192.0.2.1", 2, 1000);
    h.queue.addHits("192.0.2.1", 3, 900);
    h.queue.addHits("192.0.2.2", 1, 950);
    assert.equal(h.queue.size, 2);
    h.queue.push({ kind: "remove", address: "192.0.2.9" });
    assert.equal(h.queue.flush(), 3);
    assert.deepEqual(h.commits, [
      {
        ops: ["remove 192.0.2.9"],
        hits: [
          ["192.0.2.1", { count: 5, at: 1000 }],
          ["192.0.2.2", { count: 1, at: 950 }],
        ],
      },
    ]);
    assert.equal(h.queue.flush(), 0, "nothing left");
    assert.equal(h.commits.length, 1, "an empty flush commits nothing");
  });

  it("keeps a failed batch, in order, ahead of what is queued after it, and retries after a while", () => {
    const h = harness({ flushMs: 10 });
    h.queue.push(add("192.0.2.1"));
    h.queue.addHits("192.0.2.1", 2, 100);
    h.failing = true;
    assert.throws(() => h.queue.flush(), /locked/);
    assert.equal(h.queue.size, 2);
    h.queue.retryLater();
    mock.timers.tick(999);
    assert.equal(h.due, 0, "not at flushMs");
    mock.timers.tick(1);
    assert.equal(h.due, 1, "retried after a second at least");
    h.queue.push(add("192.0.2.2"));
    h.queue.addHits("192.0.2.1", 1, 200);
    h.failing = false;
    assert.equal(h.queue.flush(), 3);
    assert.deepEqual(h.commits, [
      { ops: ["upsert 192.0.2.1", "upsert 192.0.2.2"], hits: [["192.0.2.1", { count: 3, at: 200 }]] },
    ]);
    h.queue.retryLater();
    mock.timers.tick(5000);
    assert.equal(h.due, 1, "nothing to retry when nothing waits");
  });

  it("when full, keeps every entry and drops hit counts, oldest first; still adds hits to an address already queued", () => {
    const fulls: [number, number][] = [];
    const h = harness({ maxBatch: 1, maxQueue: 2, full: (dropped, queued) => fulls.push([dropped, queued]) });
    h.failing = true; // the database keeps failing: nothing leaves the queue
    h.queue.push(add("192.0.2.1"));
    h.queue.addHits("192.0.2.1", 1, 0);
    h.queue.addHits("192.0.2.9", 1, 0);
    assert.equal(h.queue.dropped, 1, "a new address's hits are dropped when full");
    h.queue.addHits("192.0.2.1", 4, 10);
    assert.equal(h.queue.dropped, 1, "hits on an address already queued still add up");
    h.queue.push(add("192.0.2.2"));
    h.queue.push(add("192.0.2.3"));
    h.queue.push({ kind: "remove", address: "192.0.2.1" });
    assert.equal(h.queue.size, 4, "entries are kept beyond maxQueue");
    assert.equal(h.queue.dropped, 2, "the oldest hits made room for the first entry");
    assert.deepEqual(fulls, [[1, 2]], "reported once until a batch commits");
    h.failing = false;
    assert.equal(h.queue.flush(), 4);
    assert.deepEqual(h.commits[0]?.ops, [
      "upsert 192.0.2.1",
      "upsert 192.0.2.2",
      "upsert 192.0.2.3",
      "remove 192.0.2.1",
    ]);
    assert.deepEqual(h.commits[0]?.hits, []);
    h.queue.push(add("192.0.2.4"));
    h.queue.addHits("192.0.2.4", 1, 0);
    h.queue.addHits("192.0.2.5", 1, 0);
    assert.deepEqual(
      fulls,
      [
        [1, 2],
        [3, 2],
      ],
      "reported again after a commit",
    );
  });
});
