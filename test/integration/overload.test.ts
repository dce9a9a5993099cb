// Overload control (paper §12, docs/defences-overload.md) against a real server on loopback: one worker
// with a redline of 300 requests a second, five mice polling every second, then a flood of about 1,000
// requests a second from 200 sources. The mice must all be answered; the flood must be partly withheld,
// by pools that rotate (nearly every source gets answers, and a withheld source is answered again later),
// without a single kiss; and the server must leave overload once the flood stops, saying so in its log.
// Bounded: a hard cap on the packets sent, and about 20 s in all.

import assert from "node:assert/strict";
import dgram from "node:dgram";
import { after, describe, test } from "node:test";
import { metric, type PromFamily, parsePrometheus, waitUntil } from "../helpers/monitor.ts";
import { freeUdpPort, killAllPeers, type Ntpshield, startNtpshield } from "../helpers/peers.ts";

after(killAllPeers);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const REDLINE = 300;
const MICE = 5;
const FLOOD_SOURCES = 200;
/** Requests a second from each flood source, so about 1,000 a second in all: three times the redline. */
const FLOOD_PER_SOURCE = 5;
const FLOOD_SECONDS = 11;
/** The flood's packets at its nominal rate, and a hard cap on them whatever the timers do. */
const FLOOD_PACKETS = FLOOD_SOURCES * FLOOD_PER_SOURCE * FLOOD_SECONDS;
const FLOOD_CAP = FLOOD_PACKETS + FLOOD_SOURCES * FLOOD_PER_SOURCE;
/** The mice's tags live above the flood's packet numbers. */
const MOUSE_TAG = 0x40000000;
/** Mice polls at most (about 20 s at one a second, with room). */
const MOUSE_POLLS = 40;

const OVERLOAD_ON = "overload: past the redline, withholding by class and pool";
const OVERLOAD_OFF = "overload: back under the redline";

/** A 48-byte NTPv4 client request whose transmit timestamp carries `tag` (the reply's origin echoes it). */
function request(tag: number): Buffer {
  const b = Buffer.alloc(48);
  b[0] = (4 << 3) | 3;
  b.writeUInt32BE(0xec000000, 40);
  b.writeUInt32BE(tag >>> 0, 44);
  return b;
}

async function udpSocket(address: string): Promise<dgram.Socket> {
  const s = dgram.createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, address, () => r()));
  return s;
}

async function readMetrics(server: Ntpshield): Promise<Map<string, PromFamily>> {
  const r = await fetch(`${server.httpUrl}/metrics`);
  assert.equal(r.status, 200);
  return parsePrometheus(await r.text());
}

describe("overload control with a real server (paper §12)", () => {
  let server: Ntpshield | undefined;
  const sockets: dgram.Socket[] = [];
  after(async () => {
    for (const s of sockets) s.close();
    await server?.stop();
  });

  test("past the redline: mice all answered, the flood withheld by rotating pools, never kissed, then left", {
    timeout: 60_000,
  }, async () => {
    const port = await freeUdpPort();
    server = await startNtpshield({
      listen: [`127.0.0.1:${port}`],
      threads: 1,
      configToml: [
        // The call-gap off: with it, each flood source asking 5 times a second would be gapped down to one
        // request every few seconds (about 100 a second in all, under the redline) before overload control
        // sees it, since only what would be answered counts as demand. Off, the flood is 200 polite-looking
        // sources, each passing any per-client defence: the Wisconsin case overload control is for (§3).
        "[callgap]",
        "enabled = false",
        "[overload]",
        `redline = ${REDLINE}`,
        // Mice in seconds rather than minutes: a client whose averaged interval is at least 0.5 s.
        "mouse-interval = 0.5",
        // Short periods, so that the pools rotate several times within the flood.
        "period-min = 1",
        "period-max = 2",
      ].join("\n"),
    });
    const s = server;

    // --- the mice: 127.3.0.1-5, one request a second each, every reply matched to its request by tag.
    const mouseSent = new Float64Array(MICE * MOUSE_POLLS).fill(-1); // when each poll was sent (ms)
    const mouseAnswered = new Uint8Array(MICE * MOUSE_POLLS);
    let stopMice = false;
    const mice: Promise<void>[] = [];
    for (let m = 0; m < MICE; m++) {
      const sock = await udpSocket(`127.3.0.${m + 1}`);
      sockets.push(sock);
      sock.on("message", (b: Buffer) => {
        const i = b.readUInt32BE(28) - MOUSE_TAG;
        if (b[1] !== 0 && i >= 0 && i < mouseAnswered.length) mouseAnswered[i] = 1;
      });
      mice.push(
        (async () => {
          // A whole second between polls even when the timers run late, so the mice stay mice.
          for (let poll = 0; poll < MOUSE_POLLS && !stopMice; poll++) {
            const i = m * MOUSE_POLLS + poll;
            mouseSent[i] = Date.now();
            sock.send(request(MOUSE_TAG + i), port, "127.0.0.1");
            await sleep(1000);
          }
        })(),
      );
    }
    const answeredBy = (m: number) => mouseAnswered.subarray(m * MOUSE_POLLS, (m + 1) * MOUSE_POLLS);
    await waitUntil(
      "each mouse answered 3 times before the flood",
      () =>
        Array.from({ length: MICE }, (_, m) => answeredBy(m).reduce((a, b) => a + b, 0)).every((n) => n >= 3),
      10_000,
    );

    // --- the flood: 127.2.x.y, packet k from source k % 200, so each source asks every 200 ms.
    const floodSocks: dgram.Socket[] = [];
    for (let i = 0; i < FLOOD_SOURCES; i++) {
      floodSocks.push(await udpSocket(`127.2.${1 + Math.floor(i / 100)}.${1 + (i % 100)}`));
    }
    sockets.push(...floodSocks);
    const floodSent = new Float64Array(FLOOD_CAP);
    const floodAnswered = new Uint8Array(FLOOD_CAP);
    let kisses = 0;
    for (const sock of floodSocks) {
      sock.on("message", (b: Buffer) => {
        if (b[1] === 0) {
          kisses++; // stratum 0: a kiss-o'-death
          return;
        }
        const k = b.readUInt32BE(28);
        if (b.readUInt32BE(24) === 0xec000000 && k < FLOOD_CAP) floodAnswered[k] = 1;
      });
    }

    // /metrics every half second meanwhile: when overload was first seen active.
    let overloadSeenAt = 0;
    let polling = true;
    let pollError: unknown;
    const poller = (async () => {
      while (polling) {
        try {
          const active = metric(await readMetrics(s), "ntpshield_overload_active");
          if (active === 1 && overloadSeenAt === 0) overloadSeenAt = Date.now();
        } catch (e) {
          pollError ??= e;
        }
        await sleep(500);
      }
    })();

    const floodStart = Date.now();
    let sent = 0;
    while (sent < FLOOD_CAP && Date.now() - floodStart < FLOOD_SECONDS * 1000) {
      // What is due by now at 1,000 a second, at most 50 at once so that a late timer does not burst.
      const due = Math.min(
        FLOOD_CAP,
        Math.floor(((Date.now() - floodStart) * FLOOD_SOURCES * FLOOD_PER_SOURCE) / 1000),
        sent + 50,
      );
      for (; sent < due; sent++) {
        floodSent[sent] = Date.now();
        floodSocks[sent % FLOOD_SOURCES]!.send(request(sent), port, "127.0.0.1");
      }
      await sleep(10);
    }
    const floodEnd = Date.now();
    await sleep(500); // the last replies

    // --- after the flood: overload is left within a few seconds, and said so.
    await waitUntil("the log line saying overload is left", () =>
      s.records.some((r) => r["msg"] === OVERLOAD_OFF),
    );
    await waitUntil(
      "ntpshield_overload_active 0",
      async () => metric(await readMetrics(s), "ntpshield_overload_active") === 0,
    );
    polling = false;
    await poller;
    assert.equal(pollError, undefined, "every read of /metrics succeeded");
    stopMice = true;
    await Promise.all(mice);
    const m = await readMetrics(s);
    const how = `flood sent ${sent} in ${floodEnd - floodStart} ms; log:\n${s.logs.filter((l) => l.includes("overload")).join("\n")}`;

    // Overload was entered during the flood, in /metrics and in the log (a warning with its figures).
    assert.ok(sent >= FLOOD_PACKETS * 0.8, how);
    assert.ok(overloadSeenAt > floodStart && overloadSeenAt < floodEnd, `overload never seen active: ${how}`);
    const on = s.records.find((r) => r["msg"] === OVERLOAD_ON);
    assert.ok(on, how);
    assert.equal(on["level"], "warn");
    assert.equal(on["capacity"], REDLINE);
    assert.equal(metric(m, "ntpshield_overload_capacity_requests_per_second"), REDLINE);
    assert.ok(metric(m, "ntpshield_overload_transitions_total", { direction: "entered" }) >= 1);
    assert.ok(metric(m, "ntpshield_overload_transitions_total", { direction: "left" }) >= 1);

    // Every mouse request sent during the flood was answered, and no mouse was ever withheld.
    let mousePolls = 0;
    const unanswered: string[] = [];
    for (let i = 0; i < mouseSent.length; i++) {
      if (mouseSent[i]! < floodStart || mouseSent[i]! > floodEnd) continue;
      mousePolls++;
      if (!mouseAnswered[i]) {
        unanswered.push(
          `mouse ${Math.floor(i / MOUSE_POLLS)} poll ${i % MOUSE_POLLS} at +${mouseSent[i]! - floodStart} ms`,
        );
      }
    }
    assert.ok(mousePolls >= MICE * (FLOOD_SECONDS - 2), `mouse polls during the flood: ${mousePolls}`);
    assert.deepEqual(unanswered, [], how);
    assert.equal(metric(m, "ntpshield_overload_withheld_total", { class: "mice" }), 0);

    // The flood was partly withheld: dropped as drop_overload, counted against the known class.
    const dropped = metric(m, "ntpshield_packets_total", { reason: "drop_overload" });
    assert.ok(dropped > 0, how);
    assert.ok(metric(m, "ntpshield_overload_withheld_total", { class: "known" }) > 0, how);

    // Never kissed: no KoD reached the flood's sockets, and the server counts none (the call-gap is off, so
    // not even RATE kisses; a withheld request is dropped, never kissed).
    assert.equal(kisses, 0);
    assert.equal(metric(m, "ntpshield_packets_total", { reason: "kiss_rate" }), 0);
    assert.equal(metric(m, "ntp_server_kod_packets_total", { code: "RATE" }), 0);

    // The withholding rotates. Per source, in order, whether each request sent while overload was active
    // (from when /metrics first showed it to the end of the flood) was answered.
    const bySource: number[][] = Array.from({ length: FLOOD_SOURCES }, () => []);
    let inOverload = 0;
    let answeredInOverload = 0;
    for (let k = 0; k < sent; k++) {
      if (floodSent[k]! < overloadSeenAt) continue;
      bySource[k % FLOOD_SOURCES]!.push(floodAnswered[k]!);
      inOverload++;
      answeredInOverload += floodAnswered[k]!;
    }
    // Part of the flood answered, part withheld: the redline is about 30% of it.
    const share = answeredInOverload / inOverload;
    assert.ok(
      share > 0.05 && share < 0.75,
      `answered share of the flood in overload ${share.toFixed(3)}: ${how}`,
    );
    // Nearly every source got answers while overloaded: no pool is withheld for ever.
    const servedSources = bySource.filter((a) => a.includes(1)).length;
    assert.ok(servedSources >= FLOOD_SOURCES * 0.9, `sources answered in overload: ${servedSources}: ${how}`);
    // A withheld source is answered again later: the run of withheld pools moves on.
    const cameBack = bySource.filter((a) => {
      const firstWithheld = a.indexOf(0);
      return firstWithheld >= 0 && a.indexOf(1, firstWithheld) > firstWithheld;
    }).length;
    assert.ok(
      cameBack >= FLOOD_SOURCES * 0.75,
      `sources answered again after being withheld: ${cameBack}: ${how}`,
    );
    // And withheld for a whole period at a time, not packet by packet: at 5 requests a second and periods
    // of 1-2 s, a withheld source meets runs of at least 5 unanswered requests (about 15 on average, its pool
    // being withheld for several periods while the run of pools passes over it). Dropping the same share at
    // random would give runs of 1.5-3.
    let runs = 0;
    let runLength = 0;
    for (const a of bySource) {
      for (let i = 0; i < a.length; i++) {
        if (a[i] === 1) continue;
        runLength++;
        if (i === 0 || a[i - 1] === 1) runs++;
      }
    }
    assert.ok(runs > 0 && runLength / runs >= 5, `mean run of withheld requests ${runLength / runs}: ${how}`);
  });
});
