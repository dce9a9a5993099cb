import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Worker } from "node:worker_threads";
import fc from "fast-check";
import { addressKey, KEY_WORDS, maskKey } from "../../src/defence/address-key.ts";
import { DefenceError } from "../../src/defence/errors.ts";
import {
  MRU_RECORD_BYTES,
  MruList,
  type MruOptions,
  mruBufferBytes,
  mruCapacity,
} from "../../src/defence/mru.ts";
import { createRng } from "../../src/defence/random.ts";

const MRU_URL = new URL("../../src/defence/mru.ts", import.meta.url).href;

function k(address: string): Uint32Array {
  const key = addressKey(address);
  assert.ok(key, address);
  return key;
}

function make(options: MruOptions = {}): MruList {
  return MruList.create({ hashSeed: 42, ...options }, createRng(7));
}

function order(list: MruList): string[] {
  return list.snapshot().map((e) => e.address);
}

describe("MruList basics", () => {
  test("a record per address, newest first, with its fields", () => {
    const list = make({ maxEntries: 10 });
    assert.equal(list.touch(k("192.0.2.1"), 100, 3, 4, 123), 0);
    assert.equal(list.interval, Number.POSITIVE_INFINITY);
    list.touch(k("2001:db8::1"), 101, 3, 3, 40000);
    const r = list.touch(k("::ffff:192.0.2.1"), 103, 1, 2, 5555);
    assert.equal(r, 0, "IPv4-mapped is the same client");
    assert.equal(list.interval, 3);
    list.touch(k("192.0.2.1"), 107, 3, 4, 123);
    assert.equal(list.interval, 4);
    assert.deepEqual(order(list), ["192.0.2.1", "2001:db8::1"]);
    const e = list.read(0)!;
    assert.equal(e.count, 3);
    assert.equal(e.firstSeen, 100);
    assert.equal(e.lastSeen, 107);
    assert.equal(e.avgInterval, 3 + (4 - 3) / 8, "seeded with the first interval, then 1/8 of the way");
    assert.deepEqual([e.mode, e.version, e.port], [3, 4, 123]);
    assert.equal(e.lastKod, Number.NEGATIVE_INFINITY);
    assert.equal(list.lookup(k("2001:db8::1")), 1);
    assert.equal(list.lookup(k("2001:db8::2")), -1);
    assert.equal(list.read(5), undefined);
    assert.equal(list.size, 2);
    assert.equal(list.checkInvariants(), "");
    const s = list.stats();
    assert.deepEqual([s.inserted, s.hits, s.recycled, s.evicted, s.refused, s.capacity], [2, 2, 0, 0, 0, 10]);
  });

  test("time handed out of order never moves lastSeen back", () => {
    const list = make();
    const r = list.touch(k("192.0.2.1"), 100, 3, 4, 1);
    list.touch(k("192.0.2.1"), 99.5, 3, 4, 1);
    assert.equal(list.interval, 0);
    assert.equal(list.lastSeen[r], 100);
    assert.equal(list.count[r], 2);
  });

  test("a record keyed by a prefix keeps the last source and the prefix length for displays", () => {
    const list = make({ maxEntries: 8 });
    // What the decision core does for a client known by its /64: touch the masked key, note the source.
    const touch = (source: string, t: number, port: number) => {
      const src = k(source);
      const client = new Uint32Array(KEY_WORDS);
      maskKey(src, 64, client);
      list.lock();
      try {
        const r = list.touchLocked(client, t, 3, 4, port);
        list.noteSourceLocked(r, src, 64);
        return r;
      } finally {
        list.unlock();
      }
    };
    const r = touch("2001:db8:1:2::a", 10, 1000);
    assert.equal(touch("2001:db8:1:2:ffff::b", 11, 1001), r, "one record for the /64");
    list.touch(k("192.0.2.9"), 12, 3, 4, 123);
    const e = list.read(r)!;
    assert.equal(e.address, "2001:db8:1:2::/64");
    assert.equal(e.lastAddress, "2001:db8:1:2:ffff::b");
    assert.equal(e.prefixLength, 64);
    assert.equal(e.count, 2);
    assert.equal(e.port, 1001);
    const v4 = list.read(list.lookup(k("192.0.2.9")))!;
    assert.deepEqual([v4.address, v4.lastAddress, v4.prefixLength], ["192.0.2.9", "192.0.2.9", 32]);
    assert.equal(list.prefixBits[r], 64);
    assert.equal(list.checkInvariants(), "");
    // A record recycled for a client keyed by its whole address forgets the prefix.
    const small = make({ maxEntries: 1, maxAge: 0 });
    small.lock();
    const r0 = small.touchLocked(k("2001:db8:1:2::"), 1, 3, 4, 1);
    small.noteSourceLocked(r0, k("2001:db8:1:2::7"), 64);
    small.unlock();
    small.touch(k("2001:db8::9"), 5, 3, 4, 1);
    assert.deepEqual(
      [small.read(0)!.address, small.read(0)!.lastAddress, small.read(0)!.prefixLength],
      ["2001:db8::9", "2001:db8::9", 128],
    );
  });

  test("full: the oldest is recycled when older than maxAge, else sampled", () => {
    const list = make({ maxEntries: 2, maxAge: 10, admitProbability: 0 });
    list.touch(k("10.0.0.1"), 0, 3, 4, 1);
    list.touch(k("10.0.0.2"), 5, 3, 4, 1);
    assert.equal(list.touch(k("10.0.0.3"), 10, 3, 4, 1), -1, "oldest is 10 s old: not more than maxAge");
    assert.ok(Number.isNaN(list.interval));
    assert.equal(list.touch(k("10.0.0.3"), 10.5, 3, 4, 1), 0, "now it is: recycled into its slot");
    assert.equal(list.lookup(k("10.0.0.1")), -1);
    assert.deepEqual(order(list), ["10.0.0.3", "10.0.0.2"]);
    const always = make({ maxEntries: 2, maxAge: 1000, admitProbability: 1 });
    always.touch(k("10.0.0.1"), 0, 3, 4, 1);
    always.touch(k("10.0.0.2"), 1, 3, 4, 1);
    always.touch(k("10.0.0.1"), 2, 3, 4, 1);
    always.touch(k("10.0.0.3"), 3, 3, 4, 1);
    assert.deepEqual(order(always), ["10.0.0.3", "10.0.0.1"], "the least recently used went");
    assert.deepEqual([list.stats().recycled, list.stats().refused, always.stats().evicted], [1, 1, 1]);
    assert.equal(list.checkInvariants(), "");
    assert.equal(always.checkInvariants(), "");
  });

  test("admitProbability samples newcomers at about that rate", () => {
    const list = make({ maxEntries: 100, maxAge: 1e9, admitProbability: 0.25 });
    for (let i = 0; i < 100; i++) list.touch(k(`10.0.0.${i}`), i, 3, 4, 1);
    let admitted = 0;
    for (let i = 0; i < 4000; i++)
      if (list.touch(k(`10.1.${i >> 8}.${i & 255}`), 200 + i, 3, 4, 1) >= 0) admitted++;
    // Binomial(4000, 0.25): mean 1000, sd 27; six sd either way.
    assert.ok(admitted > 840 && admitted < 1160, `${admitted} admitted`);
    assert.equal(list.stats().refused, 4000 - admitted);
    assert.equal(list.checkInvariants(), "");
  });

  test("capacity is the smaller of maxEntries and what fits in maxMemory", () => {
    assert.equal(mruCapacity(1000, 1e12), 1000);
    const cap = mruCapacity(1e6, 1024 * 1024);
    assert.ok(mruBufferBytes(cap) <= 1024 * 1024 && mruBufferBytes(cap + 1) > 1024 * 1024);
    const list = make({ maxEntries: 1e6, maxMemory: 1024 * 1024 });
    assert.equal(list.capacity, cap);
    assert.ok(list.buffer.byteLength <= 1024 * 1024);
    // Bytes per record: fields plus 4-8 bytes of hash bucket; a million fit in ~110 MB.
    assert.equal(MRU_RECORD_BYTES, 107);
    assert.ok(mruBufferBytes(1_000_000) < 115 * 1024 * 1024);
  });

  test("bad options and buffers are refused with a code", () => {
    const codeOf = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        assert.ok(e instanceof DefenceError);
        return e.code;
      }
      assert.fail("no error");
    };
    assert.equal(
      codeOf(() => MruList.create({ maxEntries: 0 })),
      "ERR_DEFENCE_OPTION",
    );
    assert.equal(
      codeOf(() => MruList.create({ maxEntries: 1.5 })),
      "ERR_DEFENCE_OPTION",
    );
    assert.equal(
      codeOf(() => MruList.create({ maxMemory: 100 })),
      "ERR_DEFENCE_OPTION",
    );
    assert.equal(
      codeOf(() => MruList.create({ admitProbability: 2 })),
      "ERR_DEFENCE_OPTION",
    );
    assert.equal(
      codeOf(() => MruList.create({ maxAge: -1 })),
      "ERR_DEFENCE_OPTION",
    );
    assert.equal(
      codeOf(() => MruList.create({ averageShift: 40 })),
      "ERR_DEFENCE_OPTION",
    );
    assert.equal(
      codeOf(() => MruList.attach(new SharedArrayBuffer(4096))),
      "ERR_DEFENCE_BUFFER",
    );
  });

  test("a view attached to the buffer sees and makes the same records", () => {
    const a = make({ maxEntries: 8 });
    const b = MruList.attach(a.buffer);
    a.touch(k("192.0.2.1"), 1, 3, 4, 1);
    b.touch(k("192.0.2.1"), 2, 3, 4, 1);
    b.touch(k("192.0.2.2"), 3, 3, 4, 1);
    assert.equal(a.read(0)!.count, 2);
    assert.deepEqual(order(a), ["192.0.2.2", "192.0.2.1"]);
    a.clear();
    assert.equal(b.size, 0);
    assert.deepEqual(order(b), []);
  });

  test("entries(): each record at most once, every untouched one reported, while others move", () => {
    const list = make({ maxEntries: 64, maxAge: 1e9, admitProbability: 1 });
    for (let i = 0; i < 64; i++) list.touch(k(`10.0.0.${i}`), i, 3, 4, 1);
    const seen: string[] = [];
    const touched = new Set<string>();
    let t = 100;
    for (const e of list.entries(3)) {
      seen.push(e.address);
      // Between chunks, move some records (including ones not yet reported) to the front, and admit a
      // newcomer that recycles the oldest.
      if (seen.length % 5 === 0) {
        const victim = `10.0.0.${(seen.length * 7) % 64}`;
        touched.add(victim);
        list.touch(k(victim), t++, 3, 4, 1);
      }
    }
    assert.equal(new Set(seen).size, seen.length, "no duplicates");
    for (let i = 0; i < 64; i++) {
      const a = `10.0.0.${i}`;
      if (!touched.has(a)) assert.ok(seen.includes(a), `${a} reported`);
    }
    assert.deepEqual(
      list.snapshot(3).map((e) => e.address),
      order(list).slice(0, 3),
    );
  });
});

// The reference: a Map and an array in recency order, written for clarity, not speed.
interface ModelRecord {
  first: number;
  last: number;
  count: number;
  avg: number;
}

class Model {
  readonly records = new Map<string, ModelRecord>();
  order: string[] = []; // newest first
  stats = { inserted: 0, hits: 0, recycled: 0, evicted: 0, refused: 0, protected: 0 };
  readonly capacity: number;
  readonly maxAge: number;
  readonly admit: boolean;
  readonly shift: number;
  constructor(capacity: number, maxAge: number, admit: boolean, shift: number) {
    this.capacity = capacity;
    this.maxAge = maxAge;
    this.admit = admit;
    this.shift = shift;
  }

  touch(address: string, now: number): { present: boolean; interval: number } {
    const rec = this.records.get(address);
    if (rec) {
      let dt = now - rec.last;
      if (dt < 0) dt = 0;
      else rec.last = now;
      if (rec.count === 1) rec.avg = dt;
      else rec.avg += (dt - rec.avg) * (1 / 2 ** this.shift);
      rec.count++;
      this.order = [address, ...this.order.filter((a) => a !== address)];
      this.stats.hits++;
      return { present: true, interval: dt };
    }
    if (this.records.size >= this.capacity) {
      const oldest = this.order[this.order.length - 1]!;
      if (now - this.records.get(oldest)!.last > this.maxAge) this.stats.recycled++;
      else if (this.admit) this.stats.evicted++;
      else {
        this.stats.refused++;
        return { present: false, interval: Number.NaN };
      }
      this.records.delete(oldest);
      this.order.pop();
    } else {
      this.stats.inserted++;
    }
    this.records.set(address, { first: now, last: now, count: 1, avg: 0 });
    this.order.unshift(address);
    return { present: true, interval: Number.POSITIVE_INFINITY };
  }
}

describe("MruList against a naive model (property)", () => {
  test("same records, fields, order and counters for any sequence of touches", () => {
    const pool = Array.from({ length: 12 }, (_, i) =>
      i % 2 ? `10.0.0.${i}` : `2001:db8::${(i + 1).toString(16)}`,
    );
    const keys = pool.map(k);
    const step = fc.record({
      who: fc.nat(pool.length - 1),
      // Mostly forward in small steps, sometimes a pause, sometimes a little backwards (another thread).
      dt: fc.oneof(
        { weight: 6, arbitrary: fc.integer({ min: 0, max: 4 }) },
        { weight: 2, arbitrary: fc.double({ min: 0, max: 30, noNaN: true }) },
        { weight: 1, arbitrary: fc.integer({ min: -2, max: 0 }) },
      ),
    });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.constantFrom(0, 1, 5, 1e9),
        fc.boolean(),
        fc.integer({ min: 0, max: 4 }),
        fc.array(step, { maxLength: 120 }),
        (capacity, maxAge, admit, shift, steps) => {
          const list = MruList.create(
            {
              maxEntries: capacity,
              maxAge,
              admitProbability: admit ? 1 : 0,
              averageShift: shift,
              hashSeed: 1,
            },
            createRng(3),
          );
          const model = new Model(capacity, maxAge, admit, shift);
          let now = 1000;
          for (const { who, dt } of steps) {
            now += dt;
            const r = list.touch(keys[who]!, now, 3, 4, 123);
            const expected = model.touch(pool[who]!, now);
            assert.equal(r >= 0, expected.present);
            assert.ok(Object.is(list.interval, expected.interval), `interval ${list.interval}`);
          }
          const entries = list.snapshot();
          assert.deepEqual(
            entries.map((e) => e.address),
            model.order,
          );
          for (const e of entries) {
            const m = model.records.get(e.address)!;
            assert.deepEqual(
              [e.firstSeen, e.lastSeen, e.count, e.avgInterval],
              [m.first, m.last, m.count, m.avg],
            );
          }
          const { capacity: _c, size, bufferBytes: _b, ...counters } = list.stats();
          assert.equal(size, model.records.size);
          assert.deepEqual(counters, model.stats);
          assert.equal(list.checkInvariants(), "");
        },
      ),
      { numRuns: 500 },
    );
  });
});

// Each worker attaches the list and touches every address `rounds` times under the lock, all of them at
// once after a shared start signal, so that the same records are hit from every thread together.
const HAMMER = `
const { workerData, parentPort } = require("node:worker_threads");
import(workerData.url).then(({ MruList }) => {
  const list = MruList.attach(workerData.buffer);
  const go = new Int32Array(workerData.go);
  const keys = workerData.keys;
  const key = new Uint32Array(4);
  Atomics.add(go, 1, 1);
  Atomics.wait(go, 0, 0);
  let t = 0;
  for (let round = 0; round < workerData.rounds; round++) {
    for (let a = 0; a < keys.length / 4; a++) {
      key.set(keys.subarray(a * 4, a * 4 + 4));
      list.lock();
      const r = list.touchLocked(key, ++t, 3, 4, workerData.id);
      list.gapped[r]++;
      list.unlock();
    }
  }
  parentPort.postMessage("done");
});
`;

function runHammer(buffer: SharedArrayBuffer, keys: Uint32Array, threads: number, rounds: number) {
  const go = new SharedArrayBuffer(8);
  const goView = new Int32Array(go);
  const workers = Array.from(
    { length: threads },
    (_, id) => new Worker(HAMMER, { eval: true, workerData: { url: MRU_URL, buffer, go, keys, rounds, id } }),
  );
  const done = workers.map(
    (w) =>
      new Promise<void>((resolve, reject) => {
        w.once("message", () => resolve());
        w.once("error", reject);
      }),
  );
  return (async () => {
    while (Atomics.load(goView, 1) < threads) await new Promise((r) => setTimeout(r, 5));
    Atomics.store(goView, 0, 1);
    Atomics.notify(goView, 0);
    try {
      await Promise.all(done);
    } finally {
      await Promise.all(workers.map((w) => w.terminate()));
    }
  })();
}

describe("MruList across worker threads", () => {
  test("four threads touching the same addresses: one record each, counts add up exactly", async () => {
    const addresses = 50;
    const threads = 4;
    const rounds = 2000;
    const list = make({ maxEntries: 64, maxAge: 1e9, admitProbability: 1 });
    const keys = new Uint32Array(addresses * KEY_WORDS);
    for (let a = 0; a < addresses; a++)
      keys.set(k(a % 2 ? `198.51.100.${a}` : `2001:db8::${a + 1}`), a * KEY_WORDS);
    await runHammer(list.buffer, keys, threads, rounds);
    assert.equal(list.size, addresses);
    assert.equal(list.checkInvariants(), "");
    for (const e of list.snapshot()) {
      assert.equal(e.count, threads * rounds, e.address);
      // A field written under the lock by a read-modify-write: no increment may be lost either.
      assert.equal(e.gapped, threads * rounds, e.address);
    }
    const s = list.stats();
    assert.equal(s.inserted + s.hits, addresses * threads * rounds);
    assert.equal(s.inserted, addresses);
  });
});

describe("MruList protection of established mice from a flood of newcomers (overload control)", () => {
  const PROTECT = { mouseInterval: 16, intervals: 4, maxSilence: 3 * 3600 };

  /** 20 mice polling every 64 s, then a flood of 2,000 new sources a second into a list of 200 records. */
  function flood(protection: typeof PROTECT | undefined): { kept: number; list: MruList } {
    const list = make({ maxEntries: 200, maxAge: 64, admitProbability: 0.5, protection });
    const mice = Array.from({ length: 20 }, (_, i) => k(`10.0.0.${i + 1}`));
    // Three polls each, 64 s apart: every mouse has an averaged interval of 64 s.
    for (let t = 0; t <= 128; t += 64) for (const m of mice) list.touchLocked(m, t, 3, 4, 123);
    const key = new Uint32Array(4);
    let n = 0;
    for (let t = 129; t < 129 + 60; t += 0.0005) {
      key.set(k("::ffff:0.0.0.0"));
      key[3] = 0x0b000000 + n++; // 11.x.y.z, a new source every packet
      list.touchLocked(key, t, 3, 4, 123);
      // The mice keep polling every 64 s, staggered, right through the flood.
      const due = Math.floor((t - 129) / 3.2);
      if (due < 20 && Math.abs(t - 129 - due * 3.2) < 0.0005) list.touchLocked(mice[due]!, t, 3, 4, 123);
    }
    let kept = 0;
    for (const m of mice) if (list.lookupLocked(m) >= 0) kept++;
    return { kept, list };
  }

  test("with protection every mouse keeps its record through 120,000 newcomers; without, none does", () => {
    const on = flood(PROTECT);
    assert.equal(on.kept, 20);
    assert.ok(on.list.stats().protected > 0, "second chances were given");
    const off = flood(undefined);
    assert.equal(off.kept, 0, "the flood cycles the whole list, mice first");
    assert.equal(off.list.stats().protected, 0);
  });

  test("a mouse silent for more than its protected time, an elephant and a one-packet client are not protected", () => {
    const list = make({ maxEntries: 4, maxAge: 1, admitProbability: 1, protection: PROTECT });
    const mouse = k("10.0.0.1");
    list.touchLocked(mouse, 0, 3, 4, 123);
    list.touchLocked(mouse, 20, 3, 4, 123); // averaged interval 20 s: protected for 80 s of silence
    const elephant = k("10.0.0.2");
    for (let t = 21; t < 25; t += 0.5) list.touchLocked(elephant, t, 3, 4, 123);
    list.touchLocked(k("10.0.0.3"), 25, 3, 4, 123);
    list.touchLocked(k("10.0.0.4"), 26, 3, 4, 123);
    // Newcomers at t = 60: the mouse (silent 40 s) moves to the front; the others are replaced.
    for (let i = 0; i < 3; i++) list.touchLocked(k(`10.0.1.${i}`), 60, 3, 4, 123);
    assert.ok(list.lookupLocked(mouse) >= 0, "the mouse survived");
    assert.equal(list.lookupLocked(elephant), -1, "the elephant did not");
    // At t = 101 the mouse has been silent 81 s > 4 x 20 s: it goes like any other record.
    for (let i = 0; i < 4; i++) list.touchLocked(k(`10.0.2.${i}`), 101, 3, 4, 123);
    assert.equal(list.lookupLocked(mouse), -1);
  });

  test("protect-max bounds the protected silence of a mouse with a long interval", () => {
    const list = make({
      maxEntries: 1,
      maxAge: 1,
      admitProbability: 1,
      protection: { ...PROTECT, maxSilence: 100 },
    });
    const mouse = k("10.0.0.1");
    list.touchLocked(mouse, 0, 3, 4, 123);
    list.touchLocked(mouse, 1024, 3, 4, 123); // 1,024 s interval: 4 x 1,024 s, but at most 100 s
    assert.equal(
      list.touchLocked(k("10.0.0.9"), 1100, 3, 4, 123),
      -1,
      "refused: the only record is protected",
    );
    assert.ok(list.touchLocked(k("10.0.0.9"), 1125, 3, 4, 123) >= 0, "admitted once the 100 s are over");
    assert.equal(list.lookupLocked(mouse), -1);
  });

  test("setProtection applies to every view and can turn it off", () => {
    const list = make({ maxEntries: 1, maxAge: 1, admitProbability: 1, protection: PROTECT });
    const other = MruList.attach(list.buffer, createRng(3));
    const mouse = k("10.0.0.1");
    list.touchLocked(mouse, 0, 3, 4, 123);
    list.touchLocked(mouse, 20, 3, 4, 123);
    assert.equal(other.touchLocked(k("10.0.0.2"), 30, 3, 4, 123), -1);
    other.setProtection(undefined);
    assert.ok(list.touchLocked(k("10.0.0.2"), 31, 3, 4, 123) >= 0);
    assert.throws(() => list.setProtection({ ...PROTECT, mouseInterval: 0 }), DefenceError);
  });
});
