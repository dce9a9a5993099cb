// Broadcast mode (paper §9, RFC 5905 mode 5) for real: `ntpshield serve` with [broadcast] sending to
// 224.0.1.1 and `ntpshield sync --broadcast` calibrating by unicast and then listening, inside a private
// network namespace whose loopback carries multicast (224.0.0.0/4 routed to lo there only): nothing is
// sent on the machine's interfaces.

import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { MODE_BROADCAST } from "../../src/protocol/index.ts";
import {
  calibrationsOf,
  fetchIn,
  jsonEvents,
  multicastSandbox,
  ntpshieldIn,
  samplesOf,
  vethSandbox,
} from "../helpers/multicast.ts";
import {
  killAllPeers,
  type Ntpshield,
  type NtpshieldOptions,
  type PortSandbox,
  run,
  startNtpshield,
  waitFor,
} from "../helpers/peers.ts";

after(killAllPeers);

/** Runs a Node snippet inside the sandbox (argv after it in process.argv[1...]); its stdout. */
async function nodeIn(sandbox: PortSandbox, code: string, args: string[], timeoutMs: number) {
  return run(sandbox.wrap([process.execPath, "--input-type=module", "-e", code, ...args]), timeoutMs);
}

/** Joins GROUP on PORT (via 127.0.0.1) and prints the first datagram as hex with its source, or "none". */
const LISTEN = `
import dgram from "node:dgram";
const [group, port, ms] = process.argv.slice(1);
const s = dgram.createSocket({ type: "udp4", reuseAddr: true });
s.bind(Number(port), group, () => s.addMembership(group, "127.0.0.1"));
s.on("message", (m, r) => { console.log(JSON.stringify({ hex: m.toString("hex"), from: r.address, at: Date.now() })); process.exit(0); });
setTimeout(() => { console.log("none"); process.exit(0); }, Number(ms));
`;

function broadcastConfig(extra = ""): string {
  return (
    '[broadcast]\ninterval = "1s"\n' +
    '[[broadcast.destination]]\naddress = "224.0.1.1"\nttl = 1\ninterface = "127.0.0.1"\n' +
    extra
  );
}

/**
 * The sandbox of one describe block's tests (opened before them) and the server a test starts in it with
 * `start`: both gone after them.
 */
function sandboxAndServer(open: () => Promise<PortSandbox> = multicastSandbox) {
  const env = {
    server: undefined,
    start: async (o: Omit<NtpshieldOptions, "sandbox">): Promise<Ntpshield> => {
      env.server = await startNtpshield({ ...o, sandbox: env.sandbox });
      return env.server;
    },
  } as {
    sandbox: PortSandbox;
    server: Ntpshield | undefined;
    start: (o: Omit<NtpshieldOptions, "sandbox">) => Promise<Ntpshield>;
  };
  before(async () => {
    env.sandbox = await open();
  });
  after(async () => {
    await env.server?.stop();
    await env.sandbox?.close();
  });
  return env;
}

function metric(text: string, name: string, reason: string): number {
  const m = new RegExp(`^${name}\\{reason="${reason}"\\} (\\d+)$`, "m").exec(text);
  assert.ok(m, `${name}{reason="${reason}"} in\n${text}`);
  return Number(m[1]);
}

describe("broadcast server and broadcast client in a namespace", () => {
  const env = sandboxAndServer();

  test("serve sends mode 5 to 224.0.1.1 with its time and state, counted on /metrics", {
    timeout: 30_000,
  }, async () => {
    const { sandbox } = env;
    const server = await env.start({
      listen: ["127.0.0.1:123"],
      // Broadcasts every second here (64 s in service), so each calibration pair's request comes a second
      // after the last, from the one address of every client in these tests: the call-gap would rightly kiss
      // that (the interplay is the call-gap's own tests' business), so it is off.
      configToml: `[clock]\nstratum = 3\nrefid = "GPS"\n[callgap]\nenabled = false\n${broadcastConfig()}`,
    });
    const r = await nodeIn(sandbox, LISTEN, ["224.0.1.1", "123", "5000"], 10_000);
    assert.notEqual(r.stdout.trim(), "none", `no broadcast heard: ${r.output}\n${server.stderr()}`);
    const got = JSON.parse(r.stdout) as { hex: string; from: string; at: number };
    const p = Buffer.from(got.hex, "hex");
    assert.equal(p.length, 48);
    assert.equal(p[0]! & 7, MODE_BROADCAST);
    assert.equal(p[0]! >> 6, 0, "leap: no warning");
    assert.equal(p[1], 3, "stratum");
    assert.equal(p.subarray(12, 16).toString("latin1"), "GPS\0");
    assert.ok(
      p.subarray(24, 40).every((b) => b === 0),
      "origin and receive are zero",
    );
    const t3 = (p.readUInt32BE(40) - 2_208_988_800) * 1000 + (p.readUInt32BE(44) / 2 ** 32) * 1000;
    assert.ok(Math.abs(t3 - got.at) < 1000, `transmit ${t3} vs heard at ${got.at}`);
    assert.equal(got.from, "127.0.0.1", "sent from the interface configured");
    const m = await fetchIn(sandbox, `${server.httpUrl}/metrics`);
    assert.ok(metric(m.stdout, "ntpshield_broadcast_packets_total", "sent") >= 1, m.output);
    assert.equal(metric(m.stdout, "ntpshield_broadcast_packets_total", "withheld_unsynchronised"), 0);
  });

  test("sync --broadcast calibrates by unicast with the broadcaster, then takes its broadcasts", {
    timeout: 30_000,
  }, async () => {
    const { sandbox, server } = env;
    assert.ok(server, "the server of the previous test");
    const r = await ntpshieldIn(
      sandbox,
      ["sync", "--broadcast", "224.0.1.1", "--interface", "127.0.0.1", "--count", "3", "--json"],
      20_000,
    );
    assert.equal(r.code, 0, r.output);
    const events = jsonEvents(r.stdout);
    const kinds = events.map((e) => e["kind"]);
    assert.deepEqual(kinds.slice(0, 2), ["listening", "calibrating"], r.stdout);
    // Three broadcast and unicast pairs, each one exchange; the last completes the calibration.
    const pairs = events.filter((e) => e["kind"] === "calibrated");
    assert.equal(pairs.length, 3, r.stdout);
    assert.ok(pairs.slice(0, 2).every((e) => e["delayMs"] === undefined));
    const cal = pairs[2]!;
    assert.ok(kinds.indexOf("sample") > events.indexOf(cal), "listening only once calibrated");
    assert.equal(cal["server"], "127.0.0.1");
    // On loopback both paths are well under a few ms, and both clocks are this machine's.
    assert.ok(Math.abs(cal["offsetMs"] as number) < 5, `unicast offset ${cal["offsetMs"]}`);
    assert.ok(Math.abs(cal["delayMs"] as number) < 20, `broadcast delay ${cal["delayMs"]}`);
    const samples = samplesOf(events);
    assert.equal(samples.length, 3);
    for (const s of samples) {
      assert.ok(Math.abs(s["offsetMs"] as number) < 20, `offset ${s["offsetMs"]}`);
      assert.equal(s["stratum"], 3);
    }
    // The unicast calibration reached the server as a client request.
    const m = await fetchIn(sandbox, `${server.httpUrl}/metrics`);
    assert.ok(
      Number(/^ntpshield_packets_total\{reason="served_client"\} (\d+)$/m.exec(m.stdout)?.[1]) >= 3,
      m.stdout,
    );
  });

  test("broadcasts from a server it could not calibrate with are ignored", { timeout: 30_000 }, async () => {
    const { sandbox } = env;
    // A sender of well-formed mode 5 packets from 127.0.0.5, where nobody answers unicast requests.
    const FAKE = `
import dgram from "node:dgram";
const s = dgram.createSocket("udp4");
s.bind(0, "127.0.0.5", () => {
  s.setMulticastInterface("127.0.0.1");
  setInterval(() => {
    const b = Buffer.alloc(48);
    b[0] = (4 << 3) | 5; b[1] = 1; b.write("FAKE", 12, "latin1");
    const t = Date.now() + 5000; // five seconds ahead
    b.writeUInt32BE(Math.floor(t / 1000) + 2208988800, 40);
    s.send(b, 123, "224.0.1.1");
  }, 200);
});
setTimeout(() => process.exit(0), 9000);
`;
    const fake = nodeIn(sandbox, FAKE, [], 15_000);
    const r = await ntpshieldIn(
      sandbox,
      [
        "sync",
        "--broadcast",
        "224.0.1.1",
        "--interface",
        "127.0.0.1",
        "--timeout",
        "0.5",
        "--count",
        "4",
        "--json",
        "--verbose",
      ],
      20_000,
    );
    await fake;
    assert.equal(r.code, 0, r.output);
    const events = jsonEvents(r.stdout);
    const failed = events.filter((e) => e["kind"] === "calibration-failed");
    assert.ok(
      failed.some((e) => e["server"] === "127.0.0.5"),
      `no failed calibration of the fake:\n${r.stdout}`,
    );
    const samples = samplesOf(events);
    assert.equal(samples.length, 4);
    for (const s of samples) {
      assert.equal(s["server"], "127.0.0.1", "only the calibrated server's broadcasts give time");
      assert.ok(Math.abs(s["offsetMs"] as number) < 20);
    }
    assert.ok(
      events.some((e) => e["kind"] === "ignored" && e["server"] === "127.0.0.5"),
      "the fake's broadcasts were seen and ignored",
    );
  });
});

describe("an unsynchronised server does not broadcast", () => {
  const env = sandboxAndServer();

  test("leap alarm (its upstream unreachable): nothing on the group, withheld on /metrics", {
    timeout: 30_000,
  }, async () => {
    const { sandbox } = env;
    const server = await env.start({
      listen: ["127.0.0.1:123"],
      // Nothing answers there: the server starts, and stays, unsynchronised.
      configToml: `[clock]\nupstream = ["127.0.60.9:123"]\n${broadcastConfig()}`,
    });
    const r = await nodeIn(sandbox, LISTEN, ["224.0.1.1", "123", "3500"], 10_000);
    assert.equal(r.stdout.trim(), "none", `heard: ${r.stdout}`);
    const m = await fetchIn(sandbox, `${server.httpUrl}/metrics`);
    assert.equal(metric(m.stdout, "ntpshield_broadcast_packets_total", "sent"), 0);
    assert.ok(
      metric(m.stdout, "ntpshield_broadcast_packets_total", "withheld_unsynchronised") >= 2,
      m.stdout,
    );
  });
});

describe("subnet broadcast and IPv6 multicast over a veth pair", () => {
  const env = sandboxAndServer(vethSandbox);

  const listen = async (group: string, extra: string[]) => {
    const r = await ntpshieldIn(
      env.sandbox,
      ["sync", "--broadcast", group, ...extra, "--count", "2", "--json"],
      20_000,
    );
    assert.equal(r.code, 0, `${r.output}\n${env.server?.stderr()}`);
    return jsonEvents(r.stdout);
  };

  test("192.0.2.255 (kind broadcast) and ff02::101 (hop limit 1, sent from mcT0): calibrated and listened to", {
    timeout: 60_000,
  }, async () => {
    await env.start({
      listen: ["192.0.2.1:123", "[2001:db8::1]:123"],
      http: "off",
      configToml:
        '[callgap]\nenabled = false\n[broadcast]\ninterval = "1s"\n' +
        '[[broadcast.destination]]\naddress = "192.0.2.255"\nkind = "broadcast"\ninterface = "192.0.2.1"\n' +
        '[[broadcast.destination]]\naddress = "ff02::101"\nttl = 1\ninterface = "2001:db8::1%mcT0"\n',
    });
    for (const [group, extra, source] of [
      ["192.0.2.255", [], "192.0.2.1"],
      ["[ff02::101%mcT1]", ["--interface", "::%mcT1"], "2001:db8::1"],
    ] as const) {
      const events = await listen(group, [...extra]);
      const done = calibrationsOf(events)[0];
      assert.ok(done, JSON.stringify(events));
      assert.equal(done["server"], source);
      const samples = samplesOf(events);
      assert.equal(samples.length, 2);
      for (const s of samples) {
        assert.equal(s["server"], source);
        assert.ok(Math.abs(s["offsetMs"] as number) < 20, `${group}: offset ${s["offsetMs"]}`);
      }
    }
  });
});

describe("[broadcast] on SIGHUP", () => {
  const env = sandboxAndServer();
  let dir: string | undefined;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ntpshield-mcast-reload-"));
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("a reload starts broadcasting, and the next one stops it", { timeout: 60_000 }, async () => {
    const { sandbox } = env;
    const file = join(dir!, "ntpshield.toml");
    await writeFile(file, "[clock]\nstratum = 3\n");
    const server = await env.start({
      listen: ["127.0.0.1:123"],
      extraArgs: ["--config", file],
    });
    const hear = async () =>
      (await nodeIn(sandbox, LISTEN, ["224.0.1.1", "123", "2500"], 10_000)).stdout.trim();
    assert.equal(await hear(), "none", "no [broadcast]: nothing sent");
    const reloaded = async (n: number) => {
      server.child.kill("SIGHUP");
      await waitFor(
        `reload ${n}`,
        async () =>
          server.records.filter((r) => r["msg"] === "configuration reloaded").length >= n ? true : undefined,
        10_000,
        50,
      );
    };
    await writeFile(file, `[clock]\nstratum = 3\n${broadcastConfig()}`);
    await reloaded(1);
    const heard = await hear();
    assert.notEqual(heard, "none", server.stderr());
    assert.equal(Buffer.from((JSON.parse(heard) as { hex: string }).hex, "hex")[0]! & 7, MODE_BROADCAST);
    await writeFile(file, "[clock]\nstratum = 3\n");
    await reloaded(2);
    assert.equal(await hear(), "none", "[broadcast] removed: nothing sent");
  });
});

describe("source-specific multicast (232/8)", () => {
  const env = sandboxAndServer();

  const sync = (args: string[], timeoutMs: number) => ntpshieldIn(env.sandbox, ["sync", ...args], timeoutMs);

  test("the listener joins (S,G) naming the source; another source gives nothing; no source is refused", {
    timeout: 60_000,
  }, async () => {
    await env.start({
      listen: ["127.0.0.1:123"],
      http: "off",
      configToml:
        '[callgap]\nenabled = false\n[broadcast]\ninterval = "1s"\n' +
        '[[broadcast.destination]]\naddress = "232.1.1.1"\ninterface = "127.0.0.1"\n',
    });
    const ok = await sync(
      [
        "--broadcast",
        "232.1.1.1",
        "--source",
        "127.0.0.1",
        "--interface",
        "127.0.0.1",
        "--count",
        "1",
        "--json",
      ],
      20_000,
    );
    assert.equal(ok.code, 0, ok.output);
    assert.match(
      ok.stderr,
      /warning: .*\(127\.0\.0\.1,232\.1\.1\.1\) with IGMPv3.*Source Specific Multicast/,
    );
    assert.ok(
      ok.stdout.split("\n").some((l) => l.includes('"kind":"sample"')),
      ok.stdout,
    );
    // (S,G) with a source that does not send: nothing arrives (killed after 5 s, having heard nothing).
    const other = await sync(
      [
        "--broadcast",
        "232.1.1.1",
        "--source",
        "127.0.0.9",
        "--interface",
        "127.0.0.1",
        "--json",
        "--verbose",
      ],
      5000,
    );
    assert.equal(other.signal, "SIGKILL");
    assert.deepEqual(
      jsonEvents(other.stdout).map((e) => e["kind"]),
      ["listening"],
    );
    const none = await sync(["--broadcast", "232.1.1.1"], 10_000);
    assert.equal(none.code, 2);
    assert.match(
      none.stderr,
      /--source: 232\.1\.1\.1 is in 232\/8, source-specific.*Source Specific Multicast/,
    );
  });
});

describe("recalibration when the broadcast path changes", () => {
  const env = sandboxAndServer();

  // The broadcasts reach the client through a relay that passes them on from 239.1.1.1 to 224.0.1.1 from the
  // server's own address, at once for the first six and 30 ms late from then on: the multicast path grows
  // by 30 ms while the unicast one (straight to the server) does not.
  const RELAY = `
import dgram from "node:dgram";
const from = dgram.createSocket({ type: "udp4", reuseAddr: true });
const to = dgram.createSocket("udp4");
let n = 0;
to.bind(0, "127.0.0.1", () => to.setMulticastInterface("127.0.0.1"));
from.bind(123, "239.1.1.1", () => from.addMembership("239.1.1.1", "127.0.0.1"));
from.on("message", (m) => setTimeout(() => to.send(m, 123, "224.0.1.1"), n++ < 6 ? 0 : 30));
setTimeout(() => process.exit(0), Number(process.argv[1]));
`;

  test("a lasting change is seen on two broadcasts in a row and calibrated again; the offsets stay right", {
    timeout: 60_000,
  }, async () => {
    const { sandbox } = env;
    await env.start({
      listen: ["127.0.0.1:123"],
      http: "off",
      configToml:
        '[callgap]\nenabled = false\n[broadcast]\ninterval = "1s"\n' +
        '[[broadcast.destination]]\naddress = "239.1.1.1"\nttl = 1\ninterface = "127.0.0.1"\n',
    });
    const relay = nodeIn(sandbox, RELAY, ["20000"], 30_000);
    const r = await ntpshieldIn(
      sandbox,
      [
        "sync",
        "--broadcast",
        "224.0.1.1",
        "--interface",
        "127.0.0.1",
        "--drift",
        "0.005",
        "--count",
        "5",
        "--json",
        "--verbose",
      ],
      25_000,
    );
    await relay;
    assert.equal(r.code, 0, r.output);
    const events = jsonEvents(r.stdout);
    const calibrations = calibrationsOf(events);
    assert.equal(calibrations.length, 2, r.stdout);
    const drift = events.find((e) => e["kind"] === "calibrating" && e["reason"] === "drift");
    assert.ok(drift, r.stdout);
    assert.ok(Math.abs((drift["driftMs"] as number) + 30) < 10, `moved ${drift["driftMs"]} ms`);
    const [first, second] = calibrations.map((c) => c["delayMs"] as number);
    assert.ok(Math.abs(second! - first! - 30) < 8, `broadcast delay ${first} then ${second} ms`);
    // The one broadcast that first arrived late was a suspected spike, not a sample.
    assert.ok(
      events.some((e) => e["kind"] === "ignored" && e["reason"] === "spike"),
      r.stdout,
    );
    const samples = samplesOf(events);
    assert.equal(samples.length, 5);
    for (const s of samples) assert.ok(Math.abs(s["offsetMs"] as number) < 8, `offset ${s["offsetMs"]} ms`);
    // Samples before and after the recalibration.
    const at = events.indexOf(drift);
    assert.ok(events.slice(0, at).some((e) => e["kind"] === "sample"));
    assert.ok(events.slice(at).some((e) => e["kind"] === "sample"));
  });
});
