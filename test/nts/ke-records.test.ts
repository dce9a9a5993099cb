import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { AEAD_AES_SIV_CMAC_256 } from "../../src/nts/aes-siv.ts";
import { NtsError } from "../../src/nts/errors.ts";
import {
  answerKeRequest,
  clientRequest,
  END_OF_MESSAGE,
  encodeKeRecords,
  errorMessage,
  exporterContext,
  KE_AEAD_ALGORITHM,
  KE_END_OF_MESSAGE,
  KE_ERROR,
  KE_ERROR_BAD_REQUEST,
  KE_ERROR_UNRECOGNIZED_CRITICAL,
  KE_NEW_COOKIE,
  KE_NEXT_PROTOCOL,
  KE_PORT,
  KE_SERVER,
  type KeOffer,
  type KeRecord,
  readKeAnswer,
  readKeMessage,
  u16Record,
} from "../../src/nts/ke-records.ts";

const LIMITS = { maxRecordBody: 256, maxMessage: 1024 };
let made = 0;
const OFFER: KeOffer = {
  cookie: () => {
    made++;
    return new Uint8Array([made, made, made, made]);
  },
  cookies: 8,
  server: "",
  port: 0,
};

function read(bytes: Uint8Array) {
  return readKeMessage(bytes, LIMITS);
}

function complete(bytes: Uint8Array): KeRecord[] {
  const r = read(bytes);
  assert.equal(r.status, "complete");
  return r.status === "complete" ? r.records : [];
}

describe("NTS-KE record codec (RFC 8915 §4)", () => {
  it("reads the client request it writes: next protocol NTPv4, AEAD 15, end of message, critical bits set", () => {
    const bytes = clientRequest();
    assert.equal(Buffer.from(bytes).toString("hex"), "80010002000080040002000f80000000");
    const records = complete(bytes);
    assert.deepEqual(
      records.map((r) => [r.critical, r.type]),
      [
        [true, KE_NEXT_PROTOCOL],
        [true, KE_AEAD_ALGORITHM],
        [true, KE_END_OF_MESSAGE],
      ],
    );
  });

  it("every truncation of a message is incomplete, never an error or a throw", () => {
    const bytes = clientRequest();
    for (let n = 0; n < bytes.length; n++)
      assert.equal(read(bytes.subarray(0, n)).status, "incomplete", `at ${n}`);
  });

  it("refuses a record announcing a body over the limit from its header alone (bad request)", () => {
    const r = read(new Uint8Array([0x80, 0x01, 0x01, 0x01])); // 257 octets announced, none sent
    assert.equal(r.status, "error");
    assert.equal(r.status === "error" && r.code, KE_ERROR_BAD_REQUEST);
  });

  it("refuses a message that passes the message limit without an end (bad request)", () => {
    const cookie = { critical: false, type: KE_NEW_COOKIE, body: new Uint8Array(200) };
    const bytes = encodeKeRecords([cookie, cookie, cookie, cookie, cookie, cookie]);
    const r = read(bytes);
    assert.equal(r.status, "error");
    assert.equal(r.status === "error" && r.code, KE_ERROR_BAD_REQUEST);
  });

  it("any octets whatever: reading never throws and completes only at an end of message", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1200 }), (bytes) => {
        const r = read(bytes);
        if (r.status === "complete") assert.equal(r.records.at(-1)!.type, KE_END_OF_MESSAGE);
      }),
      { numRuns: 500 },
    );
  });

  it("encode then read gives the records back", () => {
    const rec = fc.record({
      critical: fc.boolean(),
      type: fc.integer({ min: 1, max: 0x7fff }),
      body: fc.uint8Array({ maxLength: 64 }),
    });
    fc.assert(
      fc.property(fc.array(rec, { maxLength: 8 }), (records) => {
        const all = [...records, END_OF_MESSAGE];
        const back = complete(encodeKeRecords(all));
        assert.deepEqual(
          back.map((r) => [r.critical, r.type, [...r.body]]),
          all.map((r) => [r.critical, r.type, [...r.body]]),
        );
      }),
    );
  });

  it("refuses to encode what the wire cannot carry, with a code", () => {
    assert.throws(
      () => encodeKeRecords([{ critical: false, type: 0x8000, body: new Uint8Array(0) }]),
      (e: unknown) => e instanceof NtsError && e.code === "ERR_NTS_KE_ENCODE",
    );
  });

  it("the exporter contexts (RFC 8915 §5.1): protocol 0, AEAD 15, then 0 for C2S and 1 for S2C", () => {
    assert.equal(exporterContext(AEAD_AES_SIV_CMAC_256, false).toString("hex"), "0000000f00");
    assert.equal(exporterContext(AEAD_AES_SIV_CMAC_256, true).toString("hex"), "0000000f01");
  });
});

describe("the server's answer (RFC 8915 §4.1)", () => {
  it("agrees on NTPv4 and AES-SIV and hands out eight cookies, then end of message", () => {
    const v = answerKeRequest(complete(clientRequest()), OFFER);
    assert.ok(v.ok);
    assert.equal(v.aead, AEAD_AES_SIV_CMAC_256);
    const a = readKeAnswer(v.records);
    assert.equal(a.cookies.length, 8);
    assert.equal(a.server, undefined);
    assert.equal(a.port, undefined);
    assert.equal(v.records.at(-1), END_OF_MESSAGE);
  });

  it("names another server and port of the fleet when configured (§4.1.7, §4.1.8)", () => {
    const v = answerKeRequest(complete(clientRequest()), {
      ...OFFER,
      server: "ntp2.example.net",
      port: 10123,
    });
    assert.ok(v.ok);
    const a = readKeAnswer(v.records);
    assert.equal(a.server, "ntp2.example.net");
    assert.equal(a.port, 10123);
  });

  it("an unknown critical record: error 0 (unrecognized critical record); an unknown non-critical one is ignored", () => {
    const strange = (critical: boolean) =>
      complete(
        encodeKeRecords([
          u16Record(KE_NEXT_PROTOCOL, [0], true),
          u16Record(KE_AEAD_ALGORITHM, [15], true),
          { critical, type: 0x4242, body: new Uint8Array(3) },
          END_OF_MESSAGE,
        ]),
      );
    const bad = answerKeRequest(strange(true), OFFER);
    assert.equal(bad.ok, false);
    assert.equal(!bad.ok && bad.code, KE_ERROR_UNRECOGNIZED_CRITICAL);
    assert.equal(answerKeRequest(strange(false), OFFER).ok, true);
  });

  it("bad requests get error 1: no next protocol, NTPv4 without AEAD, duplicates, odd bodies, an error record", () => {
    const cases: KeRecord[][] = [
      [u16Record(KE_AEAD_ALGORITHM, [15], true), END_OF_MESSAGE],
      [u16Record(KE_NEXT_PROTOCOL, [0], true), END_OF_MESSAGE],
      [
        u16Record(KE_NEXT_PROTOCOL, [0], true),
        u16Record(KE_NEXT_PROTOCOL, [0], true),
        u16Record(KE_AEAD_ALGORITHM, [15], true),
        END_OF_MESSAGE,
      ],
      [
        { critical: true, type: KE_NEXT_PROTOCOL, body: new Uint8Array(3) },
        u16Record(KE_AEAD_ALGORITHM, [15], true),
        END_OF_MESSAGE,
      ],
      [
        u16Record(KE_NEXT_PROTOCOL, [0], true),
        u16Record(KE_AEAD_ALGORITHM, [15], true),
        u16Record(KE_ERROR, [2], true),
        END_OF_MESSAGE,
      ],
      [
        u16Record(KE_NEXT_PROTOCOL, [0], true),
        u16Record(KE_AEAD_ALGORITHM, [15], true),
        { critical: false, type: KE_PORT, body: new Uint8Array(3) },
        END_OF_MESSAGE,
      ],
      [
        u16Record(KE_NEXT_PROTOCOL, [0], true),
        u16Record(KE_AEAD_ALGORITHM, [15], true),
        { critical: true, type: KE_END_OF_MESSAGE, body: new Uint8Array(2) },
      ],
    ];
    for (const [i, c] of cases.entries()) {
      const v = answerKeRequest(c, OFFER);
      assert.equal(v.ok, false, `case ${i}`);
      assert.equal(!v.ok && v.code, KE_ERROR_BAD_REQUEST, `case ${i}`);
    }
  });

  it("no AEAD in common: an empty AEAD record and no cookie made; a protocol other than NTPv4: an empty next protocol", () => {
    const before = made;
    const v = answerKeRequest(
      [u16Record(KE_NEXT_PROTOCOL, [0], true), u16Record(KE_AEAD_ALGORITHM, [30], true), END_OF_MESSAGE],
      OFFER,
    );
    assert.ok(v.ok);
    assert.equal(v.aead, -1);
    assert.equal(made, before);
    assert.deepEqual(v.records.find((r) => r.type === KE_AEAD_ALGORITHM)!.body, new Uint8Array(0));
    assert.throws(
      () => readKeAnswer(v.records),
      (e: unknown) => e instanceof NtsError && e.code === "ERR_NTS_KE_PROTOCOL",
    );
    const w = answerKeRequest([u16Record(KE_NEXT_PROTOCOL, [0x7777], true), END_OF_MESSAGE], OFFER);
    assert.ok(w.ok);
    assert.deepEqual(w.records[0]!.body, new Uint8Array(0));
  });

  it("the client reads an error record as ERR_NTS_KE_ERROR", () => {
    const records = complete(errorMessage(KE_ERROR_BAD_REQUEST));
    assert.deepEqual(records[0], { critical: true, type: KE_ERROR, body: new Uint8Array([0, 1]) });
    assert.throws(
      () => readKeAnswer(records),
      (e: unknown) => e instanceof NtsError && e.code === "ERR_NTS_KE_ERROR",
    );
  });

  it("the client refuses an answer with an unknown critical record, and one with no cookie", () => {
    const base = [u16Record(KE_NEXT_PROTOCOL, [0], true), u16Record(KE_AEAD_ALGORITHM, [15], true)];
    const cookie = { critical: false, type: KE_NEW_COOKIE, body: new Uint8Array(8) };
    assert.throws(() =>
      readKeAnswer([...base, cookie, { critical: true, type: 99, body: new Uint8Array(0) }, END_OF_MESSAGE]),
    );
    assert.throws(() => readKeAnswer([...base, END_OF_MESSAGE]));
    assert.equal(
      readKeAnswer([
        ...base,
        cookie,
        { critical: false, type: KE_SERVER, body: new Uint8Array([0x61]) },
        END_OF_MESSAGE,
      ]).server,
      "a",
    );
  });
});
