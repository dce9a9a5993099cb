// Network Time Security (RFC 8915) against real peers on loopback (127.0.40.0/24): chronyd 4.3 as an NTS
// client of ntpshield, ntpshield's client against chronyd serving NTS, ntpshield's client against itself
// (with the fleet's redirection through NTS-KE), and hostile input to the NTS-KE server and to the NTP
// workers, each answered as the RFC says and counted on /metrics.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import dgram from "node:dgram";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ntsKeyExchange, ntsQuery } from "../../src/client/nts.ts";
import { AEAD_AES_SIV_CMAC_256 } from "../../src/nts/aes-siv.ts";
import { sealCookie } from "../../src/nts/cookie.ts";
import { buildNtsRequest, checkNtsReply } from "../../src/nts/extensions.ts";
import {
  END_OF_MESSAGE,
  encodeKeRecords,
  KE_AEAD_ALGORITHM,
  KE_ERROR,
  KE_NEW_COOKIE,
  KE_NEXT_PROTOCOL,
  readKeMessage,
  u16Record,
} from "../../src/nts/ke-records.ts";
import { CookieKeys, newCookieKey } from "../../src/nts/keys.ts";
import { metric, parsePrometheus } from "../helpers/monitor.ts";
import { makeNtsCertificates, type NtsCertificates, rawKe } from "../helpers/nts.ts";
import {
  chronyClientCheck,
  freeUdpPort,
  killAllPeers,
  type Ntpshield,
  startChronyServer,
  startNtpshield,
} from "../helpers/peers.ts";

const A = "127.0.40.1";
const B = "127.0.40.2";
const C = "127.0.40.3";

let dir: string;
let certs: NtsCertificates;
let ca: Buffer;

function ntsConfig(extra = ""): string {
  return [
    "[callgap]",
    "enabled = false",
    "[nts]",
    "enabled = true",
    `listen = "${A}:0"`,
    `certificate = "${certs.cert}"`,
    `key = "${certs.key}"`,
    `key-file = "${join(dir, "fleet.keys")}"`,
    "max-record = 256",
    "max-message = 1024",
    extra,
    "",
  ].join("\n");
}

/** The NTS-KE and NTP addresses a started server logged. */
function addressesOf(s: Ntpshield) {
  const rec = s.records.find((r) => r["msg"] === "listening")!;
  const [host, port] = String(rec["nts"]).split(":");
  const ntp = String((rec["addresses"] as string[])[0]).split(":");
  return { keHost: host!, kePort: Number(port), ntpHost: ntp[0]!, ntpPort: Number(ntp[1]) };
}

async function metrics(s: Ntpshield) {
  const res = await fetch(`${s.httpUrl}/metrics`);
  return parsePrometheus(await res.text());
}

async function packets(s: Ntpshield, reason: string): Promise<number> {
  return metric(await metrics(s), "ntpshield_packets_total", { reason });
}

async function keOutcome(s: Ntpshield, outcome: string): Promise<number> {
  return metric(await metrics(s), "ntpshield_nts_ke_total", { outcome });
}

/** Sends `packet` to host:port from `from` and returns the first reply within `waitMs`, or undefined. */
async function exchange(from: string, host: string, port: number, packet: Uint8Array, waitMs = 1000) {
  const sock = dgram.createSocket("udp4");
  await new Promise<void>((r) => sock.bind(0, from, () => r()));
  try {
    return await new Promise<Buffer | undefined>((resolve) => {
      const t = setTimeout(() => resolve(undefined), waitMs);
      sock.once("message", (m) => {
        clearTimeout(t);
        resolve(m);
      });
      sock.send(packet, port, host);
    });
  } finally {
    sock.close();
  }
}

function header(): Uint8Array {
  const h = new Uint8Array(48);
  h[0] = (4 << 3) | 3;
  h.set(randomBytes(8), 40);
  return h;
}

async function freeTcpPort(host: string): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, host, () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

let server: Ntpshield;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ntpshield-ntsT-"));
  certs = await makeNtsCertificates(dir, [A, B, C]);
  ca = readFileSync(certs.ca);
  server = await startNtpshield({
    listen: [`${A}:${await freeUdpPort(A)}`],
    configToml: ntsConfig(),
    http: `${A}:0`,
  });
});

after(async () => {
  await server?.stop();
  await killAllPeers();
  await rm(dir, { recursive: true, force: true });
});

describe("NTS interoperability (RFC 8915)", () => {
  it("chronyd 4.3 as an NTS client synchronises from ntpshield, every sample authenticated", async () => {
    const a = addressesOf(server);
    const before = await packets(server, "served_nts");
    const offset = await chronyClientCheck(a.ntpHost, a.ntpPort, 25_000, {
      serverOptions: `nts ntsport ${a.kePort}`,
      lines: [`ntstrustedcerts ${certs.ca}`, `ntsdumpdir ${dir}`],
    });
    assert.ok(Math.abs(offset) < 0.5, `offset ${offset} s`);
    // chrony gives up on an NTS source whose replies do not authenticate: a sample means they did.
    assert.ok((await packets(server, "served_nts")) - before >= 2);
    assert.ok((await keOutcome(server, "served")) >= 1);
    for (const r of [
      "kiss_ntsn_unknown_key",
      "kiss_ntsn_bad_cookie",
      "kiss_ntsn_bad_auth",
      "drop_nts_malformed",
    ])
      assert.equal(await packets(server, r), 0, r);
  });

  it("ntpshield's client: NTS-KE, the negotiated port, authenticated samples, cookies kept at eight", async () => {
    const a = addressesOf(server);
    const s = await ntsKeyExchange({ host: a.keHost, port: a.kePort, ca });
    assert.equal(s.aead, AEAD_AES_SIV_CMAC_256);
    assert.equal(s.cookies.length, 8);
    assert.equal(s.ntpHost, A);
    assert.equal(s.ntpPort, a.ntpPort, "Port Negotiation: the NTP port is not 123");
    for (let i = 0; i < 3; i++) {
      const r = await ntsQuery(s, s.ntpHost);
      assert.equal(r.outcome, "sample", r.reason);
      assert.ok(Math.abs(r.sample!.offsetMs) < 500);
      assert.equal(s.cookies.length, 8);
    }
  });

  it("ntpshield's client gets authenticated time from chronyd serving NTS", async () => {
    const ntpPort = await freeUdpPort(C);
    const kePort = await freeTcpPort(C);
    const chrony = await startChronyServer({
      host: C,
      port: ntpPort,
      lines: [
        `ntsserverkey ${certs.key}`,
        `ntsservercert ${certs.cert}`,
        `ntsport ${kePort}`,
        `ntsdumpdir ${dir}`,
        `bindaddress ${C}`,
      ],
    });
    try {
      const s = await ntsKeyExchange({ host: C, port: kePort, ca });
      assert.ok(s.cookies.length >= 1);
      assert.equal(s.ntpPort, ntpPort, "chrony names its NTP port when it is not 123");
      const r = await ntsQuery(s, s.ntpHost);
      assert.equal(r.outcome, "sample", `${r.reason}\n${chrony.output()}`);
      assert.ok(r.newCookies >= 1, "chrony's reply carried a new cookie, decrypted");
      // A tampered cookie: chrony answers NTS NAK, and the client reads it as one.
      s.cookies = s.cookies.map((c) => {
        const t = new Uint8Array(c);
        t[t.length - 1]! ^= 1;
        return t;
      });
      const nak = await ntsQuery(s, s.ntpHost);
      assert.equal(nak.outcome, "nak", nak.reason);
    } finally {
      await chrony.stop();
    }
  });
});

describe("the fleet: a shared key file and redirection through NTS-KE (RFC 8915 §4.1.7)", () => {
  it("a KE server hands out another server of the fleet, which opens its cookies", async () => {
    // B serves NTP with the fleet's key file; A's KE sends clients to B.
    const b = await startNtpshield({
      listen: [`${B}:${await freeUdpPort(B)}`],
      configToml: ntsConfig().replace(`${A}:0`, `${B}:0`),
      http: `${B}:0`,
    });
    try {
      const bAddr = addressesOf(b);
      const front = await startNtpshield({
        listen: [`${A}:${await freeUdpPort(A)}`],
        configToml: ntsConfig(`server = "${B}"\nport = ${bAddr.ntpPort}`),
        http: `${A}:0`,
      });
      try {
        const f = addressesOf(front);
        const s = await ntsKeyExchange({ host: f.keHost, port: f.kePort, ca });
        assert.equal(s.ntpHost, B);
        assert.equal(s.ntpPort, bAddr.ntpPort);
        const r = await ntsQuery(s, s.ntpHost);
        assert.equal(r.outcome, "sample", r.reason);
        assert.equal(r.address, B);
        assert.equal(await packets(b, "served_nts"), 1);
        assert.equal(await packets(front, "served_nts"), 0);
      } finally {
        await front.stop();
      }
    } finally {
      await b.stop();
    }
  });
});

describe("the fleet: a server past its redline sends new NTS clients elsewhere ([nts] shed-to-fleet, §8)", () => {
  it("names a peer while overload control withholds requests, and itself again once the flood is over", {
    timeout: 60_000,
  }, async () => {
    const b = await startNtpshield({
      listen: [`${B}:${await freeUdpPort(B)}`],
      configToml: ntsConfig().replace(`${A}:0`, `${B}:0`),
      http: `${B}:0`,
    });
    const floodSocks: dgram.Socket[] = [];
    try {
      const bAddr = addressesOf(b);
      const front = await startNtpshield({
        listen: [`${A}:${await freeUdpPort(A)}`],
        configToml:
          ntsConfig("shed-to-fleet = true") +
          `[fleet]\npeers = ["${B}:${bAddr.ntpPort}"]\n[overload]\nredline = 20\nperiod-min = 1\nperiod-max = 2\n`,
        http: `${A}:0`,
      });
      try {
        const f = addressesOf(front);
        // Under the redline: the KE names this server (no Server Negotiation record: the KE host itself).
        const calm = await ntsKeyExchange({ host: f.keHost, port: f.kePort, ca });
        assert.equal(calm.ntpHost, f.keHost);
        assert.equal(await keOutcome(front, "served_redirected"), 0);

        // A flood of plain requests from 100 sources, about 400 a second for at most 8 s: twenty times the
        // redline of either worker.
        for (let i = 0; i < 100; i++) {
          const sock = dgram.createSocket("udp4");
          await new Promise<void>((r) => sock.bind(0, `127.0.41.${i + 1}`, () => r()));
          floodSocks.push(sock);
        }
        const packet = new Uint8Array(48);
        packet[0] = 0x23;
        let flooding = true;
        const flood = (async () => {
          const end = Date.now() + 8000;
          for (let k = 0; flooding && Date.now() < end; k++) {
            floodSocks[k % 100]!.send(packet, f.ntpPort, A);
            if (k % 20 === 19) await new Promise((r) => setTimeout(r, 50));
          }
        })();
        const overloaded = async () => metric(await metrics(front), "ntpshield_overload_active") === 1;
        const t0 = Date.now();
        while (!(await overloaded())) {
          assert.ok(Date.now() - t0 < 6000, "the flood put the server past its redline");
          await new Promise((r) => setTimeout(r, 100));
        }
        const shed = await ntsKeyExchange({ host: f.keHost, port: f.kePort, ca });
        assert.equal(shed.ntpHost, B, "a peer of the fleet is named");
        assert.equal(shed.ntpPort, bAddr.ntpPort);
        assert.equal(await keOutcome(front, "served_redirected"), 1);
        // The peer opens the front's cookies (the fleet's key file) and answers with authenticated time.
        const r = await ntsQuery(shed, shed.ntpHost);
        assert.equal(r.outcome, "sample", r.reason);
        assert.equal(r.address, B);

        flooding = false;
        await flood;
        // Nothing arrives any more, so nothing recomputes overload control's state: the KE server takes a
        // state two windows old as over.
        const t1 = Date.now();
        let after = await ntsKeyExchange({ host: f.keHost, port: f.kePort, ca });
        while (after.ntpHost !== f.keHost) {
          assert.ok(Date.now() - t1 < 10_000, "itself again once the flood stopped");
          await new Promise((r) => setTimeout(r, 500));
          after = await ntsKeyExchange({ host: f.keHost, port: f.kePort, ca });
        }
        const redirected = await keOutcome(front, "served_redirected");
        assert.ok(redirected >= 1 && redirected <= 8, `${redirected} redirected`);
      } finally {
        await front.stop();
      }
    } finally {
      for (const s of floodSocks) s.close();
      await b.stop();
    }
  });
});

describe("hostile input", () => {
  const request = (extra: { critical: boolean; type: number; body: Uint8Array }[] = []) =>
    encodeKeRecords([
      u16Record(KE_NEXT_PROTOCOL, [0], true),
      u16Record(KE_AEAD_ALGORITHM, [15], true),
      ...extra,
      END_OF_MESSAGE,
    ]);

  function errorCodeOf(received: Buffer): number {
    const r = readKeMessage(received, { maxRecordBody: 1024, maxMessage: 4096 });
    assert.equal(r.status, "complete", `a whole answer: ${received.toString("hex")}`);
    const rec = r.status === "complete" ? r.records.find((x) => x.type === KE_ERROR) : undefined;
    assert.ok(rec, "an error record");
    return (rec.body[0]! << 8) | rec.body[1]!;
  }

  it("NTS-KE: an unknown critical record is answered error 0 and the connection closed", async () => {
    const a = addressesOf(server);
    const before = await keOutcome(server, "error_unrecognized_critical");
    const r = await rawKe(
      a.keHost,
      a.kePort,
      ca,
      request([{ critical: true, type: 0x1234, body: new Uint8Array(2) }]),
    );
    assert.equal(errorCodeOf(r.received), 0);
    assert.equal((await keOutcome(server, "error_unrecognized_critical")) - before, 1);
  });

  it("NTS-KE: a record over max-record, and a message over max-message, are answered error 1 (bad request)", async () => {
    const a = addressesOf(server);
    const before = await keOutcome(server, "error_bad_request");
    // 257 octets announced (max-record 256): refused from the record's header.
    const big = await rawKe(a.keHost, a.kePort, ca, new Uint8Array([0x00, KE_NEW_COOKIE, 0x01, 0x01]));
    assert.equal(errorCodeOf(big.received), 1);
    // Records within the limit but no end of message in 1024 octets.
    const cookie = { critical: false, type: KE_NEW_COOKIE, body: new Uint8Array(200) };
    const long = await rawKe(
      a.keHost,
      a.kePort,
      ca,
      encodeKeRecords([cookie, cookie, cookie, cookie, cookie, cookie]),
    );
    assert.equal(errorCodeOf(long.received), 1);
    // A broken rule of §4.1: NTPv4 offered without an AEAD record.
    const noAead = await rawKe(
      a.keHost,
      a.kePort,
      ca,
      encodeKeRecords([u16Record(KE_NEXT_PROTOCOL, [0], true), END_OF_MESSAGE]),
    );
    assert.equal(errorCodeOf(noAead.received), 1);
    assert.equal((await keOutcome(server, "error_bad_request")) - before, 3);
  });

  it("NTS-KE: a truncated request then a close is counted; no ALPN and TLS 1.2 are refused and counted", async () => {
    const a = addressesOf(server);
    const early = await keOutcome(server, "closed_early");
    const cut = await rawKe(a.keHost, a.kePort, ca, request().subarray(0, 7), { end: true });
    assert.equal(cut.received.length, 0);
    const noAlpn = await rawKe(a.keHost, a.kePort, ca, request(), { alpn: null });
    assert.equal(noAlpn.received.length, 0);
    const tls12 = await rawKe(a.keHost, a.kePort, ca, request(), { maxVersion: "TLSv1.2" });
    assert.ok(tls12.error, "TLS 1.2 refused");
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await keOutcome(server, "closed_early")) - early, 1);
    assert.ok((await keOutcome(server, "no_alpn")) >= 1);
    assert.ok((await keOutcome(server, "tls_failed")) >= 1);
    // None of it stopped the server: a good exchange still works.
    const s = await ntsKeyExchange({ host: a.keHost, port: a.kePort, ca });
    assert.equal(s.cookies.length, 8);
  });

  it("NTP: tampered cookie, unknown key, wrong authenticator: NTS NAK with the UID; malformed: dropped; replay: answered again", async () => {
    const a = addressesOf(server);
    const s = await ntsKeyExchange({ host: a.keHost, port: a.kePort, ca });
    const send = async (cookie: Uint8Array, c2s = s.c2s, from = "127.0.40.10") => {
      const uid = new Uint8Array(randomBytes(32));
      const req = buildNtsRequest(header(), uid, cookie, 0, c2s, new Uint8Array(randomBytes(16)));
      return { uid, req, reply: await exchange(from, A, a.ntpPort, req) };
    };
    const counts = async () =>
      Object.fromEntries(
        await Promise.all(
          [
            "served_nts",
            "kiss_ntsn_bad_cookie",
            "kiss_ntsn_unknown_key",
            "kiss_ntsn_bad_auth",
            "drop_nts_malformed",
          ].map(async (r) => [r, await packets(server, r)] as const),
        ),
      );
    const before = await counts();

    const tampered = new Uint8Array(s.cookies[0]!);
    tampered[70]! ^= 0x10;
    const t = await send(tampered);
    assert.ok(t.reply);
    const tc = checkNtsReply(t.reply, t.uid, s.s2c);
    assert.equal(!tc.ok && tc.nak, true, "NTS NAK");

    const foreign = sealCookie(
      new CookieKeys([newCookieKey([], 0, (n) => new Uint8Array(randomBytes(n)))]).current,
      {
        aead: 15,
        c2s: s.c2s,
        s2c: s.s2c,
      },
    );
    const u = await send(foreign);
    const uc = checkNtsReply(u.reply!, u.uid, s.s2c);
    assert.equal(!uc.ok && uc.nak, true);

    const w = await send(s.cookies[1]!, new Uint8Array(randomBytes(32)));
    const wc = checkNtsReply(w.reply!, w.uid, s.s2c);
    assert.equal(!wc.ok && wc.nak, true);

    const good = await send(s.cookies[2]!);
    assert.ok(checkNtsReply(good.reply!, good.uid, s.s2c).ok);
    // The same request again: the server keeps no state and answers it; only its UID's owner can use it.
    const again = await exchange("127.0.40.11", A, a.ntpPort, good.req);
    assert.ok(again && checkNtsReply(again, good.uid, s.s2c).ok);
    assert.equal(checkNtsReply(again, new Uint8Array(randomBytes(32)), s.s2c).ok, false);
    assert.ok(again.length <= good.req.length, "never larger than the request");

    // A cookie and a UID but no authenticator: dropped, no answer.
    const m = good.req.slice(0, 48 + 36 + 108);
    assert.equal(await exchange("127.0.40.12", A, a.ntpPort, m, 500), undefined);

    const after = await counts();
    assert.deepEqual(Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - before[k]!])), {
      served_nts: 2,
      kiss_ntsn_bad_cookie: 1,
      kiss_ntsn_unknown_key: 1,
      kiss_ntsn_bad_auth: 1,
      drop_nts_malformed: 1,
    });
  });
});
