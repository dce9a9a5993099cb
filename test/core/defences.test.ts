// The whole decision pipeline (src/core/defences.ts): order, one reason per packet, the call-gap and KoD
// as clients see them, the access list's flags, the blocklist, shared state across threads, reloads.

import assert from "node:assert/strict";
import { PerformanceObserver } from "node:perf_hooks";
import { describe, it } from "node:test";
import fc from "fast-check";
import { type Config, parseConfig } from "../../src/config/index.ts";
import { Defences } from "../../src/core/defences.ts";
import {
  CATEGORY_DENIED,
  CATEGORY_RATE_LIMITED,
  R_DROP_ACL_IGNORE,
  R_DROP_ACL_NOSERVE,
  R_DROP_BLOCKLISTED,
  R_DROP_GAPPED,
  R_DROP_KOD_LIMITED,
  R_DROP_KOD_LIMITED_DENIED,
  R_DROP_MODE_BROADCAST,
  R_DROP_MODE_PASSIVE,
  R_DROP_MODE_SERVER,
  R_DROP_NAME_DENY,
  R_DROP_OVERLOAD,
  R_KISS_DENY,
  R_KISS_RATE,
  R_KISS_RSTR,
  R_MALFORMED_TOO_SHORT,
  R_SERVED_CLIENT,
  R_SERVED_CONTROL,
  R_SERVED_LEAK,
  R_SERVED_NTS,
  R_SERVED_SYMMETRIC,
  REASON_CATEGORY,
  REASON_COUNT,
  REASON_NAMES,
  REASON_REPLY,
  REASON_RESPONSE,
  REPLY_AS_IS,
  REPLY_NONE,
  REPLY_STAMPED,
  RESPONSE_DROPPED,
  RESPONSE_KISSED,
  RESPONSE_SERVED,
} from "../../src/core/reasons.ts";
import type { ServeState } from "../../src/core/serve-state.ts";
import { formatAddressKey, formatPrefixKey } from "../../src/defence/address-key.ts";
import { NAME_ALLOW, NAME_DENY } from "../../src/defence/names-rules.ts";
import { createRng } from "../../src/defence/random.ts";
import { defences, key, request, syncedState } from "../helpers/core.ts";

const T0 = Date.UTC(2026, 10, 29, 12, 0, 0);

function state(): ServeState {
  return syncedState(T0);
}

function config(toml = ""): Config {
  return parseConfig(toml);
}

/** Sends one request from `address` at `t` seconds after T0; returns the reason and the buffer. */
function send(d: Defences, address: string, t: number, mode = 3, port = 40000) {
  const buf = request(mode, (t * 1000) >>> 0);
  const reason = d.decide(buf, buf.length, key(address), port, T0 + t * 1000, state());
  return { reason, buf };
}

/** The MRU record of the client at `address` (its prefix's record), or -1. */
function recordOf(d: Defences, address: string): number {
  const client = new Uint32Array(4);
  d.clientKeyOf(key(address), client);
  return d.mru.lookup(client);
}

function count(reasons: number[], r: number): number {
  return reasons.filter((x) => x === r).length;
}

describe("call-gap and KoD as clients see them (paper §11, §12)", () => {
  it("an iburst start (8 packets 2 s apart) and then 64 s polling is never gapped or kissed", () => {
    const d = defences();
    const reasons: number[] = [];
    for (let i = 0; i < 8; i++) reasons.push(send(d, "192.0.2.10", i * 2).reason);
    for (let i = 1; i <= 50; i++) reasons.push(send(d, "192.0.2.10", 14 + 64 * i).reason);
    assert.deepEqual(new Set(reasons), new Set([R_SERVED_CLIENT]));
  });

  it("a client polling every second gets RATE KoDs at most one per average interval, the rest dropped", () => {
    const d = defences("[callgap]\nleak = 0\n");
    const reasons: number[] = [];
    for (let t = 0; t < 120; t++) reasons.push(send(d, "192.0.2.20", t).reason);
    // The fast allowance answers the first 3 (as it would a measurement burst); the start-up allowance
    // exempts Rule 2 only, so nothing more at 1 s.
    assert.deepEqual(reasons.slice(0, 3), new Array(3).fill(R_SERVED_CLIENT));
    const kods = count(reasons, R_KISS_RATE);
    // 117 gapped requests over 117 s, one KoD per 5 s at most: about 23.
    assert.ok(kods >= 21 && kods <= 24, `kods ${kods}`);
    assert.equal(count(reasons, R_DROP_KOD_LIMITED), 117 - kods - count(reasons, R_SERVED_CLIENT) + 3);
    assert.equal(count(reasons, R_SERVED_CLIENT), 3);
    // Never two KoDs within 5 s.
    const times = reasons.flatMap((r, t) => (r === R_KISS_RATE ? [t] : []));
    for (let i = 1; i < times.length; i++) assert.ok(times[i]! - times[i - 1]! >= 5);
    // The MRU record says what happened.
    const r = d.mru.lookup(key("192.0.2.20"));
    const e = d.mru.read(r)!;
    assert.equal(e.count, 120);
    assert.equal(e.kods, kods);
    assert.equal(e.gapped, 117);
  });

  it("8 requests 0.5 s apart (leak 0): 3 answered, a RATE KoD for the 4th, then silence within the KoD limit", () => {
    const d = defences("[callgap]\nleak = 0\n");
    const reasons: number[] = [];
    for (let i = 0; i < 8; i++) reasons.push(send(d, "192.0.2.24", i * 0.5).reason);
    assert.deepEqual(reasons, [
      R_SERVED_CLIENT,
      R_SERVED_CLIENT,
      R_SERVED_CLIENT,
      R_KISS_RATE,
      R_DROP_KOD_LIMITED,
      R_DROP_KOD_LIMITED,
      R_DROP_KOD_LIMITED,
      R_DROP_KOD_LIMITED,
    ]);
    // Kept up: a KoD every 5 s at most (the 4th, 14th, 24th, ... request), silence between.
    for (let i = 8; i < 40; i++) reasons.push(send(d, "192.0.2.24", i * 0.5).reason);
    assert.equal(count(reasons, R_SERVED_CLIENT), 3);
    assert.deepEqual(
      reasons.flatMap((r, i) => (r === R_KISS_RATE ? [i] : [])),
      [3, 13, 23, 33],
    );
    assert.equal(count(reasons, R_DROP_KOD_LIMITED), 40 - 3 - 4);
    const e = d.mru.read(d.mru.lookup(key("192.0.2.24")))!;
    assert.equal(e.gapped, 37);
    assert.equal(e.kods, 4);
  });

  it("with the defaults, a measurement burst of 3 back to back is answered whole, new or after 60 s of quiet", () => {
    const d = defences();
    const burst = (address: string, t: number) =>
      [0, 0.004, 0.009].map((dt) => send(d, address, t + dt).reason);
    assert.deepEqual(burst("192.0.2.25", 0), new Array(3).fill(R_SERVED_CLIENT), "a new address");
    // A RIPE Atlas probe measuring every 240 s, and one after a minute of quiet.
    for (let t = 240; t <= 2400; t += 240) {
      assert.deepEqual(burst("192.0.2.25", t), new Array(3).fill(R_SERVED_CLIENT), `at ${t} s`);
    }
    // 60 s (and a millisecond, clear of rounding) after the last request of the previous burst.
    assert.deepEqual(burst("192.0.2.25", 2460.01), new Array(3).fill(R_SERVED_CLIENT), "after 60 s");
  });

  it("the KoD has RFC 5905's form: LI 3, stratum 0, RATE, the client's transmit timestamp, no time of ours", () => {
    const d = defences("[callgap]\nleak = 0\n");
    let kod: Uint8Array | undefined;
    let sent: Uint8Array | undefined;
    for (let t = 0; t < 20 && !kod; t += 0.5) {
      const buf = request(3, 0xabcdef00 + t * 2);
      sent = buf.slice();
      const r = d.decide(buf, 48, key("192.0.2.21"), 123, T0 + t * 1000, state());
      if (r === R_KISS_RATE) kod = buf;
    }
    assert.ok(kod && sent);
    assert.equal(kod[0]! >> 6, 3, "leap 3");
    assert.equal((kod[0]! >> 3) & 7, 4, "version echoed");
    assert.equal(kod[0]! & 7, 4, "mode 4");
    assert.equal(kod[1], 0, "stratum 0");
    assert.equal(Buffer.from(kod.subarray(12, 16)).toString("latin1"), "RATE");
    assert.deepEqual(kod.subarray(24, 32), sent.subarray(40, 48), "origin = client's transmit");
    assert.deepEqual(kod.subarray(32, 40), sent.subarray(40, 48), "receive carries no time of ours");
    assert.deepEqual(kod.subarray(40, 48), sent.subarray(40, 48), "transmit carries no time of ours");
    assert.deepEqual(kod.subarray(16, 24), new Uint8Array(8), "reference zero");
    assert.deepEqual(kod.subarray(4, 12), new Uint8Array(8), "root delay and dispersion zero");
  });

  it("without kod (flag or switch) gapped requests are dropped silently", () => {
    for (const toml of [
      "[kod]\nenabled = false\n[callgap]\nleak = 0\n",
      '[acl]\ndefault = ["limited"]\n[callgap]\nleak = 0\n',
    ]) {
      const d = defences(toml);
      const reasons: number[] = [];
      for (let t = 0; t < 30; t++) reasons.push(send(d, "192.0.2.22", t).reason);
      assert.equal(count(reasons, R_KISS_RATE), 0, toml);
      assert.equal(count(reasons, R_DROP_GAPPED), 27, toml);
    }
  });

  it("without limited, or with the call-gap off, nobody is gapped", () => {
    for (const toml of ['[acl]\ndefault = ["kod"]\n', "[callgap]\nenabled = false\n"]) {
      const d = defences(toml);
      for (let t = 0; t < 30; t++) assert.equal(send(d, "192.0.2.23", t * 0.1).reason, R_SERVED_CLIENT, toml);
    }
  });

  it("the server-wide KoD rate caps KoDs to many clients", () => {
    const d = defences("[callgap]\nleak = 0\n[kod]\nmax-rate = 5\n");
    const reasons: number[] = [];
    // 100 clients, each past its burst, all within the same second.
    for (let c = 0; c < 100; c++) for (let i = 0; i < 9; i++) send(d, `198.51.100.${c}`, i * 0.01);
    for (let c = 0; c < 100; c++) reasons.push(send(d, `198.51.100.${c}`, 0.5).reason);
    assert.ok(count(reasons, R_KISS_RATE) <= 6, `${count(reasons, R_KISS_RATE)} KoDs`);
    assert.ok(count(reasons, R_DROP_KOD_LIMITED) >= 94);
  });

  it("leak: a flood forged with a victim's address still lets about 1 in 2^leak through", () => {
    const d = defences("[callgap]\nleak = 2\n[kod]\nenabled = false\n");
    const reasons: number[] = [];
    for (let i = 0; i < 4000; i++) reasons.push(send(d, "203.0.113.5", i * 0.01).reason);
    const leaked = count(reasons, R_SERVED_LEAK);
    const gapped = count(reasons, R_DROP_GAPPED);
    assert.equal(leaked + gapped + count(reasons, R_SERVED_CLIENT), 4000);
    const share = leaked / (leaked + gapped);
    assert.ok(share > 0.2 && share < 0.3, `leak share ${share}`);
  });

  it("the token-bucket form gaps by tokens", () => {
    const d = defences(
      '[callgap]\nmode = "token-bucket"\ninterval = 4\nburst = 2\nleak = 0\n[kod]\nenabled = false\n',
    );
    const reasons = [0, 1, 2, 3, 4, 8, 12].map((t) => send(d, "192.0.2.30", t).reason);
    assert.deepEqual(reasons.slice(0, 2), [R_SERVED_CLIENT, R_SERVED_CLIENT]);
    assert.equal(reasons[2], R_DROP_GAPPED);
    assert.equal(reasons.at(-1), R_SERVED_CLIENT);
  });
});

describe("modes and malformed packets", () => {
  it("modes 2, 4 and 5 are never answered or kissed, however fast they come", () => {
    const d = defences("[callgap]\nleak = 0\n");
    for (const [mode, want] of [
      [2, R_DROP_MODE_PASSIVE],
      [4, R_DROP_MODE_SERVER],
      [5, R_DROP_MODE_BROADCAST],
    ] as const) {
      for (let i = 0; i < 50; i++) assert.equal(send(d, "192.0.2.40", i * 0.1, mode).reason, want);
    }
    // They are recorded, though: monitoring sees who sends them.
    assert.equal(d.mru.read(d.mru.lookup(key("192.0.2.40")))!.count, 150);
  });

  it("a symmetric-active request is answered in mode 2, and gapped like any other", () => {
    const d = defences("[callgap]\nleak = 0\n");
    const first = send(d, "192.0.2.41", 0, 1);
    assert.equal(first.reason, R_SERVED_SYMMETRIC);
    assert.equal(first.buf[0]! & 7, 2);
    const reasons = Array.from({ length: 20 }, (_, i) => send(d, "192.0.2.41", 1 + i * 0.5, 1).reason);
    assert.ok(reasons.includes(R_KISS_RATE));
  });

  it("a malformed packet is dropped and creates no MRU record", () => {
    const d = defences();
    const buf = request(3, 1, 4, 47);
    assert.equal(d.decide(buf, 47, key("192.0.2.42"), 1, T0, state()), R_MALFORMED_TOO_SHORT);
    assert.equal(d.mru.lookup(key("192.0.2.42")), -1);
  });
});

describe("access list (paper §10)", () => {
  const ACL = `
[callgap]
leak = 0
[[acl.rule]]
address = "10.0.0.0/8"
flags = ["ignore"]
[[acl.rule]]
address = "10.1.0.0/16"
flags = []
[[acl.rule]]
address = "172.16.0.0/12"
flags = ["noserve"]
[[acl.rule]]
address = "172.16.5.0/24"
flags = ["noserve", "kod"]
[[acl.rule]]
address = "2001:db8::/32"
flags = ["limited", "kod", "nomrulist"]
`;

  it("ignore drops without a record; the longest prefix wins", () => {
    const d = defences(ACL);
    assert.equal(send(d, "10.9.9.9", 0).reason, R_DROP_ACL_IGNORE);
    assert.equal(d.mru.lookup(key("10.9.9.9")), -1);
    // 10.1/16 has no flags: served and never gapped.
    for (let t = 0; t < 20; t++) assert.equal(send(d, "10.1.2.3", t * 0.1).reason, R_SERVED_CLIENT);
  });

  it("noserve drops; with kod it sends RSTR; IPv4-mapped clients match IPv4 rules", () => {
    const d = defences(ACL);
    assert.equal(send(d, "172.16.9.9", 0).reason, R_DROP_ACL_NOSERVE);
    const r = send(d, "::ffff:172.16.5.5", 0);
    assert.equal(r.reason, R_KISS_RSTR);
    assert.equal(Buffer.from(r.buf.subarray(12, 16)).toString("latin1"), "RSTR");
    assert.equal(r.buf[1], 0);
    // RSTR is limited like any KoD: not again within the average interval. The request is refused for who
    // sent it, so it counts as denied, not as rate-limited.
    const again = send(d, "172.16.5.5", 1).reason;
    assert.equal(again, R_DROP_KOD_LIMITED_DENIED);
    assert.equal(REASON_CATEGORY[again], CATEGORY_DENIED);
    assert.equal(REASON_CATEGORY[R_DROP_KOD_LIMITED], CATEGORY_RATE_LIMITED);
  });

  it("nomrulist: no record, so nothing to gap", () => {
    const d = defences(ACL);
    for (let t = 0; t < 20; t++) assert.equal(send(d, "2001:db8::1", t * 0.1).reason, R_SERVED_CLIENT);
    assert.equal(recordOf(d, "2001:db8::1"), -1);
    assert.equal(d.mru.size, 0);
  });

  it("a reload replaces the rules at once", () => {
    const d = defences(ACL);
    assert.equal(send(d, "10.9.9.9", 0).reason, R_DROP_ACL_IGNORE);
    d.reconfigure(config("[callgap]\nleak = 0\n"));
    assert.equal(send(d, "10.9.9.9", 1).reason, R_SERVED_CLIENT);
  });
});

describe("reverse-DNS name rules (paper §10)", () => {
  const NAMES = '[[names.rule]]\nsuffix = ".mil"\naction = "allow"\n[names]\ndefault = "deny"\n';

  it("a denied address's request gets a DENY KoD with kod, nothing without; no MRU record either way", () => {
    for (const [toml, want] of [
      [NAMES, R_KISS_DENY],
      [`${NAMES}[acl]\ndefault = ["limited"]\n`, R_DROP_NAME_DENY],
    ] as const) {
      const d = defences(toml);
      const k = key("198.51.100.9");
      d.names.check(k, T0); // first sight: a lookup is queued, the address pending
      assert.ok(d.names.settle(k, NAME_DENY, 60_000, T0));
      const r = send(d, "198.51.100.9", 1);
      assert.equal(r.reason, want, toml);
      if (want === R_KISS_DENY) {
        assert.equal(Buffer.from(r.buf.subarray(12, 16)).toString("latin1"), "DENY");
        assert.equal(r.buf[1], 0);
        assert.equal(r.buf[0]! >> 6, 3);
      }
      assert.equal(d.mru.lookup(k), -1);
      // A mode 4 packet from it is never kissed.
      assert.equal(send(d, "198.51.100.9", 2, 4).reason, R_DROP_NAME_DENY);
    }
  });

  it("a DENY KoD the limiter withholds counts as denied (drop_kod_limited_denied), not rate-limited", () => {
    const d = defences(`${NAMES}[kod]\nmax-rate = 1\n`);
    for (const a of ["198.51.100.11", "198.51.100.12"]) {
      d.names.check(key(a), T0);
      assert.ok(d.names.settle(key(a), NAME_DENY, 60_000, T0));
    }
    assert.equal(send(d, "198.51.100.11", 1).reason, R_KISS_DENY);
    const second = send(d, "198.51.100.12", 1.1).reason;
    assert.equal(second, R_DROP_KOD_LIMITED_DENIED);
    assert.equal(REASON_CATEGORY[second], CATEGORY_DENIED);
  });

  it("an allowed address is served", () => {
    const d = defences(NAMES);
    d.names.check(key("198.51.100.10"), T0);
    assert.ok(d.names.settle(key("198.51.100.10"), NAME_ALLOW, 60_000, T0));
    assert.equal(send(d, "198.51.100.10", 1).reason, R_SERVED_CLIENT);
  });
});

describe("blocklist (paper §11: shoot the elephants)", () => {
  it("after `after-kods` KoDs the address is blocked, queued for the store, and dropped from then on", () => {
    const d = defences("[callgap]\nleak = 0\n[blocklist]\nenabled = true\nafter-kods = 3\n");
    const reasons: number[] = [];
    for (let t = 0; t < 60; t++) reasons.push(send(d, "192.0.2.50", t).reason);
    assert.equal(count(reasons, R_KISS_RATE), 3);
    const third = reasons.lastIndexOf(R_KISS_RATE);
    assert.ok(reasons.slice(third + 1).every((r) => r === R_DROP_BLOCKLISTED));
    const drained: string[] = [];
    d.drainNewBlocks((k, exp, kods) => drained.push(`${formatAddressKey(k)} ${exp} ${kods}`));
    assert.deepEqual(drained, ["192.0.2.50 Infinity 3"]);
    d.drainNewBlocks(() => assert.fail("drained twice"));
    // Other clients are not affected.
    assert.equal(send(d, "192.0.2.51", 61).reason, R_SERVED_CLIENT);
  });

  it("a block with a duration expires", () => {
    const d = defences("[callgap]\nleak = 0\n[blocklist]\nenabled = true\nafter-kods = 1\nduration = 100\n");
    const reasons: number[] = [];
    for (let t = 0; t < 30; t++) reasons.push(send(d, "192.0.2.52", t).reason);
    const kod = reasons.indexOf(R_KISS_RATE);
    assert.equal(reasons[kod + 1], R_DROP_BLOCKLISTED);
    assert.notEqual(send(d, "192.0.2.52", kod + 101).reason, R_DROP_BLOCKLISTED);
  });

  it("disabled, nobody is blocked", () => {
    const d = defences("[callgap]\nleak = 0\n[blocklist]\nafter-kods = 1\n");
    const reasons: number[] = [];
    for (let t = 0; t < 60; t++) reasons.push(send(d, "192.0.2.53", t).reason);
    assert.equal(count(reasons, R_DROP_BLOCKLISTED), 0);
  });
});

describe("a client is its prefix where addresses are cheap ([mru] ipv4-prefix, ipv6-prefix)", () => {
  /** A random address of the /64 `prefix` ("2001:db8:1:2"), as a script rotating its source picks one. */
  function inside(prefix: string, rng: () => number): string {
    const g = () => Math.floor(rng() * 0x10000).toString(16);
    return `${prefix}:${g()}:${g()}:${g()}:${g()}`;
  }
  function answered(reasons: number[]): number {
    return reasons.filter((r) => REASON_RESPONSE[r] === RESPONSE_SERVED).length;
  }
  const LEAK0 = "[callgap]\nleak = 0\n";

  it("40 requests 0.5 s apart, each from a new address of one /64, are gapped and kissed as one client", () => {
    const d = defences(LEAK0);
    const rng = createRng(5);
    const draw = () => rng() / 2 ** 30;
    const sources = new Set<string>();
    const reasons: number[] = [];
    let last = "";
    for (let i = 0; i < 40; i++) {
      last = inside("2001:db8:1:2", draw);
      sources.add(last);
      reasons.push(send(d, last, i * 0.5, 3, 40000 + i).reason);
    }
    assert.equal(sources.size, 40, "every request from a new address");
    // At most the fast allowance is answered (callgap.fast, 3: Rule 1 holds past it); the rest are kissed or
    // dropped, as for one address sending 40 requests 0.5 s apart.
    assert.equal(config(LEAK0).callgap.fast, 3);
    assert.ok(answered(reasons) <= 3, `${answered(reasons)} answered`);
    assert.deepEqual(reasons.slice(0, answered(reasons)), new Array(answered(reasons)).fill(R_SERVED_CLIENT));
    assert.ok(count(reasons, R_KISS_RATE) >= 2, "kissed");
    assert.equal(count(reasons, R_KISS_RATE) + count(reasons, R_DROP_KOD_LIMITED), 40 - answered(reasons));
    // One record: the /64, its last address, all 40 packets.
    assert.equal(d.mru.size, 1);
    const e = d.mru.read(recordOf(d, last))!;
    assert.equal(e.address, "2001:db8:1:2::/64");
    assert.equal(e.lastAddress, formatAddressKey(key(last)));
    assert.equal(e.prefixLength, 64);
    assert.equal(e.count, 40);
    assert.equal(e.port, 40039);
    assert.equal(e.gapped, 40 - answered(reasons));
  });

  it("two /64s are two clients; with ipv6-prefix = 128 every address is one", () => {
    const d = defences(LEAK0);
    const rng = createRng(6);
    const draw = () => rng() / 2 ** 30;
    const a: number[] = [];
    const b: number[] = [];
    for (let i = 0; i < 40; i++) {
      a.push(send(d, inside("2001:db8:1:2", draw), i * 0.5).reason);
      b.push(send(d, inside("2001:db8:1:3", draw), i * 0.5 + 0.25).reason);
    }
    for (const reasons of [a, b]) {
      assert.ok(answered(reasons) >= 1 && answered(reasons) <= 3, `${answered(reasons)} answered`);
      assert.ok(count(reasons, R_KISS_RATE) >= 2);
    }
    assert.deepEqual(
      d.mru
        .snapshot()
        .map((e) => [e.address, e.count])
        .sort(),
      [
        ["2001:db8:1:2::/64", 40],
        ["2001:db8:1:3::/64", 40],
      ],
    );
    const each = defences(`${LEAK0}[mru]\nipv6-prefix = 128\n`);
    const reasons: number[] = [];
    for (let i = 0; i < 40; i++) reasons.push(send(each, inside("2001:db8:1:2", draw), i * 0.5).reason);
    assert.equal(answered(reasons), 40, "forty new clients, each answered");
    assert.equal(each.mru.size, 40);
  });

  it("configurable: IPv6 /56 joins the /64s inside it; IPv4 /28 joins 16 addresses; IPv4-mapped takes the IPv4 length", () => {
    const d = defences(`${LEAK0}[mru]\nipv6-prefix = 56\nipv4-prefix = 28\n`);
    for (let i = 0; i < 16; i++) send(d, `2001:db8:1:2${(i * 16).toString(16).padStart(2, "0")}::1`, i);
    for (let i = 0; i < 16; i++) send(d, `203.0.113.${192 + i}`, i);
    send(d, "::ffff:203.0.113.200", 20);
    send(d, "203.0.113.208", 21);
    assert.deepEqual(
      d.mru
        .snapshot()
        .map((e) => [e.address, e.count, e.prefixLength])
        .sort(),
      [
        ["2001:db8:1:200::/56", 16, 56],
        ["203.0.113.192/28", 17, 28],
        ["203.0.113.208/28", 1, 28],
      ],
    );
    // IPv4 keeps its own length whatever the IPv6 one.
    const v4 = defences(`${LEAK0}[mru]\nipv6-prefix = 16\n`);
    send(v4, "::ffff:192.0.2.1", 0);
    send(v4, "192.0.2.2", 0);
    assert.deepEqual(
      v4.mru
        .snapshot()
        .map((e) => e.address)
        .sort(),
      ["192.0.2.1", "192.0.2.2"],
    );
  });

  it("the IPv4 default is the address: clients of one /24 stay apart", () => {
    const d = defences(LEAK0);
    const reasons: number[] = [];
    for (let i = 0; i < 40; i++) reasons.push(send(d, `198.51.100.${i + 1}`, i * 0.5).reason);
    assert.equal(answered(reasons), 40);
    assert.equal(d.mru.size, 40);
    const e = d.mru.read(recordOf(d, "198.51.100.7"))!;
    assert.deepEqual([e.address, e.lastAddress, e.prefixLength], ["198.51.100.7", "198.51.100.7", 32]);
  });

  it("the automatic blocklist entry is the prefix: every address of the /64 is dropped, the next /64 is not", () => {
    const d = defences(`${LEAK0}[blocklist]\nenabled = true\nafter-kods = 2\n`);
    const rng = createRng(7);
    const draw = () => rng() / 2 ** 30;
    const reasons: number[] = [];
    for (let t = 0; t < 60; t++) reasons.push(send(d, inside("2001:db8:1:2", draw), t).reason);
    assert.equal(count(reasons, R_KISS_RATE), 2);
    const second = reasons.lastIndexOf(R_KISS_RATE);
    assert.ok(reasons.slice(second + 1).every((r) => r === R_DROP_BLOCKLISTED));
    const drained: string[] = [];
    d.drainNewBlocks((k, exp, kods, bits) => drained.push(`${formatPrefixKey(k, bits)} ${exp} ${kods}`));
    assert.deepEqual(drained, ["2001:db8:1:2::/64 Infinity 2"]);
    assert.equal(send(d, "2001:db8:1:2::1", 61).reason, R_DROP_BLOCKLISTED);
    assert.equal(send(d, "2001:db8:1:3::1", 61).reason, R_SERVED_CLIENT);
    // An IPv4 client is still blocked by its address alone.
    const v4 = defences(`${LEAK0}[blocklist]\nenabled = true\nafter-kods = 1\n`);
    for (let t = 0; t < 30; t++) send(v4, "192.0.2.77", t);
    const v4drained: string[] = [];
    v4.drainNewBlocks((k, _e, _n, bits) => v4drained.push(formatPrefixKey(k, bits)));
    assert.deepEqual(v4drained, ["192.0.2.77"]);
    assert.equal(send(v4, "192.0.2.78", 31).reason, R_SERVED_CLIENT);
  });

  it("access lists and the blocklist still look at the whole address", () => {
    const d = defences(
      `${LEAK0}[[acl.rule]]\naddress = "2001:db8:1:2::bad"\nflags = ["ignore"]\n[blocklist]\nenabled = true\n`,
    );
    assert.equal(send(d, "2001:db8:1:2::bad", 0).reason, R_DROP_ACL_IGNORE);
    assert.equal(send(d, "2001:db8:1:2::600d", 0).reason, R_SERVED_CLIENT);
    d.blocklist.add(key("2001:db8:1:2::dead"));
    assert.equal(send(d, "2001:db8:1:2::dead", 100).reason, R_DROP_BLOCKLISTED);
    assert.equal(send(d, "2001:db8:1:2::beef", 100).reason, R_SERVED_CLIENT);
  });

  it("a reload changes the prefix lengths at once: new packets make records under the new ones", () => {
    const d = defences(LEAK0);
    send(d, "2001:db8:1:2::1", 0);
    send(d, "2001:db8:1:2::2", 10);
    d.reconfigure(config(`${LEAK0}[mru]\nipv6-prefix = 128\n`));
    send(d, "2001:db8:1:2::1", 20);
    send(d, "2001:db8:1:2::2", 30);
    assert.deepEqual(
      d.mru
        .snapshot()
        .map((e) => [e.address, e.count])
        .sort(),
      [
        ["2001:db8:1:2::/64", 2],
        ["2001:db8:1:2::1", 1],
        ["2001:db8:1:2::2", 1],
      ],
    );
    const out = new Uint32Array(4);
    assert.equal(d.clientKeyOf(key("2001:db8:1:2::9"), out), 128);
    d.reconfigure(config(`${LEAK0}[mru]\nipv6-prefix = 48\nipv4-prefix = 24\n`));
    assert.equal(d.clientKeyOf(key("2001:db8:1:2::9"), out), 48);
    assert.equal(formatAddressKey(out), "2001:db8:1::");
    assert.equal(d.clientKeyOf(key("192.0.2.9"), out), 96 + 24);
    assert.equal(formatAddressKey(out), "192.0.2.0");
  });
});

describe("the per-packet path allocates nothing", () => {
  /** Garbage collections while `fn` runs; a path allocating even a boxed double a packet shows many. */
  async function gcsDuring(fn: () => void): Promise<number> {
    const times: number[] = [];
    const obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) times.push(e.startTime);
    });
    obs.observe({ entryTypes: ["gc"] });
    const t0 = performance.now();
    fn();
    const t1 = performance.now();
    await new Promise((r) => setTimeout(r, 20));
    obs.disconnect();
    return times.filter((t) => t >= t0 && t <= t1).length;
  }

  it("IPv6 sources masked to their /64 and IPv4 ones, with a blocklist holding a prefix and an address", async () => {
    const d = defences("[blocklist]\nenabled = true\n");
    const k = new Uint32Array([0x20010db8, 7, 0, 0]);
    d.blocklist.add(k, null, 64);
    d.blocklist.add(key("10.0.0.7"));
    const s = state();
    const buf = new Uint8Array(48);
    const src = new Uint32Array(4);
    const loop = (from: number, n: number) => {
      for (let p = from; p < from + n; p++) {
        buf.fill(0);
        buf[0] = 0x23;
        if (p % 2 === 0) {
          src[0] = 0x20010db8;
          src[1] = (p >> 1) % 5000;
          src[2] = p ^ 0x5a5a5a5a;
          src[3] = p;
        } else {
          src[0] = 0;
          src[1] = 0;
          src[2] = 0xffff;
          src[3] = 0x0a000000 + ((p >> 1) % 5000);
        }
        d.time[0] = T0 + p * 10;
        d.decideNow(buf, 48, src, 123, s);
      }
    };
    loop(0, 300_000); // let V8 optimise it first
    const gcs = await gcsDuring(() => loop(300_000, 2_000_000));
    assert.ok(gcs <= 2, `${gcs} collections during 2,000,000 packets`);
    assert.equal(d.mru.size, 10_000 - 2, "5,000 /64s and 5,000 addresses, one of each blocked");
  });
});

describe("one client, one record, across threads", () => {
  it("two views of the shared buffers gap a client whose packets alternate between them", () => {
    const a = defences("[callgap]\nleak = 0\n");
    const b = Defences.fromConfig(config("[callgap]\nleak = 0\n"), { shared: a.shared(), rng: createRng(2) });
    const reasons: number[] = [];
    for (let t = 0; t < 40; t++) reasons.push(send(t % 2 ? a : b, "192.0.2.60", t).reason);
    assert.equal(count(reasons, R_SERVED_CLIENT), 3);
    assert.equal(a.mru.read(a.mru.lookup(key("192.0.2.60")))!.count, 40);
  });
});

describe("every packet: exactly one reason, and never a reply longer than the request", () => {
  it("holds for random bytes from random addresses at random times", () => {
    const d = defences("[blocklist]\nenabled = true\nafter-kods = 2\n[callgap]\nleak = 1\n");
    const seen = new Set<number>();
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 120, size: "max" }),
        fc.integer({ min: 0, max: 15 }),
        fc.double({ min: 0, max: 1000, noNaN: true }),
        fc.boolean(),
        (bytes, host, t, valid) => {
          const buf = valid ? request(3, host) : bytes.slice();
          const len = buf.length;
          const before = buf.slice();
          const r = d.decide(buf, len, key(`192.0.2.${host}`), 1, T0 + t * 1000, state());
          assert.ok(Number.isInteger(r) && r >= 0 && r < REASON_COUNT, REASON_NAMES[r]);
          seen.add(REASON_RESPONSE[r]!);
          if (REASON_RESPONSE[r] === RESPONSE_DROPPED) assert.deepEqual(buf, before, "dropped: untouched");
          assert.equal(buf.length, len);
        },
      ),
      { numRuns: 3000, seed: 7 },
    );
    assert.ok(seen.has(RESPONSE_SERVED) && seen.has(RESPONSE_DROPPED));
  });

  it("names a response for every reason", () => {
    for (let r = 0; r < REASON_COUNT; r++) {
      assert.ok([RESPONSE_SERVED, RESPONSE_KISSED, RESPONSE_DROPPED].includes(REASON_RESPONSE[r]!));
      assert.equal(typeof REASON_NAMES[r], "string");
    }
    assert.equal(REASON_RESPONSE[R_KISS_RATE], RESPONSE_KISSED);
    assert.equal(REASON_RESPONSE[R_KISS_RSTR], RESPONSE_KISSED);
    assert.equal(REASON_RESPONSE[R_SERVED_LEAK], RESPONSE_SERVED);
    // What goes back in the request's bytes: a stamped reply, a KoD as written, or nothing (a control reply
    // leaves in datagrams of its own).
    for (let r = 0; r < REASON_COUNT; r++) {
      const want =
        r === R_SERVED_CONTROL
          ? REPLY_NONE
          : r === R_SERVED_NTS
            ? REPLY_AS_IS // stamped before it was sealed: sent as written
            : REASON_RESPONSE[r] === RESPONSE_SERVED
              ? REPLY_STAMPED
              : REASON_RESPONSE[r] === RESPONSE_KISSED
                ? REPLY_AS_IS
                : REPLY_NONE;
      assert.equal(REASON_REPLY[r], want, REASON_NAMES[r]);
    }
  });
});

describe("overload control in the pipeline (paper §12: past the redline, mice first)", () => {
  /** 50 mice polling every 8 s (mouse-interval 4 s here), then a flood of newcomers at 2,000/s for 20 s. */
  function run(toml: string) {
    const d = defences(
      `[overload]\nredline = 500\nmouse-interval = 4\nperiod-min = 2\nperiod-max = 4\n${toml}`,
    );
    const mice = Array.from({ length: 50 }, (_, i) => `10.1.0.${i + 1}`);
    for (let t = 0; t < 24; t += 8) for (const [i, m] of mice.entries()) send(d, m, t + i * 0.16);
    const mouse: number[] = [];
    const flood: number[] = [];
    for (let n = 0; n < 40_000; n++) {
      const t = 24 + n * 0.0005;
      flood.push(send(d, `${11 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}.1`, t).reason);
      const slot = n % 16_000; // every 8 s, the 50 mice in turn
      if (slot % 320 === 0) mouse.push(send(d, mice[slot / 320]!, t).reason);
    }
    return { d, mouse, flood };
  }

  it("past the redline every mouse is answered and newcomers are withheld, dropped without a KoD", () => {
    const { d, mouse, flood } = run("");
    assert.ok(mouse.length >= 125, `mouse requests ${mouse.length}`);
    assert.deepEqual(new Set(mouse), new Set([R_SERVED_CLIENT]), "every mouse request answered");
    const withheld = count(flood, R_DROP_OVERLOAD);
    const answered = count(flood, R_SERVED_CLIENT);
    // 500/s of capacity, ~25/s of it the mice's: the flood's 2,000/s gets about a fifth, in whole pools.
    assert.ok(withheld > 0.7 * flood.length, `withheld ${withheld} of ${flood.length}`);
    assert.ok(answered > 0.1 * flood.length, `answered ${answered} of ${flood.length}`);
    assert.equal(count(flood, R_KISS_RATE), 0, "no KoD for a withheld request");
    const s = d.overload.stats();
    assert.equal(s.overloaded, true);
    assert.equal(s.withheldPools[0], 0, "no mouse pool withheld");
    assert.equal(REASON_NAMES[R_DROP_OVERLOAD], "drop_overload");
    assert.equal(REASON_RESPONSE[R_DROP_OVERLOAD], RESPONSE_DROPPED);
  });

  it("with overload control off, the same flood is answered whole (nothing limits it but the call-gap)", () => {
    const { mouse, flood } = run("enabled = false\n");
    assert.equal(count(flood, R_DROP_OVERLOAD), 0);
    assert.equal(count(mouse, R_DROP_OVERLOAD), 0);
  });

  it("a given hash seed makes the pools, and so the run, repeatable (the simulator's runs)", () => {
    const seeded = (hashSeed: number) => {
      const d = Defences.fromConfig(config("[overload]\nredline = 100\nperiod-min = 2\nperiod-max = 4\n"), {
        rng: createRng(1),
        hashSeed,
      });
      const reasons: number[] = [];
      for (let n = 0; n < 4000; n++)
        reasons.push(send(d, `11.0.${(n >> 8) & 255}.${n & 255}`, n * 0.001).reason);
      return { seed: d.overload.seed, reasons: reasons.join(",") };
    };
    const a = seeded(12345);
    assert.equal(a.seed, 12345);
    assert.equal(a.reasons, seeded(12345).reasons);
    assert.notEqual(a.reasons, seeded(54321).reasons);
  });

  it("a reload that raises the redline past the load ends the withholding at the next window", () => {
    const { d } = run("");
    d.reconfigure(config("[overload]\nredline = 1000000\nmouse-interval = 4\n"));
    const reasons: number[] = [];
    for (let t = 44; t < 47; t += 0.01)
      reasons.push(send(d, `12.0.${Math.floor(t * 100) & 255}.9`, t).reason);
    assert.equal(count(reasons.slice(200), R_DROP_OVERLOAD), 0);
    assert.equal(d.overload.stats().overloaded, false);
  });
});
