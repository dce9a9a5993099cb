import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { parseConfig } from "../../src/config/index.ts";
import { CERR_BADFMT, CERR_UNKNOWNVAR, CTL_OP_READ_MRU, lfpText } from "../../src/control/codec.ts";
import { CONTROL_ANSWERED } from "../../src/control/mode6.ts";
import {
  MRU_MAX_FRAGS,
  parseMruAddress,
  RES_KOD,
  RES_LIMITED,
  restrictionBits,
} from "../../src/control/mrulist.ts";
import { Defences } from "../../src/core/defences.ts";
import { R_DROP_GAPPED, R_DROP_NOQUERY, R_KISS_RATE, R_SERVED_CLIENT } from "../../src/core/reasons.ts";
import { type ServeState, unsynchronisedState } from "../../src/core/serve-state.ts";
import { formatAddressKey } from "../../src/defence/address-key.ts";
import type { MruList } from "../../src/defence/mru.ts";
import { createRng } from "../../src/defence/random.ts";
import { exchange, key, lfpValue, mrulist, mruRows, reassemble, request } from "./client.ts";
import { emptyMru, feed, makeCtx, NOW } from "./helpers.ts";

const S = NOW / 1000;

function setReason(mru: MruList, address: string, reason: number, gapped = 0): void {
  mru.lock();
  try {
    const r = mru.lookupLocked(key(address));
    assert.ok(r >= 0);
    mru.lastReason[r] = reason;
    mru.gapped[r] = gapped;
  } finally {
    mru.unlock();
  }
}

function nonce(ctx: ReturnType<typeof makeCtx>, from = "127.0.0.1", now = NOW): string {
  return reassemble(exchange(ctx, request(12), from, now).out).text.slice("nonce=".length);
}

describe("READ_MRU rows", () => {
  test("one round: rows oldest first with ntpd's fields, a fresh nonce first and now= last", () => {
    const mru = emptyMru();
    feed(mru, "192.0.2.10", [S - 100, S - 50, S - 10], 123, 3, 4);
    feed(mru, "2001:db8::5", [S - 30, S - 20, S - 5], 40000, 3, 3);
    feed(mru, "198.51.100.7", [S - 3], 5555, 1, 4);
    setReason(mru, "2001:db8::5", R_KISS_RATE, 2);
    const ctx = makeCtx({ mru });
    const n = nonce(ctx);
    const { result, out } = exchange(ctx, request(CTL_OP_READ_MRU, `nonce=${n}, frags=32`), "127.0.0.1", NOW);
    assert.equal(result, CONTROL_ANSWERED);
    const r = reassemble(out);
    assert.ok(r.text.startsWith("nonce=a"));
    const { rows, now, nonce: fresh } = mruRows(r.text);
    assert.ok(fresh && fresh !== "");
    assert.equal(now, lfpText(S));
    assert.match(r.text, new RegExp(`last\\.newest=${lfpText(S - 3).replace(".", "\\.")}`));
    assert.deepEqual(
      rows.map((x) => x.addr),
      ["192.0.2.10:123", "[2001:db8::5]:40000", "198.51.100.7:5555"],
    );
    assert.deepEqual(rows[0], {
      addr: "192.0.2.10:123",
      last: lfpText(S - 10),
      first: lfpText(S - 100),
      ct: 3,
      mv: 0x23,
      rs: 0,
      dr: 0,
    });
    assert.equal(rows[1]!.mv, (3 << 3) | 3);
    assert.equal(rows[1]!.rs, RES_LIMITED | RES_KOD);
    assert.equal(rows[1]!.dr, 2);
    assert.equal(rows[2]!.mv, (4 << 3) | 1);
  });

  test("an empty list, or none at all: just now=", () => {
    for (const mru of [emptyMru(), null]) {
      const ctx = makeCtx({ mru });
      const r = reassemble(
        exchange(ctx, request(CTL_OP_READ_MRU, `nonce=${nonce(ctx, "::1")}, frags=4`), "::1", NOW).out,
      );
      const parsed = mruRows(r.text);
      assert.deepEqual(parsed.rows, []);
      assert.equal(parsed.now, lfpText(S));
    }
  });

  test("restriction bits follow the last packet's fate", () => {
    assert.equal(restrictionBits(R_SERVED_CLIENT), 0);
    assert.equal(restrictionBits(R_DROP_GAPPED), RES_LIMITED);
    assert.equal(restrictionBits(R_KISS_RATE), RES_LIMITED | RES_KOD);
    assert.equal(restrictionBits(R_DROP_NOQUERY), 0x40);
  });

  test("addresses as ntpq writes them", () => {
    for (const [text, addr] of [
      ["10.1.2.3:123", "10.1.2.3"],
      ["10.1.2.3", "10.1.2.3"],
      ["[2001:db8::1]:123", "2001:db8::1"],
      ["[fe80::1%2]:123", "fe80::1"],
      ["2001:db8::1", "2001:db8::1"],
    ]) {
      const k = parseMruAddress(text!);
      assert.ok(k, text);
      assert.equal(formatAddressKey(k), addr);
    }
    assert.equal(parseMruAddress("10.1.2.300:1"), undefined);
    assert.equal(parseMruAddress("[::1"), undefined);
  });
});

describe("clients known by a prefix ([mru] ipv6-prefix)", () => {
  /** A server's defences (default prefixes: IPv6 /64) that saw `packets` [address, Unix s, port]. */
  function served(packets: [string, number, number][]): Defences {
    const d = Defences.fromConfig(parseConfig("[callgap]\nenabled = false\n"), { rng: createRng(1) });
    const state: ServeState = {
      ...unsynchronisedState(-20, true),
      leap: 0,
      stratum: 2,
      refTimeMs: NOW - 1000,
    };
    for (const [address, t, port] of packets) {
      const buf = new Uint8Array(48);
      buf[0] = (4 << 3) | 3;
      d.decide(buf, 48, key(address), port, t * 1000, state);
    }
    return d;
  }

  const PACKETS: [string, number, number][] = [
    ["192.0.2.10", S - 100, 123],
    ["2001:db8:1:2::a", S - 90, 1001],
    ["2001:db8:1:2::b", S - 80, 1002],
    ["198.51.100.7", S - 70, 5555],
    ["2001:db8:1:2:ffff::c", S - 60, 1003],
    ["2001:db8:1:3::1", S - 50, 2000],
  ];

  test("one row per prefix: addr.N the last address and port, pfx.N the length; whole addresses have no pfx", () => {
    const d = served(PACKETS);
    const ctx = { ...makeCtx({ mru: d.mru }), mruClientKey: d.clientKeyOf.bind(d) };
    const r = reassemble(
      exchange(ctx, request(CTL_OP_READ_MRU, `nonce=${nonce(ctx)}, frags=32`), "127.0.0.1", NOW).out,
    );
    const { rows } = mruRows(r.text);
    assert.deepEqual(
      rows.map((x) => [x.addr, x.ct]),
      [
        ["192.0.2.10:123", 1],
        ["198.51.100.7:5555", 1],
        ["[2001:db8:1:2:ffff::c]:1003", 3],
        ["[2001:db8:1:3::1]:2000", 1],
      ],
    );
    const vars = new Map(r.text.split(/,\s*/).map((kv) => kv.split("=") as [string, string]));
    assert.equal(vars.get("pfx.2"), "64");
    assert.equal(vars.get("pfx.3"), "64");
    assert.equal(vars.has("pfx.0") || vars.has("pfx.1"), false, "no tag where the client is its address");
  });

  test("an address ntpq quotes (the last one seen) finds its prefix's record; so does limit=1 with addr.N", () => {
    const d = served(PACKETS);
    const ctx = { ...makeCtx({ mru: d.mru }), mruClientKey: d.clientKeyOf.bind(d) };
    // The next round after a reply that ended on the /64's row: it quotes that row's address and time.
    const quote = `addr.0=[2001:db8:1:2:ffff::c]:1003, last.0=${lfpText(S - 60)}`;
    let r = reassemble(
      exchange(ctx, request(CTL_OP_READ_MRU, `nonce=${nonce(ctx)}, frags=32, ${quote}`), "127.0.0.1", NOW)
        .out,
    );
    assert.equal(r.error, false);
    assert.deepEqual(
      mruRows(r.text).rows.map((x) => x.addr),
      ["[2001:db8:1:3::1]:2000"],
      "resumes right after the quoted record",
    );
    // Without the server's prefix rule the quoted address names no record: ntpq would start over.
    const bare = makeCtx({ mru: d.mru });
    r = reassemble(
      exchange(bare, request(CTL_OP_READ_MRU, `nonce=${nonce(bare)}, frags=32, ${quote}`), "127.0.0.1", NOW)
        .out,
    );
    assert.equal(r.errorCode, CERR_UNKNOWNVAR);
    // Named clients: any address of the /64 names its record, once.
    r = reassemble(
      exchange(
        ctx,
        request(
          CTL_OP_READ_MRU,
          `nonce=${nonce(ctx)}, limit=1, addr.0=2001:db8:1:2::99, addr.1=[2001:db8:1:2::a]`,
        ),
        "127.0.0.1",
        NOW,
      ).out,
    );
    assert.deepEqual(
      mruRows(r.text).rows.map((x) => [x.addr, x.ct]),
      [["[2001:db8:1:2:ffff::c]:1003", 3]],
    );
  });

  test("the whole retrieval loop over many prefixes and addresses gets every client once", () => {
    const packets: [string, number, number][] = [];
    for (let i = 0; i < 120; i++) {
      packets.push([`2001:db8:${(i % 40).toString(16)}::${(i + 1).toString(16)}`, S - 1000 + i, 3000 + i]);
      packets.push([`10.7.0.${i}`, S - 1000 + i, 123]);
    }
    const d = served(packets);
    const ctx = { ...makeCtx({ mru: d.mru }), mruClientKey: d.clientKeyOf.bind(d) };
    const { rows, rounds } = mrulist(
      ctx,
      "127.0.0.1",
      () => NOW,
      "",
      () => {},
      1,
    );
    assert.ok(rounds >= 10, `${rounds} rounds`);
    assert.equal(rows.length, 160, "120 IPv4 addresses and 40 IPv6 /64s");
    const v6 = rows.filter((r) => r.addr.startsWith("["));
    assert.equal(v6.length, 40);
    for (const r of v6) assert.equal(r.ct, 3);
  });
});

describe("the retrieval loop", () => {
  test("300 clients over several rounds of frags=32: each exactly once, newest last", () => {
    const mru = emptyMru(1000);
    for (let i = 0; i < 300; i++)
      feed(mru, `10.0.${i >> 8}.${i & 255}`, [S - 1000 + i, S - 600 + i], 1000 + i);
    const ctx = makeCtx({ mru });
    const { rows, rounds, replies } = mrulist(ctx, "127.0.0.1", () => NOW);
    assert.ok(rounds >= 3, `${rounds} rounds`);
    assert.equal(rows.length, 300);
    assert.deepEqual(
      rows.map((r) => r.addr),
      Array.from({ length: 300 }, (_, i) => `10.0.${i >> 8}.${i & 255}:${1000 + i}`),
    );
    for (const r of replies) assert.ok(r.datagrams <= 32);
  });

  test("frags=1: a reply is one datagram and the loop still gets everything", () => {
    const mru = emptyMru();
    for (let i = 0; i < 40; i++) feed(mru, `2001:db8::${(i + 1).toString(16)}`, [S - 100 + i]);
    const { rows, rounds, replies } = mrulist(
      makeCtx({ mru }),
      "::1",
      () => NOW,
      "",
      () => {},
      1,
    );
    assert.equal(rows.length, 40);
    assert.ok(rounds >= 10);
    for (const r of replies) assert.equal(r.datagrams, 1);
  });

  test("limit= caps the rows of a reply; frags= above the maximum is capped", () => {
    const mru = emptyMru();
    for (let i = 0; i < 30; i++) feed(mru, `10.9.0.${i}`, [S - 100 + i]);
    const ctx = makeCtx({ mru });
    const r = reassemble(
      exchange(ctx, request(CTL_OP_READ_MRU, `nonce=${nonce(ctx)}, limit=7`), "127.0.0.1", NOW).out,
    );
    assert.equal(mruRows(r.text).rows.length, 7);
    assert.equal(mruRows(r.text).now, undefined);
    const big = exchange(ctx, request(CTL_OP_READ_MRU, `nonce=${nonce(ctx)}, frags=500`), "127.0.0.1", NOW);
    assert.ok(big.out.length <= MRU_MAX_FRAGS);
  });

  test("property: clients touched between rounds are not lost; each shows its latest packet", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 400 }),
        fc.array(fc.array(fc.nat(), { maxLength: 20 }), { maxLength: 8 }),
        fc.integer({ min: 1, max: 8 }),
        (n, touches, frags) => {
          const mru = emptyMru(1000);
          const addr = (i: number) => `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`;
          for (let i = 0; i < n; i++) feed(mru, addr(i), [S - 10_000 + i]);
          let t = S - 5000;
          const { rows } = mrulist(
            makeCtx({ mru }),
            "127.0.0.1",
            () => NOW,
            "",
            (round) => {
              for (const x of touches[round - 1] ?? []) {
                t += 1;
                feed(mru, addr(x % n), [t]);
              }
            },
            frags,
          );
          assert.equal(rows.length, n);
          const want = new Map(mru.snapshot().map((e) => [e.address, lfpText(e.lastSeen)]));
          for (const r of rows) {
            const a = r.addr.replace(/:\d+$/, "");
            // The row is at least as new as the record was when the walk passed it; never newer than now.
            assert.ok(lfpValue(r.last) <= lfpValue(want.get(a)!), a);
          }
          // Whatever was not touched after the walk passed it is shown exactly as it is now.
          const exact = rows.filter((r) => r.last === want.get(r.addr.replace(/:\d+$/, ""))).length;
          assert.ok(exact >= 1);
        },
      ),
      { numRuns: 60 },
    );
  });

  test("a long filtered walk releases the lock in chunks and resumes where it was", () => {
    const mru = emptyMru(6000);
    const match = new Set([10, 2047, 2048, 2049, 4095, 4096, 5999]);
    for (let i = 0; i < 6000; i++)
      feed(mru, `10.1.${i >> 8}.${i & 255}`, match.has(i) ? [S - 9000 + i, S - 8000 + i] : [S - 9000 + i]);
    let locks = 0;
    const lock = mru.lock.bind(mru);
    mru.lock = () => {
      locks++;
      lock();
    };
    const { rows, rounds } = mrulist(makeCtx({ mru }), "127.0.0.1", () => NOW, ", mincount=2");
    assert.equal(rounds, 1);
    assert.deepEqual(
      rows.map((r) => r.addr),
      [...match].map((i) => `10.1.${i >> 8}.${i & 255}:123`),
    );
    assert.ok(locks >= 3, `${locks} lock holds`); // 6000 records in chunks of 2048
  });

  test("a record touched while the lock is released ends the reply early, and nothing is lost", () => {
    const mru = emptyMru(6000);
    for (let i = 0; i < 5000; i++)
      feed(mru, `10.2.${i >> 8}.${i & 255}`, i >= 4990 ? [S - 9000 + i, S - 7000 + i] : [S - 9000 + i]);
    // Another thread touches the record the walk stopped on (the 2047th oldest) while the lock is free.
    const lock = mru.lock.bind(mru);
    let interfered = false;
    let calls = 0;
    mru.lock = () => {
      lock();
      // Call 1 starts the walk; call 2 is the first re-lock after a chunk.
      if (++calls === 2) {
        const r = mru.lookupLocked(key("10.2.7.254")); // i = 2046, the last record visited before it
        assert.ok(r >= 0 && mru.count[r] === 1);
        interfered = true;
        mru.touchLocked(key("10.2.7.254"), S - 10, 3, 4, 123);
      }
    };
    const { rows, rounds } = mrulist(makeCtx({ mru }), "127.0.0.1", () => NOW, ", mincount=2");
    assert.ok(interfered);
    assert.ok(rounds >= 2, `${rounds} rounds`);
    assert.equal(rows.length, 11);
    assert.ok(rows.some((r) => r.addr === "10.2.7.254:123" && r.ct === 2));
  });

  test("every row ntpq quotes was touched meanwhile: CERR_UNKNOWNVAR, ntpq starts over, and gets everything", () => {
    const mru = emptyMru();
    for (let i = 0; i < 4; i++) feed(mru, `10.0.0.${i}`, [S - 100 + i]);
    const { rows, replies } = mrulist(
      makeCtx({ mru }),
      "127.0.0.1",
      () => NOW,
      "",
      (round) => {
        if (round === 1) for (const [i, x] of [1, 0, 2].entries()) feed(mru, `10.0.0.${x}`, [S - 50 + i]);
      },
      1,
    );
    assert.deepEqual(
      replies.map((r) => (r.error ? r.errorCode : 0)),
      [0, CERR_UNKNOWNVAR, 0, 0],
    );
    assert.deepEqual(
      rows.map((r) => [r.addr, r.ct]),
      [
        ["10.0.0.3:123", 1],
        ["10.0.0.1:123", 2],
        ["10.0.0.0:123", 2],
        ["10.0.0.2:123", 2],
      ],
    );
  });

  test("a continuation whose quoted rows all changed is CERR_UNKNOWNVAR (ntpq then starts over)", () => {
    const mru = emptyMru();
    feed(mru, "10.0.0.1", [S - 50]);
    feed(mru, "10.0.0.2", [S - 40]);
    const ctx = makeCtx({ mru });
    const stale = `addr.0=10.0.0.2:123, last.0=${lfpText(S - 41)}, addr.1=10.0.0.9:123, last.1=${lfpText(S - 50)}`;
    const r = reassemble(
      exchange(ctx, request(CTL_OP_READ_MRU, `nonce=${nonce(ctx)}, frags=2, ${stale}`), "127.0.0.1", NOW).out,
    );
    assert.equal(r.errorCode, CERR_UNKNOWNVAR);
    // The second quoted row still matching is enough: resume after it.
    const ok = `addr.0=10.0.0.2:123, last.0=${lfpText(S - 41)}, addr.1=10.0.0.1:123, last.1=${lfpText(S - 50)}`;
    const r2 = reassemble(
      exchange(ctx, request(CTL_OP_READ_MRU, `nonce=${nonce(ctx)}, frags=2, ${ok}`), "127.0.0.1", NOW).out,
    );
    assert.deepEqual(
      mruRows(r2.text).rows.map((x) => x.addr),
      ["10.0.0.2:123"],
    );
  });
});

describe("filters", () => {
  function list(): MruList {
    const mru = emptyMru();
    feed(mru, "10.0.0.1", [S - 500, S - 400, S - 300]); // 3 packets, last 300 s ago
    feed(mru, "10.0.0.2", [S - 100]); // 1 packet, 100 s ago
    feed(mru, "10.0.0.3", [S - 60, S - 50, S - 40, S - 30, S - 20]); // 5, 20 s ago
    feed(mru, "10.0.0.4", [S - 10, S - 5]); // 2, 5 s ago
    setReason(mru, "10.0.0.3", R_DROP_GAPPED, 4);
    setReason(mru, "10.0.0.4", R_KISS_RATE, 1);
    return mru;
  }

  function addresses(params: string): string[] {
    const { rows } = mrulist(makeCtx({ mru: list() }), "127.0.0.1", () => NOW, params);
    return rows.map((r) => r.addr.replace(/:\d+$/, "")).sort();
  }

  test("mincount, mindrop, maxlstint, minlstint", () => {
    assert.deepEqual(addresses(", mincount=3"), ["10.0.0.1", "10.0.0.3"]);
    assert.deepEqual(addresses(", mindrop=2"), ["10.0.0.3"]);
    assert.deepEqual(addresses(", maxlstint=60"), ["10.0.0.3", "10.0.0.4"]);
    assert.deepEqual(addresses(", minlstint=60"), ["10.0.0.1", "10.0.0.2"]);
  });

  test("resany/resall (ntpq's limited and kod), and the bare words", () => {
    assert.deepEqual(addresses(", resany=0x20"), ["10.0.0.3", "10.0.0.4"]);
    assert.deepEqual(addresses(", resany=0x400"), ["10.0.0.4"]);
    assert.deepEqual(addresses(", resall=0x420"), ["10.0.0.4"]);
    assert.deepEqual(addresses(", kod"), ["10.0.0.4"]);
    assert.deepEqual(addresses(", limited"), ["10.0.0.3", "10.0.0.4"]);
  });

  test("recent=N starts at the Nth newest; limit=1 with bare addr.N fetches just those", () => {
    assert.deepEqual(addresses(", recent=2"), ["10.0.0.3", "10.0.0.4"]);
    assert.deepEqual(addresses(", recent=99").length, 4);
    assert.deepEqual(addresses(", limit=1, addr.0=10.0.0.2, addr.1=10.0.0.9, addr.2=10.0.0.1:123"), [
      "10.0.0.1",
      "10.0.0.2",
    ]);
  });

  test("laddr=, minscore= and malformed values are CERR_BADFMT", () => {
    const ctx = makeCtx({ mru: list() });
    for (const p of [
      "laddr=127.0.0.1",
      "minscore=1",
      "mincount=x",
      "frags=-1",
      "maxlstint=",
      "addr.16=10.0.0.1",
      "addr.0=nope",
      "kod=1",
    ]) {
      const r = reassemble(
        exchange(ctx, request(CTL_OP_READ_MRU, `nonce=${nonce(ctx)}, ${p}`), "127.0.0.1", NOW).out,
      );
      assert.equal(r.errorCode, CERR_BADFMT, p);
    }
  });
});
