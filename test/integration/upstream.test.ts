// ntpshield as a secondary server following a real chronyd (MISSION.md part 1: "stratum, refid, root
// delay/dispersion come from upstream servers that ntpshield itself follows"), and saying so when it has
// lost its upstream: leap indicator 3 (alarm) and stratum 16 (RFC 5905 §7.3), which real clients refuse.

import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import {
  type ChronyServer,
  chronyClientCheck,
  freeUdpPort,
  killAllPeers,
  type Ntpshield,
  ntplibQuery,
  PeerError,
  startChronyServer,
  startNtpshield,
  waitFor,
} from "../helpers/peers.ts";

const HOLD_TIME_S = 16;
const MAX_OFFSET_S = 0.1;

after(killAllPeers);

// These tests poll the server every 250 ms from one address to watch the clock change: the call-gap would
// rightly kiss such a client (test/integration/defences.test.ts tests that), so it is off here.
function upstreamConfig(upstreamPort: number): string {
  return (
    `[clock]\nupstream = ["127.0.0.1:${upstreamPort}"]\nhold-time = ${HOLD_TIME_S}\npoll = 64\n` +
    "[callgap]\nenabled = false\n"
  );
}

/** chronyd -Q must not take time from an unsynchronised server: it gives up within its time limit. */
async function assertChronyRefuses(port: number): Promise<void> {
  await assert.rejects(chronyClientCheck("127.0.0.1", port, 6_000), (err: unknown) => {
    assert.ok(err instanceof PeerError, String(err));
    assert.notEqual(err.code, "PEER_MISSING", err.message);
    return true;
  });
}

describe("ntpshield following chronyd (local stratum 5)", () => {
  let chrony: ChronyServer | undefined;
  let server: Ntpshield | undefined;
  after(async () => {
    await server?.stop();
    await chrony?.stop();
  });

  test("serves stratum 6 with refid 127.0.0.1, then leap 3 / stratum 16 once chrony is gone for the hold-time", {
    timeout: 60_000,
  }, async () => {
    const chronyPort = await freeUdpPort();
    chrony = await startChronyServer({ port: chronyPort, stratum: 5 });
    const port = await freeUdpPort();
    server = await startNtpshield({ listen: [`127.0.0.1:${port}`], configToml: upstreamConfig(chronyPort) });
    const listeningAt = Date.now();

    // The first upstream poll goes out within a second of start; poll = 64 s means no second one here.
    const synced = await waitFor(
      "ntpshield to report stratum 6",
      async () => {
        const r = await ntplibQuery("127.0.0.1", port, { timeoutS: 1 });
        return r.stratum === 6 ? r : undefined;
      },
      10_000,
      250,
    );
    assert.equal(synced.leap, 0);
    // RFC 5905 §7.3: a secondary server's refid is its upstream's IPv4 address.
    assert.equal(synced.refid, "127.0.0.1");
    assert.ok(Math.abs(synced.offset) < MAX_OFFSET_S, `offset ${synced.offset} s`);
    // Root delay grows by the path to chrony, never shrinks below chrony's own (0 for a local clock).
    assert.ok(synced.rootDelay >= 0 && synced.rootDelay < MAX_OFFSET_S, `root delay ${synced.rootDelay} s`);

    // A real client takes the secondary's time.
    const offset = await chronyClientCheck("127.0.0.1", port, 15_000);
    assert.ok(Math.abs(offset) < MAX_OFFSET_S, `chrony measured ${offset} s`);

    await chrony.stop();
    chrony = undefined;

    // Within the hold-time it keeps serving what it had: no alarm yet (hold-time counts from the last sample,
    // taken after listeningAt, so until listeningAt + 16 s at least).
    if (Date.now() < listeningAt + (HOLD_TIME_S - 2) * 1000) {
      const held = await ntplibQuery("127.0.0.1", port, { timeoutS: 1 });
      assert.equal(held.leap, 0, "alarm raised before the hold-time ran out");
      assert.equal(held.stratum, 6);
    }

    const alarmed = await waitFor(
      "ntpshield to raise the leap alarm",
      async () => {
        const r = await ntplibQuery("127.0.0.1", port, { timeoutS: 1 });
        return r.leap === 3 ? r : undefined;
      },
      HOLD_TIME_S * 1000 + 8_000,
      250,
    );
    const alarmAfterS = (Date.now() - listeningAt) / 1000;
    assert.ok(alarmAfterS >= HOLD_TIME_S - 1, `alarm after ${alarmAfterS} s, hold-time is ${HOLD_TIME_S} s`);
    // ntplib shows the raw stratum field: 16 means unsynchronised.
    assert.equal(alarmed.stratum, 16);
    assert.equal(alarmed.mode, 4, "it still answers, as a server");

    await assertChronyRefuses(port);
  });
});

describe("ntpshield whose only upstream never answers", () => {
  let server: Ntpshield | undefined;
  after(async () => {
    await server?.stop();
  });

  test("answers with leap 3 and stratum 16 from the start, and chronyd refuses it", {
    timeout: 30_000,
  }, async () => {
    const deadPort = await freeUdpPort();
    const port = await freeUdpPort();
    server = await startNtpshield({ listen: [`127.0.0.1:${port}`], configToml: upstreamConfig(deadPort) });

    const r = await ntplibQuery("127.0.0.1", port);
    assert.equal(r.leap, 3);
    assert.equal(r.stratum, 16);
    assert.equal(r.mode, 4);

    await assertChronyRefuses(port);

    // Still unsynchronised after a few more seconds: nothing but an upstream sample can clear the alarm.
    const later = await ntplibQuery("127.0.0.1", port);
    assert.equal(later.leap, 3);
    assert.equal(later.stratum, 16);
  });
});
