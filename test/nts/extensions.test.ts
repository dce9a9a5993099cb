import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import { COOKIE_LENGTH } from "../../src/nts/cookie.ts";
import { NtsError } from "../../src/nts/errors.ts";
import {
  buildNtsRequest,
  checkNtsReply,
  cookiesThatFit,
  inspectNtsRequest,
  NTS_MALFORMED,
  NTS_NONE,
  NTS_REQUEST,
  NtsRequestView,
  verifyRequest,
  writeNtsNak,
  writeNtsReply,
} from "../../src/nts/extensions.ts";
import { checkPacket, DECODE_OK, NTP_HEADER_LENGTH } from "../../src/protocol/index.ts";

const random = (n: number) => new Uint8Array(randomBytes(n));

function header(): Uint8Array {
  const h = new Uint8Array(NTP_HEADER_LENGTH);
  h[0] = (4 << 3) | 3;
  h.set(random(8), 40);
  return h;
}

function request(placeholders = 0) {
  const c2s = random(32);
  const s2c = random(32);
  const uid = random(32);
  const cookie = random(COOKIE_LENGTH);
  const req = buildNtsRequest(header(), uid, cookie, placeholders, c2s, random(16));
  return { c2s, s2c, uid, cookie, req };
}

describe("NTS extension fields (RFC 8915 §5)", () => {
  it("a request the client builds is a valid NTPv4 packet the server's view reads and verifies", () => {
    const { c2s, cookie, req } = request(3);
    assert.equal(checkPacket(req, req.length), DECODE_OK);
    const view = new NtsRequestView();
    assert.equal(inspectNtsRequest(req, req.length, view), NTS_REQUEST);
    assert.equal(view.placeholders, 3);
    assert.deepEqual(req.subarray(view.cookie, view.cookie + view.cookieLength), cookie);
    assert.equal(verifyRequest(req, view, c2s), true);
    assert.equal(verifyRequest(req, view, random(32)), false, "another key");
  });

  it("any flipped bit before or in the authenticator makes verification fail (a wrong authenticator)", () => {
    const { c2s, req } = request(1);
    const view = new NtsRequestView();
    fc.assert(
      fc.property(fc.integer({ min: 0, max: req.length - 1 }), fc.integer({ min: 0, max: 7 }), (at, bit) => {
        const t = new Uint8Array(req);
        t[at]! ^= 1 << bit;
        const kind = inspectNtsRequest(t, t.length, view);
        // A flip in a length or type makes the fields malformed; anywhere else the authenticator fails.
        if (kind === NTS_REQUEST) assert.equal(verifyRequest(t, view, c2s), false);
      }),
      { numRuns: 400 },
    );
  });

  it("the reply carries one cookie per cookie and placeholder, is never larger than the request, and the client reads it", () => {
    for (let p = 0; p <= 7; p++) {
      const { s2c, uid, req } = request(p);
      const view = new NtsRequestView();
      inspectNtsRequest(req, req.length, view);
      const n = cookiesThatFit(view, req.length, COOKIE_LENGTH);
      assert.equal(n, 1 + p);
      const cookies = Array.from({ length: n }, () => random(COOKIE_LENGTH));
      const buf = new Uint8Array(2048);
      buf.set(req);
      const len = writeNtsReply(buf, req, view, s2c, cookies, random(16));
      assert.ok(len <= req.length, `${len} <= ${req.length}`);
      const reply = buf.subarray(0, len);
      assert.equal(checkPacket(reply, len), DECODE_OK);
      const check = checkNtsReply(reply, uid, s2c);
      assert.ok(check.ok, check.ok ? "" : check.reason);
      assert.deepEqual(check.ok && check.cookies, cookies);
      // Another UID (a replayed or misrouted reply) or another key: refused.
      assert.equal(checkNtsReply(reply, random(32), s2c).ok, false);
      assert.equal(checkNtsReply(reply, uid, random(32)).ok, false);
    }
  });

  it("a request too long for any server (too many placeholders) is refused with a code", () => {
    assert.throws(
      () => request(9),
      (e: unknown) => e instanceof NtsError && e.code === "ERR_NTS_REQUEST",
    );
  });

  it("an NTS NAK echoes the unique identifier and the client reads it as one", () => {
    const { s2c, uid, req } = request();
    const view = new NtsRequestView();
    inspectNtsRequest(req, req.length, view);
    const buf = new Uint8Array(req);
    buf[1] = 0;
    buf.set([0x4e, 0x54, 0x53, 0x4e], 12);
    const len = writeNtsNak(buf, req, view);
    const check = checkNtsReply(buf.subarray(0, len), uid, s2c);
    assert.equal(check.ok, false);
    assert.equal(!check.ok && check.nak, true);
  });

  it("malformed NTS fields: no cookie, no unique identifier, two cookies, a short UID, a bad authenticator", () => {
    const { req } = request(0);
    const view = new NtsRequestView();
    inspectNtsRequest(req, req.length, view);
    const uidField = req.subarray(view.uid, view.uid + view.uidLength);
    const cookieField = req.subarray(view.cookie - 4, view.cookie + view.cookieLength);
    const authField = req.subarray(view.auth);
    const join = (...parts: Uint8Array[]) => {
      const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.length;
      }
      return out;
    };
    const h = req.subarray(0, NTP_HEADER_LENGTH);
    const shortUid = new Uint8Array(20);
    shortUid.set([0x01, 0x04, 0, 20]);
    const badAuth = new Uint8Array(authField);
    badAuth[4] = 0xff; // nonce length beyond the field
    for (const [name, pkt] of [
      ["no cookie", join(h, uidField, authField)],
      ["no uid", join(h, cookieField, authField)],
      ["two cookies", join(h, uidField, cookieField, cookieField, authField)],
      ["short uid", join(h, shortUid, cookieField, authField)],
      ["bad authenticator lengths", join(h, uidField, cookieField, badAuth)],
      ["no authenticator", join(h, uidField, cookieField)],
    ] as const) {
      assert.equal(inspectNtsRequest(pkt, pkt.length, view), NTS_MALFORMED, name);
    }
    assert.equal(inspectNtsRequest(join(h, uidField), NTP_HEADER_LENGTH + uidField.length, view), NTS_NONE);
    assert.equal(inspectNtsRequest(h, NTP_HEADER_LENGTH, view), NTS_NONE);
  });

  it("any octets whatever: inspection never throws nor reads past the length", () => {
    const view = new NtsRequestView();
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 600 }), fc.nat(700), (bytes, length) => {
        const b = new Uint8Array(bytes);
        if (b.length > 0) b[0] = (4 << 3) | 3;
        const kind = inspectNtsRequest(b, length, view);
        assert.ok([NTS_NONE, NTS_REQUEST, NTS_MALFORMED].includes(kind));
        if (kind === NTS_REQUEST) assert.ok(view.auth + 8 + view.nonceLength <= Math.min(length, b.length));
      }),
      { numRuns: 500 },
    );
  });
});
