// NTS-authenticated NTP in the decision (src/core/nts.ts, RFC 8915 §5.7): the defences decide first, exactly
// as for a plain request; then cookie, authenticator, new cookies, the sealed reply, or an NTS NAK.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import type { Defences } from "../../src/core/defences.ts";
import { NtsResponder } from "../../src/core/nts.ts";
import {
  R_DROP_GAPPED,
  R_DROP_KOD_LIMITED,
  R_DROP_NTS_MALFORMED,
  R_KISS_NTSN_BAD_AUTH,
  R_KISS_NTSN_BAD_COOKIE,
  R_KISS_NTSN_UNKNOWN_KEY,
  R_KISS_RATE,
  R_SERVED_CLIENT,
  R_SERVED_NTS,
  REASON_REPLY,
  REPLY_AS_IS,
} from "../../src/core/reasons.ts";
import type { ServeState } from "../../src/core/serve-state.ts";
import { addressKey } from "../../src/defence/address-key.ts";
import { AEAD_AES_SIV_CMAC_256 } from "../../src/nts/aes-siv.ts";
import { sealCookie } from "../../src/nts/cookie.ts";
import { buildNtsRequest, checkNtsReply, NTS_NONE, NTS_REQUEST } from "../../src/nts/extensions.ts";
import { CookieKeys, newCookieKey } from "../../src/nts/keys.ts";
import {
  checkPacket,
  DECODE_OK,
  KISS_NTSN,
  NTP_HEADER_LENGTH,
  readNtpTimestampToUnixMs,
} from "../../src/protocol/index.ts";
import { defences, syncedState } from "../helpers/core.ts";

const T0 = Date.UTC(2026, 11, 5, 1, 0, 0);
const TX = T0 + 7;
const random = (n: number) => new Uint8Array(randomBytes(n));

function state(): ServeState {
  return syncedState(T0);
}

const serverKey = newCookieKey([], T0, random);
const keys = new CookieKeys([serverKey]);

function setup(toml = "") {
  const d = defences(toml);
  const nts = new NtsResponder(
    (cell) => {
      cell[0] = TX;
    },
    [serverKey],
  );
  return { d, nts };
}

function client(placeholders = 1) {
  const session = { aead: AEAD_AES_SIV_CMAC_256, c2s: random(32), s2c: random(32) };
  const cookie = sealCookie(keys.current, session);
  return { session, cookie, placeholders };
}

function ntsRequest(c: ReturnType<typeof client>, opts: { cookie?: Uint8Array; c2s?: Uint8Array } = {}) {
  const h = new Uint8Array(NTP_HEADER_LENGTH);
  h[0] = (4 << 3) | 3;
  h.set(random(8), 40);
  const uid = random(32);
  const req = buildNtsRequest(
    h,
    uid,
    opts.cookie ?? c.cookie,
    c.placeholders,
    opts.c2s ?? c.session.c2s,
    random(16),
  );
  return { uid, req };
}

/** One packet through the shell's order: inspect, the defences, respond. */
function handle(d: Defences, nts: NtsResponder, req: Uint8Array, address = "192.0.2.10", t = 0) {
  const buf = new Uint8Array(2048);
  buf.set(req);
  nts.inspect(buf, req.length);
  let reason = d.decide(buf, req.length, addressKey(address)!, 40000, T0 + t * 1000, state());
  reason = nts.respond(buf, reason, state());
  return { reason, reply: buf.subarray(0, nts.replyLength) };
}

describe("NTS requests in the decision (RFC 8915 §5.7)", () => {
  it("a good request: an authenticated reply with the UID, one new cookie per cookie and placeholder, never larger", () => {
    const { d, nts } = setup();
    const c = client(3);
    const { uid, req } = ntsRequest(c);
    const { reason, reply } = handle(d, nts, req);
    assert.equal(reason, R_SERVED_NTS);
    assert.equal(REASON_REPLY[reason], REPLY_AS_IS);
    assert.ok(reply.length <= req.length, `${reply.length} <= ${req.length}`);
    assert.equal(checkPacket(reply, reply.length), DECODE_OK);
    assert.equal(reply[0]! & 7, 4);
    assert.ok(Math.abs(readNtpTimestampToUnixMs(reply, 40, T0) - TX) < 0.001, "stamped before sealing");
    assert.deepEqual(reply.subarray(24, 32), req.subarray(40, 48), "origin = the request's transmit");
    const check = checkNtsReply(reply, uid, c.session.s2c);
    assert.ok(check.ok, check.ok ? "" : check.reason);
    assert.equal(check.ok && check.cookies.length, 4);
    // The new cookies work: a request made with one of them is served too.
    const next = ntsRequest({ ...c, cookie: check.ok ? check.cookies[2]! : c.cookie });
    assert.equal(handle(d, nts, next.req, "192.0.2.11").reason, R_SERVED_NTS);
  });

  it("a tampered cookie: NTS NAK (kiss NTSN with the UID echoed, nothing else)", () => {
    const { d, nts } = setup();
    const c = client();
    const bad = new Uint8Array(c.cookie);
    bad[50]! ^= 0x40;
    const { uid, req } = ntsRequest(c, { cookie: bad });
    const { reason, reply } = handle(d, nts, req);
    assert.equal(reason, R_KISS_NTSN_BAD_COOKIE);
    assert.equal(reply[1], 0);
    assert.equal(new DataView(reply.buffer, reply.byteOffset).getUint32(12), KISS_NTSN);
    assert.equal(reply.length, NTP_HEADER_LENGTH + 36);
    const check = checkNtsReply(reply, uid, c.session.s2c);
    assert.equal(!check.ok && check.nak, true);
  });

  it("a cookie under a key we do not hold: NTS NAK, counted apart", () => {
    const { d, nts } = setup();
    const other = new CookieKeys([newCookieKey([serverKey], T0, random)]);
    const c = client();
    const { req } = ntsRequest(c, { cookie: sealCookie(other.current, c.session) });
    assert.equal(handle(d, nts, req).reason, R_KISS_NTSN_UNKNOWN_KEY);
  });

  it("a wrong authenticator (another C2S key): NTS NAK", () => {
    const { d, nts } = setup();
    const c = client();
    const { req } = ntsRequest(c, { c2s: random(32) });
    assert.equal(handle(d, nts, req).reason, R_KISS_NTSN_BAD_AUTH);
  });

  it("a replayed request is answered again, statelessly, echoing the same UID (the client's check, §5.7)", () => {
    const { d, nts } = setup();
    const c = client();
    const { uid, req } = ntsRequest(c);
    const a = handle(d, nts, req, "192.0.2.20", 0);
    const b = handle(d, nts, req, "192.0.2.20", 100);
    assert.equal(a.reason, R_SERVED_NTS);
    assert.equal(b.reason, R_SERVED_NTS);
    assert.ok(checkNtsReply(b.reply, uid, c.session.s2c).ok);
  });

  it("malformed NTS fields are dropped; a plain request passes through untouched", () => {
    const { d, nts } = setup();
    const c = client();
    const { req } = ntsRequest(c);
    const cut = req.slice(0, NTP_HEADER_LENGTH + 36 + 4 + c.cookie.length); // UID and cookie, no authenticator
    assert.equal(handle(d, nts, cut, "192.0.2.30").reason, R_DROP_NTS_MALFORMED);
    const plain = new Uint8Array(NTP_HEADER_LENGTH);
    plain[0] = (4 << 3) | 3;
    assert.equal(nts.inspect(plain, plain.length), NTS_NONE);
    assert.equal(handle(d, nts, plain, "192.0.2.31").reason, R_SERVED_CLIENT);
    assert.equal(nts.replyLength, NTP_HEADER_LENGTH);
  });

  it("the defences decide first: a gapped NTS client gets the plain RATE kiss, and its cookie is never opened", () => {
    // A bad cookie is answered NTSN when it is looked at; a RATE kiss or a drop says it was not. The call-gap
    // answers a start-up burst whole (docs/defences-mru.md), then gaps.
    const { d, nts } = setup("[callgap]\nminimum = 2\naverage = 8\nburst = 1\n");
    const c = client();
    const bad = new Uint8Array(c.cookie);
    bad[60]! ^= 1;
    const first = handle(d, nts, ntsRequest(c).req, "192.0.2.40", 0);
    assert.equal(first.reason, R_SERVED_NTS);
    const reasons: number[] = [];
    for (let i = 1; i <= 30; i++) {
      const r = ntsRequest(c, { cookie: bad });
      assert.equal(nts.inspect(r.req, r.req.length), NTS_REQUEST);
      const { reason } = handle(d, nts, r.req, "192.0.2.40", i * 0.05);
      reasons.push(reason);
      if (reason === R_KISS_RATE)
        assert.equal(nts.replyLength, NTP_HEADER_LENGTH, "the plain kiss, 48 octets");
    }
    assert.ok(
      reasons.every((r) =>
        [R_KISS_RATE, R_DROP_GAPPED, R_DROP_KOD_LIMITED, R_KISS_NTSN_BAD_COOKIE].includes(r),
      ),
      `${reasons}`,
    );
    assert.ok(reasons.filter((r) => r === R_KISS_RATE).length >= 1, `${reasons}`);
    assert.ok(reasons.filter((r) => r !== R_KISS_NTSN_BAD_COOKIE).length >= 20, `mostly gapped: ${reasons}`);
  });
});
