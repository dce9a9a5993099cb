import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  CERR_BADASSOC,
  CERR_BADFMT,
  CERR_BADOP,
  CERR_PERMISSION,
  CERR_UNKNOWNVAR,
  CTL_OP_CONFIGURE,
  CTL_OP_READ_MRU,
  CTL_OP_READCLOCK,
  CTL_OP_READSTAT,
  CTL_OP_READVAR,
  CTL_OP_REQ_NONCE,
  CTL_OP_WRITEVAR,
  lfpText,
} from "../../src/control/codec.ts";
import {
  CONTROL_ANSWERED,
  CONTROL_DENIED,
  CONTROL_ERROR,
  CONTROL_MALFORMED,
  CONTROL_NOT_CONTROL,
  CONTROL_RESPONSE,
  CONTROL_UNPROVEN,
  controlReplied,
  isLoopbackKey,
} from "../../src/control/mode6.ts";
import { NONCE_LIFETIME_S } from "../../src/control/nonce.ts";
import { DEFAULT_SYSTEM_VARIABLES, refIdVar } from "../../src/control/sysvars.ts";
import { decide } from "../../src/core/decide.ts";
import { R_DROP_MODE_PRIVATE } from "../../src/core/reasons.ts";
import { unsynchronisedState } from "../../src/core/serve-state.ts";
import { exchange, key, reassemble, request, varMap, vars } from "./client.ts";
import { emptyMru, feed, makeCtx, NOW, systemInfo } from "./helpers.ts";

/** ntpd's monlist request (mode 7, implementation 3 XNTPD, request 42 MON_GETLIST_1), as scanners send it. */
function monlist(): Uint8Array {
  const d = new Uint8Array(48);
  d[0] = 0x17; // LI 0, version 2, mode 7
  d[1] = 0x00;
  d[2] = 0x03;
  d[3] = 0x2a;
  return d;
}

function nonceFor(ctx: ReturnType<typeof makeCtx>, from: string, now = NOW): string {
  const r = reassemble(exchange(ctx, request(CTL_OP_REQ_NONCE), from, now).out);
  assert.equal(r.error, false);
  const m = /^nonce=(a[0-9a-f]{23})$/.exec(r.text);
  assert.ok(m, r.text);
  return m[1]!;
}

describe("who gets an answer", () => {
  test("an address the context does not allow gets nothing, whatever it sends", () => {
    const ctx = makeCtx({ allow: ["127.0.0.1"] });
    const nonce = nonceFor(ctx, "127.0.0.1");
    for (const req of [
      request(CTL_OP_READVAR),
      request(CTL_OP_READSTAT),
      request(CTL_OP_REQ_NONCE),
      request(CTL_OP_READ_MRU, `nonce=${nonce}, frags=32`),
      request(CTL_OP_WRITEVAR, "x=1"),
      request(31),
    ]) {
      for (const from of ["127.0.0.2", "192.0.2.1", "::1", "2001:db8::1"]) {
        const { result, out } = exchange(ctx, req, from, NOW);
        assert.equal(result, CONTROL_DENIED, from);
        assert.deepEqual(out, []);
        assert.equal(controlReplied(result), false);
      }
    }
    assert.equal(exchange(ctx, request(CTL_OP_READVAR), "127.0.0.1", NOW).result, CONTROL_ANSWERED);
  });

  test("mode 7 (monlist, CVE-2013-5211) is never answered, not even to an allowed address", () => {
    const ctx = makeCtx();
    for (const from of ["127.0.0.1", "::1", "192.0.2.1"]) {
      const { result, out } = exchange(ctx, monlist(), from, NOW);
      assert.equal(result, CONTROL_NOT_CONTROL);
      assert.deepEqual(out, []);
    }
    // Every other mode too: only mode 6 is control.
    for (let mode = 0; mode < 8; mode++) {
      if (mode === 6) continue;
      const req = request(CTL_OP_READVAR);
      req[0] = (2 << 3) | mode;
      assert.equal(exchange(ctx, req, "127.0.0.1", NOW).out.length, 0, `mode ${mode}`);
    }
    // And the decision core drops mode 7 before any handler sees it (src/core/decide.ts).
    assert.equal(decide(monlist(), 48, unsynchronisedState(-20, false)), R_DROP_MODE_PRIVATE);
  });

  test("responses, truncated datagrams and bad versions get nothing", () => {
    const ctx = makeCtx();
    const resp = request(CTL_OP_READVAR);
    resp[1] = resp[1]! | 0x80;
    assert.equal(exchange(ctx, resp, "127.0.0.1", NOW).result, CONTROL_RESPONSE);
    assert.equal(
      exchange(ctx, request(CTL_OP_READVAR).subarray(0, 8), "127.0.0.1", NOW).result,
      CONTROL_MALFORMED,
    );
    const v7 = request(CTL_OP_READVAR);
    v7[0] = (7 << 3) | 6;
    const r = exchange(ctx, v7, "127.0.0.1", NOW);
    assert.equal(r.result, CONTROL_MALFORMED);
    assert.deepEqual(r.out, []);
  });

  test("isLoopbackKey: 127.0.0.0/8 and ::1 only", () => {
    for (const a of ["127.0.0.1", "127.255.0.9", "::ffff:127.0.0.2", "::1"])
      assert.equal(isLoopbackKey(key(a)), true, a);
    for (const a of ["128.0.0.1", "126.255.255.255", "10.0.0.1", "::2", "::", "::127.0.0.1", "fe80::1"]) {
      assert.equal(isLoopbackKey(key(a)), false, a);
    }
  });
});

describe("READVAR: ntpq -c rv", () => {
  test("the default list carries the clock, the version and the counters, in ntpd's forms", () => {
    const ctx = makeCtx();
    const { result, out } = exchange(ctx, request(CTL_OP_READVAR, "", 42), "127.0.0.1", NOW);
    assert.equal(result, CONTROL_ANSWERED);
    const r = reassemble(out);
    assert.equal(r.sequence, 42);
    assert.equal(r.error, false);
    // leap 0, clock source 6 (NTP) at stratum 2, no events.
    assert.equal(r.status, 0x0600);
    assert.ok(r.text.endsWith("\r\n"));
    const v = varMap(r.text);
    assert.equal(v.get("version"), '"ntpshield 0.1.0"');
    assert.equal(v.get("processor"), '"x86_64"');
    assert.equal(v.get("system"), '"Linux/6.1.0"');
    assert.equal(v.get("leap"), "0");
    assert.equal(v.get("stratum"), "2");
    assert.equal(v.get("precision"), "-20");
    assert.equal(v.get("rootdelay"), "12.500000");
    // 2 ms plus 15 ppm over the 64 s since the reference time.
    assert.equal(v.get("rootdisp"), (2 + 64 * 15e-3).toFixed(6));
    assert.equal(v.get("refid"), "192.0.2.1");
    assert.equal(v.get("reftime"), lfpText((NOW - 64_000) / 1000));
    assert.equal(v.get("clock"), lfpText(NOW / 1000));
    assert.equal(v.get("peer"), "0");
    assert.equal(v.get("tc"), "6");
    assert.equal(v.get("mintc"), "4");
    assert.equal(v.get("offset"), "0.250000");
    assert.equal(v.get("ss_uptime"), "3600");
    assert.equal(v.get("ss_received"), "1000");
    assert.equal(v.get("ss_processed"), String(880 + 5 + 2));
    assert.equal(v.get("ss_kodsent"), "11");
    assert.equal(v.get("ss_limited"), String(50 + 10 + 2 + 4));
    assert.equal(v.get("ss_restricted"), String(1 + 6));
    assert.equal(v.get("ss_badformat"), "5");
    assert.equal(v.get("ss_declined"), "7");
    assert.equal(v.get("ss_numctlreq"), "18");
    assert.deepEqual(
      vars(r.text).map(([n]) => n),
      DEFAULT_SYSTEM_VARIABLES,
    );
  });

  test("what is unknown is left out of the default list", () => {
    const info = systemInfo();
    delete info.processor;
    delete info.system;
    delete info.poll;
    delete info.minPoll;
    delete info.counters;
    delete info.uptimeS;
    const v = varMap(reassemble(exchange(makeCtx({ info }), request(CTL_OP_READVAR), "::1", NOW).out).text);
    for (const n of ["processor", "system", "tc", "mintc", "ss_received", "ss_uptime"])
      assert.equal(v.has(n), false, n);
    assert.equal(v.get("stratum"), "2");
  });

  test("named variables come in the order asked; an unknown one is CERR_UNKNOWNVAR", () => {
    const mru = emptyMru(50);
    feed(mru, "192.0.2.9", [NOW / 1000 - 100, NOW / 1000 - 40]);
    const ctx = makeCtx({ mru });
    const r = reassemble(
      exchange(ctx, request(CTL_OP_READVAR, "stratum,refid,mru_depth,mru_oldest_age"), "127.0.0.1", NOW).out,
    );
    assert.deepEqual(vars(r.text), [
      ["stratum", "2"],
      ["refid", "192.0.2.1"],
      ["mru_depth", "1"],
      ["mru_oldest_age", "40"],
    ]);
    const bad = exchange(ctx, request(CTL_OP_READVAR, "stratum,bogus"), "127.0.0.1", NOW);
    assert.equal(bad.result, CONTROL_ERROR);
    const e = reassemble(bad.out);
    assert.equal(e.error, true);
    assert.equal(e.errorCode, CERR_UNKNOWNVAR);
    assert.equal(bad.out[0]!.length, 12);
    // mru_* without an MRU list are unknown.
    const none = exchange(makeCtx({ mru: null }), request(CTL_OP_READVAR, "mru_depth"), "127.0.0.1", NOW);
    assert.equal(reassemble(none.out).errorCode, CERR_UNKNOWNVAR);
  });

  test("association IDs other than 0: CERR_BADASSOC (ntpshield has no peers); READSTAT lists none", () => {
    const ctx = makeCtx();
    const a = reassemble(exchange(ctx, request(CTL_OP_READVAR, "", 1, 7), "127.0.0.1", NOW).out);
    assert.equal(a.errorCode, CERR_BADASSOC);
    assert.equal(a.associd, 7);
    const s = exchange(ctx, request(CTL_OP_READSTAT), "127.0.0.1", NOW);
    assert.equal(s.result, CONTROL_ANSWERED);
    assert.equal(reassemble(s.out).text, "");
    assert.equal(s.out[0]!.length, 12);
  });

  test("writes and configuration are refused (PERMISSION); unknown opcodes are BADOP; fragments BADFMT", () => {
    const ctx = makeCtx();
    assert.equal(
      reassemble(exchange(ctx, request(CTL_OP_WRITEVAR, "leap=1"), "127.0.0.1", NOW).out).errorCode,
      CERR_PERMISSION,
    );
    assert.equal(
      reassemble(exchange(ctx, request(CTL_OP_CONFIGURE, "server x"), "127.0.0.1", NOW).out).errorCode,
      CERR_PERMISSION,
    );
    assert.equal(
      reassemble(exchange(ctx, request(CTL_OP_READCLOCK), "127.0.0.1", NOW).out).errorCode,
      CERR_BADOP,
    );
    assert.equal(reassemble(exchange(ctx, request(20), "127.0.0.1", NOW).out).errorCode, CERR_BADOP);
    const frag = request(CTL_OP_READVAR, "stratum");
    frag[1] = frag[1]! | 0x20;
    assert.equal(reassemble(exchange(ctx, frag, "127.0.0.1", NOW).out).errorCode, CERR_BADFMT);
  });

  test("refid text: kiss codes and clock names as ntpd shows them; anything ntpq would read as a number is quoted", () => {
    assert.equal(refIdVar(0x47505300, 1), "GPS");
    assert.equal(refIdVar(0x494e4954, 16), "INIT");
    assert.equal(refIdVar(0, 16), '""');
    assert.equal(refIdVar(0x31323334, 1), '"1234"');
    assert.equal(refIdVar(0x4e414e00, 1), '"NAN"');
    assert.equal(refIdVar(0x0a000001, 3), "10.0.0.1");
    assert.equal(
      refIdVar(0x4c4f434c, 10),
      "76.79.67.76",
      "a stratum-10 refid is an address, even spelling LOCL",
    );
    assert.equal(refIdVar(0x01020304, 1), '"0x01020304"');
  });
});

describe("the nonce handshake and the size rule", () => {
  test("READ_MRU without a nonce, with another address's, a stale or a forged one: a 12-octet PERMISSION error", () => {
    const mru = emptyMru();
    feed(mru, "192.0.2.7", [NOW / 1000 - 5]);
    const ctx = makeCtx({ allow: ["127.0.0.1", "127.0.0.2"], mru });
    const mine = nonceFor(ctx, "127.0.0.1");
    const theirs = nonceFor(ctx, "127.0.0.2");
    const cases: [string, number][] = [
      ["frags=32", NOW],
      [`nonce=${theirs}, frags=32`, NOW],
      [`nonce=${mine}, frags=32`, NOW + (NONCE_LIFETIME_S + 2) * 1000],
      [`nonce=${mine.slice(0, -1)}${mine.endsWith("0") ? "1" : "0"}, frags=32`, NOW],
      ["nonce=, frags=32", NOW],
    ];
    for (const [q, now] of cases) {
      const { result, out } = exchange(ctx, request(CTL_OP_READ_MRU, q), "127.0.0.1", now);
      assert.equal(result, CONTROL_ERROR, q);
      assert.equal(out.length, 1);
      assert.equal(out[0]!.length, 12);
      assert.equal(reassemble(out).errorCode, CERR_PERMISSION);
    }
    const ok = exchange(ctx, request(CTL_OP_READ_MRU, `nonce=${mine}, frags=32`), "127.0.0.1", NOW + 30_000);
    assert.equal(ok.result, CONTROL_ANSWERED);
    assert.match(reassemble(ok.out).text, /addr\.0=192\.0\.2\.7:123/);
  });

  test("from a non-loopback allowed address, nothing larger than the request before the nonce is proven", () => {
    const mru = emptyMru();
    for (let i = 0; i < 50; i++) feed(mru, `198.51.100.${i}`, [NOW / 1000 - 100 + i]);
    const ctx = makeCtx({ allow: ["192.0.2.1", "127.0.0.1"], mru });
    // ntpq's 12-octet rv and nonce requests would get 300+ and 44 octets: refused with 12.
    for (const req of [
      request(CTL_OP_READVAR),
      request(CTL_OP_REQ_NONCE),
      request(CTL_OP_READVAR, "stratum"),
    ]) {
      const { result, out } = exchange(ctx, req, "192.0.2.1", NOW);
      assert.equal(result, CONTROL_UNPROVEN);
      assert.equal(out.length, 1);
      assert.ok(out[0]!.length <= req.length);
      assert.equal(reassemble(out).errorCode, CERR_PERMISSION);
    }
    // A reply that is no larger than its request is sent: READSTAT (12 octets), and a padded nonce request.
    assert.equal(exchange(ctx, request(CTL_OP_READSTAT), "192.0.2.1", NOW).result, CONTROL_ANSWERED);
    const padded = request(CTL_OP_REQ_NONCE, "", 1, 0, 48);
    const n = exchange(ctx, padded, "192.0.2.1", NOW);
    assert.equal(n.result, CONTROL_ANSWERED);
    assert.ok(n.out[0]!.length <= 48);
    const nonce = reassemble(n.out).text.slice("nonce=".length);
    // With the nonce proven, the MRU list comes back, far larger than the request.
    const req = request(CTL_OP_READ_MRU, `nonce=${nonce}, frags=32`);
    const m = exchange(ctx, req, "192.0.2.1", NOW);
    assert.equal(m.result, CONTROL_ANSWERED);
    const total = m.out.reduce((s, d) => s + d.length, 0);
    assert.ok(total > 10 * req.length, `${total}`);
    assert.equal([...reassemble(m.out).text.matchAll(/addr\.\d+=/g)].length, 50);
  });

  test("loopbackProven: false applies the rule to 127.0.0.1 too", () => {
    const ctx = makeCtx({ loopbackProven: false });
    assert.equal(exchange(ctx, request(CTL_OP_READVAR), "127.0.0.1", NOW).result, CONTROL_UNPROVEN);
    assert.equal(exchange(makeCtx(), request(CTL_OP_READVAR), "127.0.0.1", NOW).result, CONTROL_ANSWERED);
  });

  test("property: to an unproven address, the bytes sent never exceed the request's; to a denied one, none", () => {
    const mru = emptyMru(400);
    for (let i = 0; i < 300; i++)
      feed(mru, `10.1.${i >> 8}.${i & 255}`, [NOW / 1000 - 300 + i, NOW / 1000 - 290 + i]);
    const ctx = makeCtx({ allow: ["192.0.2.1", "127.0.0.1"], mru });
    const realNonce = nonceFor(ctx, "127.0.0.1"); // issued to another address: no proof for 192.0.2.1
    const text = fc.oneof(
      fc.constant(""),
      fc.constantFrom(
        "stratum",
        "refid,clock",
        `nonce=${realNonce}, frags=32`,
        "nonce=a0000000000000000000000, limit=256",
        "bogus",
      ),
      fc.string({ maxLength: 120 }),
    );
    const structured = fc
      .record({
        op: fc.integer({ min: 0, max: 31 }),
        data: text,
        seq: fc.integer({ min: 0, max: 65535 }),
        associd: fc.constantFrom(0, 0, 1, 65535),
        pad: fc.integer({ min: 0, max: 600 }),
      })
      .map((r) => request(r.op, r.data, r.seq, r.associd, r.pad));
    const raw = fc.uint8Array({ minLength: 0, maxLength: 600 }).map((d) => {
      if (d.length > 0) d[0] = (d[0]! & ~7) | 6;
      return d;
    });
    fc.assert(
      fc.property(fc.oneof(structured, raw), fc.integer({ min: -60_000, max: 60_000 }), (req, dt) => {
        const u = exchange(ctx, req, "192.0.2.1", NOW + dt);
        const sent = u.out.reduce((s, d) => s + d.length, 0);
        assert.ok(sent <= req.length, `${sent} octets sent for a ${req.length}-octet request`);
        for (const d of u.out) {
          assert.equal(d.length % 4, 0);
          assert.equal(d[0]! & 7, 6);
          assert.ok((d[1]! & 0x80) !== 0);
        }
        assert.equal(controlReplied(u.result), u.out.length > 0);
        const denied = exchange(ctx, req, "192.0.2.2", NOW + dt);
        assert.deepEqual(denied.out, []);
      }),
      { numRuns: 1500 },
    );
  });
});

describe("status word", () => {
  test("unsynchronised: leap 3, source 0; stratum 1: source 5 (local); an explicit source wins", () => {
    const unsync = systemInfo({ state: { ...systemInfo().state, leap: 3, stratum: 16, refId: 0 } });
    const r = reassemble(exchange(makeCtx({ info: unsync }), request(CTL_OP_READVAR), "127.0.0.1", NOW).out);
    assert.equal(r.status, 0xc000);
    assert.equal(varMap(r.text).get("leap"), "3");
    const s1 = systemInfo({ state: { ...systemInfo().state, stratum: 1, refId: 0x47505300 } });
    const r1 = reassemble(exchange(makeCtx({ info: s1 }), request(CTL_OP_READVAR), "127.0.0.1", NOW).out);
    assert.equal(r1.status, 0x0500);
    assert.equal(varMap(r1.text).get("refid"), "GPS");
    const pps = systemInfo({ syncSource: 1 });
    assert.equal(
      reassemble(exchange(makeCtx({ info: pps }), request(CTL_OP_READVAR), "127.0.0.1", NOW).out).status,
      0x0100,
    );
  });
});
