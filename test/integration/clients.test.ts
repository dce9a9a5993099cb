// Interoperability: real NTP clients (chrony, ntplib, NTPsec's ntpdig) accept the time ntpshield serves on
// loopback (MISSION.md part 1: "answers client requests from every common client"). The peers come from
// scripts/install-peers.sh; a missing one fails these tests.

import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { after, before, describe, test } from "node:test";
import {
  chronyClientCheck,
  freeUdpPort,
  killAllPeers,
  type Ntpshield,
  ntpdigQuery,
  ntplibQuery,
  openPort123Sandbox,
  type PortSandbox,
  startNtpshield,
} from "../helpers/peers.ts";

/** Loopback offsets are microseconds; 0.1 s only catches a wrong era, unit or byte order, not jitter. */
const MAX_OFFSET_S = 0.1;
/** The refid "LOCL" of a local-clock server, as the 32-bit field (RFC 5905 §7.3). */
const LOCL = 0x4c4f434c;

after(killAllPeers);

describe("ntpshield serving its local clock at stratum 10", () => {
  let server: Ntpshield;
  let port: number;

  before(async () => {
    port = await freeUdpPort();
    server = await startNtpshield({
      listen: [`127.0.0.1:${port}`],
      threads: 2,
      configToml: '[clock]\nstratum = 10\nrefid = "LOCL"\n',
    });
  });
  after(async () => {
    await server?.stop();
  });

  test("ntplib (NTPv4) accepts it: stratum 10, leap 0, mode 4, refid LOCL", { timeout: 15_000 }, async () => {
    const r = await ntplibQuery("127.0.0.1", port, { version: 4 });
    assert.equal(r.version, 4);
    assert.equal(r.mode, 4);
    assert.equal(r.stratum, 10);
    assert.equal(r.leap, 0);
    assert.equal(r.refidRaw, LOCL);
    assert.ok(Math.abs(r.offset) < MAX_OFFSET_S, `offset ${r.offset} s`);
    assert.ok(r.delay >= 0 && r.delay < MAX_OFFSET_S, `delay ${r.delay} s`);
    // The origin field echoes the request's transmit time (RFC 5905 §8), which ntplib took from our clock
    // just before sending; and the server transmits after it receives.
    assert.ok(
      Math.abs(r.destTime - r.origTime) < MAX_OFFSET_S,
      `origin ${r.origTime}, received ${r.destTime}`,
    );
    assert.ok(r.txTime >= r.recvTime, `transmit ${r.txTime} before receive ${r.recvTime}`);
  });

  test("ntplib (NTPv3) accepts it and the reply echoes version 3", { timeout: 15_000 }, async () => {
    const r = await ntplibQuery("127.0.0.1", port, { version: 3 });
    assert.equal(r.version, 3);
    assert.equal(r.mode, 4);
    assert.equal(r.stratum, 10);
    assert.equal(r.leap, 0);
    assert.ok(Math.abs(r.offset) < MAX_OFFSET_S, `offset ${r.offset} s`);
  });

  test("chronyd as a client accepts it (offset under 0.1 s)", { timeout: 20_000 }, async () => {
    const offset = await chronyClientCheck("127.0.0.1", port, 15_000);
    assert.ok(Math.abs(offset) < MAX_OFFSET_S, `chrony measured ${offset} s`);
  });

  test("stops cleanly on SIGTERM", { timeout: 15_000 }, async () => {
    const code = await server.stop();
    assert.equal(code, 0, `exit code ${code}; stderr: ${server.stderr()}`);
    assert.ok(
      server.records.some((r) => r["msg"] === "stopped"),
      `no "stopped" log line in:\n${server.logs.join("\n")}`,
    );
  });
});

describe("ntpshield configured at [clock] stratum = 3", () => {
  let server: Ntpshield;
  let port: number;

  before(async () => {
    port = await freeUdpPort();
    server = await startNtpshield({
      listen: [`127.0.0.1:${port}`],
      configToml: '[clock]\nstratum = 3\nrefid = "10.1.2.3"\n',
    });
  });
  after(async () => {
    await server?.stop();
  });

  test("ntplib sees stratum 3 and the configured refid", { timeout: 15_000 }, async () => {
    const r = await ntplibQuery("127.0.0.1", port);
    assert.equal(r.stratum, 3);
    assert.equal(r.leap, 0);
    assert.equal(r.refid, "10.1.2.3");
  });

  test("chronyd accepts a stratum-3 server", { timeout: 20_000 }, async () => {
    const offset = await chronyClientCheck("127.0.0.1", port, 15_000);
    assert.ok(Math.abs(offset) < MAX_OFFSET_S, `chrony measured ${offset} s`);
  });
});

describe("ntpshield on IPv6 loopback", () => {
  let server: Ntpshield | undefined;
  let port: number;
  let hasIPv6 = false;

  before(async () => {
    // ::1 is missing where IPv6 is disabled (some containers); that is the machine, not ntpshield.
    const probe = createSocket("udp6");
    hasIPv6 = await new Promise<boolean>((res) => {
      probe.once("error", () => res(false));
      probe.bind(0, "::1", () => res(true));
    });
    probe.close();
    if (!hasIPv6) return;
    port = await freeUdpPort("::1");
    server = await startNtpshield({ listen: [`[::1]:${port}`, `127.0.0.1:${port}`] });
  });
  after(async () => {
    await server?.stop();
  });

  test("ntplib and chronyd accept it over ::1", { timeout: 25_000 }, async (t) => {
    if (!hasIPv6) {
      t.skip("no ::1 on this machine");
      return;
    }
    const r = await ntplibQuery("::1", port);
    assert.equal(r.mode, 4);
    assert.equal(r.leap, 0);
    assert.ok(Math.abs(r.offset) < MAX_OFFSET_S, `offset ${r.offset} s`);
    const offset = await chronyClientCheck("::1", port, 15_000);
    assert.ok(Math.abs(offset) < MAX_OFFSET_S, `chrony measured ${offset} s`);
  });
});

describe("ntpshield on port 123 for NTPsec's ntpdig", () => {
  // ntpdig (NTPsec 1.2.2) has no port option: it always asks port 123. openPort123Sandbox gives a loopback
  // address where that port is ours (root) or a private network namespace (not root).
  let sandbox: PortSandbox;
  let server: Ntpshield;

  before(async () => {
    sandbox = await openPort123Sandbox();
    server = await startNtpshield({ listen: [`${sandbox.host}:123`], sandbox });
  });
  after(async () => {
    await server?.stop();
    await sandbox?.close();
  });

  test("ntpdig accepts it: stratum 10, no leap, offset under 0.1 s", { timeout: 20_000 }, async () => {
    const r = await ntpdigQuery(sandbox.host, { sandbox });
    assert.equal(r.stratum, 10, r.line);
    assert.equal(r.leap, "no-leap", r.line);
    assert.ok(Math.abs(r.offset) < MAX_OFFSET_S, r.line);
  });
});
