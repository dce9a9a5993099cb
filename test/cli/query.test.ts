// `ntpshield query` as a user runs it: against ntpshield itself, a real chronyd, NTPsec's ntpd sending real
// kiss-o'-death packets (in a network namespace, port 123), a server that says DENY, and nobody.

import assert from "node:assert/strict";
import dgram from "node:dgram";
import { after, describe, it } from "node:test";
import { makeReply } from "../client/sim.ts";
import {
  freeUdpPort,
  killAllPeers,
  openPort123Sandbox,
  REPO_ROOT,
  run,
  startChronyServer,
  startNtpsecNtpd,
  startNtpshield,
} from "../helpers/peers.ts";

after(killAllPeers);

const MAIN = `${REPO_ROOT}/src/cli/main.ts`;
const query = (...args: string[]) => run([process.execPath, MAIN, "query", ...args], 20_000);

describe("ntpshield query", () => {
  it("against ntpshield: offset, delay, stratum, refid, leap and the address that answered; exit 0", {
    timeout: 30_000,
  }, async () => {
    const port = await freeUdpPort();
    const server = await startNtpshield({ listen: [`127.0.0.1:${port}`] });
    try {
      const r = await query(`127.0.0.1:${port}`);
      assert.equal(r.code, 0, r.output);
      assert.match(
        r.stdout,
        new RegExp(
          `^127\\.0\\.0\\.1:${port}  127\\.0\\.0\\.1  offset [+-]0\\.\\d{6} s  delay 0\\.\\d{6} s  stratum 10  refid \\S+  leap none\\n$`,
        ),
      );
      const j = await query("--json", `localhost:${port}`);
      assert.equal(j.code, 0, j.output);
      const [res] = JSON.parse(j.stdout) as Record<string, unknown>[];
      assert.equal(res!["ok"], true);
      assert.equal(res!["server"], `localhost:${port}`);
      assert.equal(res!["stratum"], 10);
      assert.equal(res!["leapText"], "none");
      assert.ok(["127.0.0.1", "::1"].includes(res!["answeredBy"] as string));
      assert.ok(Math.abs(res!["offset"] as number) < 0.05);
      assert.ok((res!["delay"] as number) >= 0);
    } finally {
      await server.stop();
    }
  });

  it("against chronyd (stratum 5), and several servers at once", { timeout: 30_000 }, async () => {
    const port = await freeUdpPort();
    const chrony = await startChronyServer({ port, stratum: 5 });
    const dead = await freeUdpPort();
    try {
      const r = await query("--json", "--timeout", "0.5", `127.0.0.1:${port}`, `127.0.0.1:${dead}`);
      assert.equal(r.code, 1, "one server did not answer: exit 1");
      const [ok, none] = JSON.parse(r.stdout) as Record<string, unknown>[];
      assert.equal(ok!["stratum"], 5);
      assert.equal(ok!["ok"], true);
      assert.equal(none!["ok"], false);
      assert.equal(none!["outcome"], "no-reply");
    } finally {
      await chrony.stop();
    }
  });

  it("nobody there: 'no reply', exit 1", async () => {
    const port = await freeUdpPort();
    const r = await query("--timeout", "0.3", `127.0.0.1:${port}`);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /no reply within 0\.3 s/);
  });

  it("a kiss-o'-death is reported by its code, with exit 3 (a DENY server)", async () => {
    const sock = dgram.createSocket("udp4");
    sock.on("message", (req, from) =>
      sock.send(
        makeReply(req, performance.timeOrigin + performance.now(), { kiss: "DENY" }),
        from.port,
        from.address,
      ),
    );
    await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
    try {
      const r = await query(`127.0.0.1:${sock.address().port}`);
      assert.equal(r.code, 3, r.output);
      assert.match(r.stdout, /kiss-o'-death DENY: access denied/);
      const j = await query("--json", `127.0.0.1:${sock.address().port}`);
      assert.equal(JSON.parse(j.stdout)[0].kiss, "DENY");
    } finally {
      await new Promise<void>((r) => sock.close(() => r()));
    }
  });

  it("NTPsec's ntpd with `limited kod`: the second query in a row gets a real RATE kiss, exit 3", {
    timeout: 60_000,
  }, async () => {
    const sandbox = await openPort123Sandbox("netns");
    const ntpd = await startNtpsecNtpd({
      sandbox,
      lines: ["restrict default limited kod", "limit average 0.05 burst 2 kod 100"],
    });
    try {
      const argv = sandbox.wrap([process.execPath, MAIN, "query", "--json", "127.0.0.1"]);
      await run(argv, 20_000);
      const r = await run(argv, 20_000);
      assert.equal(r.code, 3, `${r.output}\n${ntpd.output()}`);
      const [res] = JSON.parse(r.stdout) as Record<string, unknown>[];
      assert.equal(res!["kiss"], "RATE");
      assert.equal(res!["answeredBy"], "127.0.0.1");
      assert.equal(res!["port"], 123);
    } finally {
      await ntpd.stop();
      await sandbox.close();
    }
  });

  it("usage errors exit 2", async () => {
    assert.equal((await query()).code, 2);
    const bad = await query("127.0.0.1:99999");
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /port must be a number from 1 to 65535/);
    assert.equal((await query("--timeout", "0", "127.0.0.1")).code, 2);
    assert.equal((await query("--bogus", "127.0.0.1")).code, 2);
  });
});
