// The shared lock of the defence structures (src/defence/lock.ts).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Worker } from "node:worker_threads";
import { acquireLock, releaseLock } from "../../src/defence/lock.ts";

const LOCK_URL = new URL("../../src/defence/lock.ts", import.meta.url).href;

// Each worker adds 1 to word 1 `rounds` times by a plain read and write (not atomic) under the lock in
// word 0: a lost update would show in the total.
const COUNTER = `
const { workerData, parentPort } = require("node:worker_threads");
import(workerData.url).then(({ acquireLock, releaseLock }) => {
  const words = new Int32Array(workerData.buffer);
  for (let n = 0; n < workerData.rounds; n++) {
    acquireLock(words, 0);
    words[1] = words[1] + 1;
    releaseLock(words, 0);
  }
  parentPort.postMessage("done");
});
`;

function runWorkers(buffer: SharedArrayBuffer, threads: number, rounds: number): Promise<void> {
  const workers = Array.from(
    { length: threads },
    () => new Worker(COUNTER, { eval: true, workerData: { url: LOCK_URL, buffer, rounds } }),
  );
  const done = workers.map(
    (w) =>
      new Promise<void>((resolve, reject) => {
        w.once("message", () => resolve());
        w.once("error", reject);
      }),
  );
  return Promise.all(done)
    .then(() => undefined)
    .finally(() => Promise.all(workers.map((w) => w.terminate())));
}

describe("acquireLock / releaseLock", () => {
  test("the word goes 0 (free) -> 1 (held) -> 0, at any index", () => {
    const words = new Int32Array(new SharedArrayBuffer(16));
    acquireLock(words, 2);
    assert.deepEqual([...words], [0, 0, 1, 0]);
    releaseLock(words, 2);
    assert.deepEqual([...words], [0, 0, 0, 0]);
  });

  test("threads waiting on a held lock mark it 2 (sleepers) and all get through once it is released", async () => {
    const buffer = new SharedArrayBuffer(8);
    const words = new Int32Array(buffer);
    acquireLock(words, 0);
    const run = runWorkers(buffer, 2, 1);
    const deadline = Date.now() + 10_000;
    while (Atomics.load(words, 0) !== 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.equal(Atomics.load(words, 0), 2);
    assert.equal(words[1], 0, "nobody entered while the lock was held");
    releaseLock(words, 0);
    await run;
    assert.equal(words[1], 2);
    assert.equal(Atomics.load(words, 0), 0);
  });

  test("four threads incrementing under the lock lose no update", async () => {
    const buffer = new SharedArrayBuffer(8);
    await runWorkers(buffer, 4, 20_000);
    const words = new Int32Array(buffer);
    assert.equal(words[1], 80_000);
    assert.equal(words[0], 0);
  });
});
