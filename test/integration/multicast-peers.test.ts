// Broadcast mode against real peers (paper §9), inside a private network namespace whose loopback carries
// multicast. chronyd is the Debian peer that still broadcasts (its `broadcast` directive sends mode 5);
// ntpshield's broadcast client calibrates with it by unicast and then listens. NTPsec 1.2.2 keeps neither
// side: its configuration parser refuses `broadcast`, `broadcastclient`, `manycastserver` and
// `manycastclient` (NEWS: broadcast clients dropped in 0.9.5, broadcast servers in 1.1.0), which the second
// test shows against a line it does accept.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  calibrationsOf,
  jsonEvents,
  multicastSandbox,
  ntpshieldIn,
  samplesOf,
} from "../helpers/multicast.ts";
import {
  findTool,
  killAllPeers,
  openPort123Sandbox,
  type PortSandbox,
  startNtpsecNtpd,
  waitFor,
} from "../helpers/peers.ts";

after(killAllPeers);

describe("chronyd broadcasting, ntpshield's broadcast client listening", () => {
  let sandbox: PortSandbox | undefined;
  let dir: string | undefined;
  after(async () => {
    await sandbox?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("sync --broadcast calibrates with chronyd by unicast and takes its broadcasts", {
    timeout: 60_000,
  }, async () => {
    sandbox = await multicastSandbox();
    dir = await mkdtemp(join(tmpdir(), "ntpshield-mcast-chrony-"));
    const conf = join(dir, "chrony.conf");
    await writeFile(
      conf,
      [
        "local stratum 4",
        "allow 127.0.0.0/8",
        "port 123",
        "bindaddress 127.0.0.1",
        "cmdport 0",
        "bindcmdaddress /",
        `pidfile ${join(dir, "chronyd.pid")}`,
        `driftfile ${join(dir, "drift")}`,
        // Mode 5 to NTP's group every second (chrony's minimum; 64 s in service).
        "broadcast 1 224.0.1.1",
        "",
      ].join("\n"),
    );
    const [cmd, ...args] = sandbox.wrap([findTool("chronyd"), "-x", "-d", "-u", "root", "-f", conf]) as [
      string,
      ...string[],
    ];
    const chronyd = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let chronyOut = "";
    chronyd.stderr?.setEncoding("utf8").on("data", (d: string) => {
      chronyOut += d;
    });
    chronyd.once("error", (err) => {
      chronyOut += `cannot run chronyd: ${err.message}`;
    });
    try {
      await waitFor(
        "chronyd to start",
        async () => (chronyOut.includes("chronyd version") ? true : undefined),
        10_000,
        100,
      );
      const r = await ntpshieldIn(
        sandbox,
        ["sync", "--broadcast", "224.0.1.1", "--interface", "127.0.0.1", "--count", "3", "--json"],
        30_000,
      );
      assert.equal(r.code, 0, `${r.output}\nchronyd:\n${chronyOut}`);
      const events = jsonEvents(r.stdout);
      const done = calibrationsOf(events)[0];
      assert.ok(done, r.stdout);
      assert.equal(done["server"], "127.0.0.1");
      assert.ok(Math.abs(done["offsetMs"] as number) < 5, `unicast offset ${done["offsetMs"]}`);
      const samples = samplesOf(events);
      assert.equal(samples.length, 3);
      for (const s of samples) {
        assert.equal(s["stratum"], 4, "chronyd's local stratum");
        // One machine's clock on both sides: the calibrated offset is near zero.
        assert.ok(Math.abs(s["offsetMs"] as number) < 20, `offset ${s["offsetMs"]} ms`);
      }
    } finally {
      chronyd.kill("SIGTERM");
      await new Promise((r) => (chronyd.exitCode !== null ? r(undefined) : chronyd.once("exit", r)));
    }
  });
});

describe("NTPsec 1.2.2 keeps neither broadcast nor manycast", () => {
  /** Starts ntpd with `line` in its configuration; what its log says of line 1. */
  async function configLine(line: string): Promise<string> {
    const sandbox = await openPort123Sandbox("netns");
    try {
      const ntpd = await startNtpsecNtpd({ sandbox, lines: [line] });
      const out = ntpd.output();
      await ntpd.stop();
      return out;
    } finally {
      await sandbox.close();
    }
  }

  test("broadcast, broadcastclient, manycastserver and manycastclient are syntax errors; tos is not", {
    timeout: 90_000,
  }, async () => {
    const control = await configLine("tos minclock 1");
    assert.match(control, /ntpsec-1\.2\.2/, "the version these docs describe");
    assert.doesNotMatch(control, /syntax error/, "a line it does accept");
    for (const line of [
      "broadcast 224.0.1.1",
      "broadcastclient",
      "manycastserver 224.0.1.1",
      "manycastclient 224.0.1.1",
    ]) {
      const out = await configLine(line);
      assert.match(out, /CONFIG: syntax error in \S+ line 1, column 0/, `${line}:\n${out}`);
    }
  });
});
