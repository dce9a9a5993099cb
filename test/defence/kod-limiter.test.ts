import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Worker } from "node:worker_threads";
import fc from "fast-check";
import { addressKey } from "../../src/defence/address-key.ts";
import { DefenceError } from "../../src/defence/errors.ts";
import {
  KOD_DROP_CLIENT,
  KOD_DROP_RATE,
  KOD_RESULT_NAMES,
  KOD_SEND,
  KodLimiter,
} from "../../src/defence/kod-limiter.ts";
import { MRU_FLAG_KOD, MruList } from "../../src/defence/mru.ts";
import { createRng } from "../../src/defence/random.ts";

const KOD_URL = new URL("../../src/defence/kod-limiter.ts", import.meta.url).href;

function touch(list: MruList, address: string, t: number): number {
  return list.touch(addressKey(address)!, t, 3, 4, 123);
}

describe("KoD limiter (paper §11)", () => {
  test("one KoD per client per clientInterval; the record keeps when and how many", () => {
    const list = MruList.create({ maxEntries: 8 }, createRng(1));
    const kod = KodLimiter.create({ clientInterval: 5, maxRate: 1000 });
    const results: number[] = [];
    for (let t = 0; t < 20; t += 1) {
      const r = touch(list, "192.0.2.1", t);
      list.lock();
      results.push(kod.decide(list, r, t));
      list.unlock();
    }
    // Sent at 0, 5, 10, 15.
    assert.deepEqual(
      results.map((x, t) => (x === KOD_SEND ? t : -1)).filter((t) => t >= 0),
      [0, 5, 10, 15],
    );
    assert.ok(results.every((x) => x === KOD_SEND || x === KOD_DROP_CLIENT));
    const e = list.read(0)!;
    assert.equal(e.kods, 4);
    assert.equal(e.lastKod, 15);
    assert.equal(e.flags & MRU_FLAG_KOD, MRU_FLAG_KOD);
    assert.deepEqual(kod.stats(), { sent: 4, droppedClient: 16, droppedRate: 0 });
  });

  test("server-wide: never more than burst + maxRate x elapsed, for any arrival pattern (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.double({ min: 0, max: 0.5, noNaN: true }), { minLength: 1, maxLength: 400 }),
        (maxRate, burst, gaps) => {
          const kod = KodLimiter.create({ maxRate, burst, clientInterval: 5 });
          let t = 1000;
          let sent = 0;
          const start = t;
          for (const g of gaps) {
            t += g;
            // A spoofed flood: every request from a new address, so only the global bucket limits it.
            if (kod.decide(null, -1, t) === KOD_SEND) sent++;
            assert.ok(sent <= burst + maxRate * (t - start) + 1e-9, `${sent} KoDs by ${t - start} s`);
          }
          const s = kod.stats();
          assert.equal(s.sent, sent);
          assert.equal(s.sent + s.droppedRate, gaps.length);
        },
      ),
      { numRuns: 300 },
    );
  });

  test("a sustained flood is kissed at maxRate, the excess dropped and counted", () => {
    const kod = KodLimiter.create({ maxRate: 100 });
    let sent = 0;
    const n = 100_000; // 10 s at 10,000 requests per second
    for (let i = 0; i < n; i++) if (kod.decide(null, -1, 5000 + i / 10_000) === KOD_SEND) sent++;
    // The full bucket (100) plus 100 per second for ~10 s.
    assert.ok(sent >= 100 + 999 && sent <= 100 + 1000, `${sent} sent`);
    assert.equal(kod.stats().droppedRate, n - sent);
  });

  test("time handed out of order adds no tokens; maxRate 0 sends none", () => {
    const kod = KodLimiter.create({ maxRate: 4, burst: 1 });
    assert.equal(kod.decide(null, -1, 100), KOD_SEND);
    assert.equal(kod.decide(null, -1, 99), KOD_DROP_RATE);
    assert.equal(kod.decide(null, -1, 100.125), KOD_DROP_RATE, "half a token");
    assert.equal(kod.decide(null, -1, 100.25), KOD_SEND);
    const off = KodLimiter.create({ maxRate: 0 });
    assert.equal(off.decide(null, -1, 1), KOD_DROP_RATE);
    assert.equal(off.decide(null, -1, 1e9), KOD_DROP_RATE);
    assert.equal(KOD_RESULT_NAMES[KOD_DROP_RATE], "kod_drop_rate");
  });

  test("a KoD dropped by the global limit is not charged to the client", () => {
    const list = MruList.create({ maxEntries: 8 }, createRng(1));
    const kod = KodLimiter.create({ maxRate: 1, burst: 1, clientInterval: 5 });
    const a = touch(list, "192.0.2.1", 0);
    const b = touch(list, "192.0.2.2", 0);
    assert.equal(kod.decide(list, a, 0), KOD_SEND);
    assert.equal(kod.decide(list, b, 0.5), KOD_DROP_RATE);
    assert.equal(list.lastKod[b], Number.NEGATIVE_INFINITY);
    assert.equal(kod.decide(list, b, 1), KOD_SEND, "b may have one as soon as a token is back");
  });

  test("options and buffers are checked", () => {
    for (const o of [{ maxRate: -1 }, { burst: 0 }, { clientInterval: Number.NaN }]) {
      assert.throws(
        () => KodLimiter.create(o),
        (e: unknown) => e instanceof DefenceError && e.code === "ERR_DEFENCE_OPTION",
      );
    }
    assert.throws(
      () => KodLimiter.attach(new SharedArrayBuffer(72)),
      (e: unknown) => e instanceof DefenceError && e.code === "ERR_DEFENCE_BUFFER",
    );
    const a = KodLimiter.create({ maxRate: 7, burst: 3, clientInterval: 9 });
    const b = KodLimiter.attach(a.buffer);
    assert.deepEqual([b.maxRate, b.burst, b.clientInterval], [7, 3, 9]);
  });
});

// Every worker asks for KoDs at the same virtual instant: no tokens are added, so exactly `burst` may be
// sent in all, however the requests interleave across threads.
const HAMMER = `
const { workerData, parentPort } = require("node:worker_threads");
import(workerData.url).then(({ KodLimiter, KOD_SEND }) => {
  const kod = KodLimiter.attach(workerData.buffer);
  const go = new Int32Array(workerData.go);
  Atomics.add(go, 1, 1);
  Atomics.wait(go, 0, 0);
  let sent = 0;
  for (let i = 0; i < workerData.n; i++) if (kod.decide(null, -1, 1000) === KOD_SEND) sent++;
  parentPort.postMessage(sent);
});
`;

describe("KoD limiter across worker threads", () => {
  test("one server-wide bucket: four threads together send exactly `burst` at one instant", async () => {
    const burst = 5000;
    const threads = 4;
    const n = 4000;
    const kod = KodLimiter.create({ maxRate: 10, burst });
    assert.equal(kod.decide(null, -1, 1000), KOD_SEND); // the bucket's clock starts at t = 1000
    const go = new SharedArrayBuffer(8);
    const goView = new Int32Array(go);
    const workers = Array.from(
      { length: threads },
      () => new Worker(HAMMER, { eval: true, workerData: { url: KOD_URL, buffer: kod.buffer, go, n } }),
    );
    const sent = workers.map(
      (w) =>
        new Promise<number>((resolve, reject) => {
          w.once("message", resolve);
          w.once("error", reject);
        }),
    );
    try {
      while (Atomics.load(goView, 1) < threads) await new Promise((r) => setTimeout(r, 5));
      Atomics.store(goView, 0, 1);
      Atomics.notify(goView, 0);
      const perThread = await Promise.all(sent);
      const total = perThread.reduce((a, b) => a + b, 0);
      assert.equal(total, burst - 1);
      const s = kod.stats();
      assert.equal(s.sent, burst);
      assert.equal(s.droppedRate, threads * n - (burst - 1));
    } finally {
      await Promise.all(workers.map((w) => w.terminate()));
    }
  });
});
