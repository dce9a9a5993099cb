// `npm pack` yields a package that works installed elsewhere: Node does not strip types inside
// node_modules, so the package must carry compiled JavaScript (dist/) and the bin must find it.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { clientRequest, exchange } from "../helpers/ntp.ts";
import { freeUdpPort, REPO_ROOT } from "../helpers/peers.ts";

const dir = mkdtempSync(join(tmpdir(), "ntpshield-pack-"));
after(() => rmSync(dir, { recursive: true, force: true }));
// Node 24 (this process's) first on the PATH, as `npm install -g` on a machine with Node 24 would have it.
const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}` };

describe("the packed package", { timeout: 180_000 }, () => {
  it("installs from its tarball and runs from node_modules", async () => {
    execFileSync("npm", ["pack", "--silent", "--pack-destination", dir], {
      cwd: REPO_ROOT,
      env,
      stdio: "pipe",
    });
    const tarball = readdirSync(dir).find((f) => f.endsWith(".tgz"));
    assert.ok(tarball, "npm pack wrote a tarball");
    const prefix = join(dir, "install");
    execFileSync(
      "npm",
      [
        "install",
        "--prefix",
        prefix,
        "--no-audit",
        "--no-fund",
        "--prefer-offline",
        "--omit=dev",
        join(dir, tarball),
      ],
      { env, stdio: "pipe" },
    );
    const bin = join(prefix, "node_modules", ".bin", "ntpshield");
    const version = spawnSync(bin, ["version"], { env, encoding: "utf8" });
    assert.equal(version.status, 0, version.stderr);
    assert.match(version.stdout, /^ntpshield \d+\.\d+\.\d+/);

    // The client library is importable by its public name, as a device maker would use it.
    const lib = spawnSync(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        'const m = await import("ntpshield/client"); console.log(typeof m.NtpClient, typeof m.queryServer);',
      ],
      { cwd: prefix, env, encoding: "utf8" },
    );
    assert.equal(lib.status, 0, lib.stderr);
    assert.equal(lib.stdout.trim(), "function function");

    const port = await freeUdpPort();
    const child = spawnSync(bin, ["check-config", "/nonexistent.toml"], { env, encoding: "utf8" });
    assert.equal(child.status, 2, "check-config runs from the compiled code too");

    const { spawn } = await import("node:child_process");
    const server = spawn(bin, ["serve", "--listen", `127.0.0.1:${port}`, "--threads", "1", "--http", "off"], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      let out = "";
      server.stdout.on("data", (d) => {
        out += d;
      });
      const deadline = Date.now() + 10_000;
      while (!out.includes('"listening"')) {
        assert.ok(Date.now() < deadline, `the installed server did not start: ${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      // The package carries the native I/O addon built at pack time (npm's prepare): it runs at full speed.
      assert.match(out, /"io":"native"/, out);
      const [reply] = await exchange(port, [clientRequest()]);
      assert.ok(reply, "the installed server answers");
      assert.equal(reply[0]! & 7, 4);
    } finally {
      server.kill("SIGTERM");
    }
  });
});
