// `ntpshield sync` as a user runs it: a line per poll against ntpshield itself, the 15 s floor, JSON lines,
// and a DENY remembered across runs in the state file (the second run sends nothing and says why).

import assert from "node:assert/strict";
import dgram from "node:dgram";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { makeReply } from "../client/sim.ts";
import { freeUdpPort, killAllPeers, REPO_ROOT, run, startNtpshield } from "../helpers/peers.ts";

after(killAllPeers);
const dir = mkdtempSync(join(tmpdir(), "ntpshield-sync-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const sync = (...args: string[]) =>
  run([process.execPath, `${REPO_ROOT}/src/cli/main.ts`, "sync", ...args], 20_000);

describe("ntpshield sync", () => {
  it("against ntpshield: the first poll within the start spread, a line with offset and the next poll", {
    timeout: 30_000,
  }, async () => {
    const port = await freeUdpPort();
    const server = await startNtpshield({ listen: [`127.0.0.1:${port}`] });
    try {
      const t0 = Date.now();
      const r = await sync(
        "--server",
        `127.0.0.1:${port}`,
        "--start-spread",
        "1",
        "--count",
        "1",
        "--no-state",
      );
      assert.equal(r.code, 0, r.output);
      assert.ok(Date.now() - t0 < 8000);
      const lines = r.stdout.trim().split("\n");
      assert.match(lines[0]!, /sync 127\.0\.0\.1:\d+: minpoll 64 s, maxpoll 1024 s, .*the clock is not set/);
      assert.match(
        r.stdout,
        new RegExp(
          `127\\.0\\.0\\.1:${port}  127\\.0\\.0\\.1  offset [+-]0\\.\\d{6} s  delay 0\\.\\d{6} s  stratum 10  refid \\S+  leap none  interval 64 s  next \\d+ s`,
        ),
      );
    } finally {
      await server.stop();
    }
  });

  it("never below 15 s: --minpoll 5 is raised, and says so; --json prints the events", {
    timeout: 30_000,
  }, async () => {
    const port = await freeUdpPort();
    const server = await startNtpshield({ listen: [`127.0.0.1:${port}`] });
    try {
      const r = await sync(
        "--server",
        `127.0.0.1:${port}`,
        "--minpoll",
        "5",
        "--start-spread",
        "1",
        "--count",
        "1",
        "--no-state",
        "--json",
      );
      assert.equal(r.code, 0, r.output);
      assert.match(r.stderr, /minpoll 5 s raised to 15 s/);
      const events = r.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const sample = events.find((e) => e["kind"] === "sample")!;
      assert.equal(sample["intervalS"], 15);
      assert.ok((sample["nextS"] as number) >= 15);
      assert.equal((sample["sample"] as { stratum: number }).stratum, 10);
    } finally {
      await server.stop();
    }
  });

  it("DENY: stops, remembers it in the state file, and the next run sends nothing to that server", {
    timeout: 30_000,
  }, async () => {
    const sock = dgram.createSocket("udp4");
    let requests = 0;
    sock.on("message", (req, from) => {
      requests++;
      sock.send(
        makeReply(req, performance.timeOrigin + performance.now(), { kiss: "DENY" }),
        from.port,
        from.address,
      );
    });
    await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
    const server = `127.0.0.1:${sock.address().port}`;
    const state = join(dir, "state.json");
    try {
      const first = await sync("--server", server, "--start-spread", "1", "--state", state);
      assert.equal(first.code, 3, first.output);
      assert.match(
        first.stdout,
        /kiss-o'-death DENY \(access denied.*\): stopped using 127\.0\.0\.1:\d+ until .*remembered in/,
      );
      assert.match(first.stderr, /every server has refused us/);
      assert.equal(requests, 1);
      const saved = JSON.parse(readFileSync(state, "utf8")) as {
        refusals: { address: string; code: string }[];
      };
      assert.deepEqual(
        saved.refusals.map((x) => [x.address, x.code]),
        [["127.0.0.1", "DENY"]],
      );
      const second = await sync("--server", server, "--start-spread", "1", "--state", state);
      assert.equal(second.code, 3, second.output);
      assert.match(second.stdout, /stopped: every address refused us/);
      assert.equal(requests, 1, "the second run sent nothing");
    } finally {
      await new Promise<void>((r) => sock.close(() => r()));
    }
  });

  it("usage errors exit 2: no server, a bad address, a positional argument", async () => {
    const none = await sync();
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no server given/);
    assert.equal((await sync("--server", "a:b:c:d")).code, 2);
    assert.equal((await sync("127.0.0.1")).code, 2);
    assert.equal((await sync("--server", "127.0.0.1", "--count", "0")).code, 2);
  });
});
