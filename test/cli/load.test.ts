// `ntpshield load` as an operator runs it: refuses anything but a loopback target before sending a packet,
// and against a real ntpshield reports per population what came back, beside the simulation (--compare).

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { freeUdpPort, type Ntpshield, REPO_ROOT, startNtpshield } from "../helpers/peers.ts";

function cli(...args: string[]) {
  return spawnSync(process.execPath, ["src/cli/main.ts", "load", ...args], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    timeout: 30_000,
  });
}

/** Runs the command without blocking this process's event loop (the server under test is our child). */
function cliAsync(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["src/cli/main.ts", "load", ...args], { cwd: REPO_ROOT });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

describe("ntpshield load: refusals", () => {
  it("refuses a non-loopback target with exit 2 and says why", () => {
    for (const target of ["192.0.2.1:123", "10.1.2.3:11123", "[::1]:11123"]) {
      const r = cli("--target", target, "--scenario", "nist", "--duration", "1");
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /loopback|127\.0\.0\.0\/8/);
      assert.equal(r.stdout, "");
    }
  });

  it("requires a scenario and a bounded duration", () => {
    assert.equal(cli("--target", "127.0.0.1:123", "--duration", "1").status, 2);
    assert.equal(cli("--target", "127.0.0.1:123", "--scenario", "nope", "--duration", "1").status, 2);
    const r = cli("--target", "127.0.0.1:123", "--scenario", "nist", "--duration", "7200");
    assert.equal(r.status, 2);
    assert.match(r.stderr, /at most 3600/);
  });
});

describe("ntpshield load against a real server", () => {
  let server: Ntpshield;
  let port: number;
  before(async () => {
    port = await freeUdpPort();
    server = await startNtpshield({ listen: [`127.0.0.1:${port}`] });
  });
  after(async () => {
    await server?.stop();
  });

  it("reports answered, kissed by code and nothing per population, with the simulation beside it", async () => {
    const r = await cliAsync(
      "--target",
      `127.0.0.1:${port}`,
      "--scenario",
      "usno",
      "--duration",
      "4",
      "--compare",
      "--json",
    );
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.scenario, "usno");
    const live = Object.fromEntries(out.live.populations.map((p: { name: string }) => [p.name, p]));
    const sim = Object.fromEntries(out.simulated.populations.map((p: { name: string }) => [p.name, p]));
    assert.deepEqual(Object.keys(live).sort(), ["firewall", "mice", "offender", "scripts"]);
    assert.equal(live.mice.answered, live.mice.sent);
    assert.ok(live.mice.sent > 0);
    // The 14 PPS offender: refused for the most part and told RATE, on the real server and in the simulation.
    assert.ok(live.offender.sent >= 50, JSON.stringify(live.offender));
    assert.ok(live.offender.answered < live.offender.sent / 2, JSON.stringify(live.offender));
    assert.ok(live.offender.kisses.RATE >= 1, JSON.stringify(live.offender));
    assert.ok(sim.offender.answered < sim.offender.sent / 2);
    // The firewall's hosts share one address.
    assert.equal(live.firewall.addresses, 1);
  });
});
