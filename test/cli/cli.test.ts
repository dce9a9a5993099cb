// The `ntpshield` command as an operator runs it: check-config, serve with flags and a file, SIGHUP reloads
// (a bad file changes nothing), clear start-up errors.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import dgram from "node:dgram";
import { once } from "node:events";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { configJsonSchema } from "../../src/config/index.ts";
import { clientRequest, exchange } from "../helpers/ntp.ts";
import { freeUdpPort, REPO_ROOT, startNtpshield } from "../helpers/peers.ts";

const dir = mkdtempSync(join(tmpdir(), "ntpshield-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function cli(...args: string[]) {
  return spawnSync(process.execPath, ["src/cli/main.ts", ...args], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    timeout: 15_000,
  });
}

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const waitFor = async (pred: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe("ntpshield check-config", () => {
  it("accepts a valid file and summarises it", () => {
    const r = cli(
      "check-config",
      file("ok.toml", '[server]\nlisten = ["127.0.0.1:11999"]\n[clock]\nstratum = 4\n'),
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /valid/);
    assert.match(r.stdout, /local stratum 4/);
  });

  it("names every bad key with its reason and exits 2", () => {
    const r = cli(
      "check-config",
      file("bad.toml", "[clock]\nstratum = 20\nrefid = 5\n[server]\nlisen = []\n"),
    );
    assert.equal(r.status, 2);
    assert.match(r.stderr, /clock\.stratum: .*1 to 15/);
    assert.match(r.stderr, /clock\.refid/);
    assert.match(r.stderr, /server\.lisen/);
  });

  it("reports a TOML syntax error with its line", () => {
    const r = cli("check-config", file("syntax.toml", "[clock]\nstratum = = 3\n"));
    assert.equal(r.status, 2);
    assert.match(r.stderr, /line 2|:2/);
    assert.doesNotMatch(r.stderr, /: : /, "no empty key printed");
  });

  it("says when the file cannot be read", () => {
    const r = cli("check-config", join(dir, "missing.toml"));
    assert.equal(r.status, 2);
    assert.match(r.stderr, /missing\.toml/);
  });

  it("with [blocklist] enabled, refuses a database path serve could not open, naming blocklist.path", async () => {
    mkdirSync(join(dir, "a-directory"), { recursive: true });
    writeFileSync(join(dir, "a-file"), "");
    const cases: [string, RegExp][] = [
      [join(dir, "no-such-dir", "x.db"), /the directory .*no-such-dir does not exist/],
      [join(dir, "a-directory"), /it is a directory, not a database file/],
      ["/dev/null", /it is a character device, not a database file/],
      [join(dir, "a-file", "x.db"), /a part of .*a-file is not a directory/],
    ];
    for (const [path, why] of cases) {
      const conf = file("blocklist.toml", `[blocklist]\nenabled = true\npath = ${JSON.stringify(path)}\n`);
      const r = cli("check-config", conf);
      assert.equal(r.status, 2, `${path}: ${r.stdout}`);
      assert.match(r.stderr, /blocklist\.toml: blocklist\.path: cannot open or create /, path);
      assert.match(r.stderr, why, path);
      assert.match(r.stderr, /checked because \[blocklist\] enabled = true/);
      assert.equal(r.stdout, "");
    }
    // serve refuses the same path for the same reason.
    const port = await freeUdpPort();
    const conf = file(
      "blocklist.toml",
      `[server]\nlisten = ["127.0.0.1:${port}"]\n[blocklist]\nenabled = true\npath = ${JSON.stringify(join(dir, "a-directory"))}\n`,
    );
    const served = cli("serve", "--config", conf, "--threads", "1", "--http", "off");
    assert.equal(served.status, 1);
    assert.match(served.stderr, /blocklist\.path: .*it is a directory, not a database file/);
  });

  it("checks a blocklist path only when the blocklist is on, and creates nothing", () => {
    const sub = join(dir, "relative");
    mkdirSync(sub, { recursive: true });
    const on = cli(
      "check-config",
      file("relative/on.toml", '[blocklist]\nenabled = true\npath = "list.db"\n'),
    );
    assert.equal(on.status, 0, on.stderr);
    assert.ok(on.stdout.includes(`; blocklist ${join(sub, "list.db")})`), on.stdout);
    assert.equal(existsSync(join(sub, "list.db")), false, "nothing created");
    const off = cli("check-config", file("off.toml", '[blocklist]\npath = "/dev/null"\n'));
    assert.equal(off.status, 0, off.stderr);
    assert.doesNotMatch(off.stdout, /blocklist/);
  });

  it("refuses a blocklist directory that does not take a new file", {
    skip: process.getuid?.() === 0 && "root may write anywhere",
  }, () => {
    const locked = join(dir, "locked");
    mkdirSync(locked, { recursive: true });
    chmodSync(locked, 0o555);
    try {
      const conf = file(
        "locked.toml",
        `[blocklist]\nenabled = true\npath = ${JSON.stringify(join(locked, "x.db"))}\n`,
      );
      const r = cli("check-config", conf);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /blocklist\.path: .*permission denied to create a file in .*locked/);
    } finally {
      chmodSync(locked, 0o755);
    }
  });

  it("prints the configuration's JSON Schema with --json-schema, and says so in its usage", () => {
    const r = cli("check-config", "--json-schema");
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), configJsonSchema());
    const usage = cli("check-config", "--help");
    assert.equal(usage.status, 0);
    assert.match(usage.stderr, /--json-schema/);
    assert.equal(cli("check-config", "--json-schema", "extra").status, 2);
  });
});

describe("ntpshield (no or unknown command)", () => {
  it("lists the commands", () => {
    const r = cli("help");
    assert.equal(r.status, 0);
    assert.match(r.stdout, /serve/);
    assert.match(r.stdout, /check-config/);
    const bad = cli("frobnicate");
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /unknown command "frobnicate"/);
  });

  it("rejects a bad flag value naming the flag", () => {
    const r = cli("serve", "--threads", "lots");
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--threads/);
  });
});

describe("ntpshield serve", () => {
  it("logs one JSON start line with addresses, threads and clock source", async () => {
    const port = await freeUdpPort();
    const s = await startNtpshield({ listen: [`127.0.0.1:${port}`], threads: 2 });
    try {
      const start = s.records.find((r) => r["msg"] === "listening")!;
      assert.deepEqual(start["addresses"], [`127.0.0.1:${port}`]);
      assert.equal(start["threads"], 2);
      assert.equal((start["clock"] as Record<string, unknown>)["source"], "local");
      assert.equal(start["level"], "info");
      const [reply] = await exchange(port, [clientRequest()]);
      assert.equal(reply?.[1], 10, "embedded default stratum 10");
    } finally {
      assert.equal(await s.stop(), 0, "graceful exit on SIGTERM");
    }
    const stopped = s.records.find((r) => r["msg"] === "stopped");
    assert.ok(stopped, "logs its counters when it stops");
    assert.deepEqual(
      s.records.map((r) => r["msg"]),
      ["listening", "stopping", "stopped"],
      "no line per packet",
    );
  });

  it("reloads on SIGHUP, and keeps running unchanged when the new file is invalid", async () => {
    const port = await freeUdpPort();
    const path = file("reload.toml", `[server]\nlisten = ["127.0.0.1:${port}"]\n[clock]\nstratum = 5\n`);
    const s = await startNtpshield({ listen: [], extraArgs: ["--config", path] });
    try {
      assert.equal((await exchange(port, [clientRequest()]))[0]?.[1], 5);
      writeFileSync(path, `[server]\nlisten = ["127.0.0.1:${port}"]\n[clock]\nstratum = 99\n`);
      s.child.kill("SIGHUP");
      await waitFor(() => s.records.some((r) => r["msg"]?.toString().includes("reload failed")));
      const failure = s.records.find((r) => r["msg"]?.toString().includes("reload failed"))!;
      assert.equal(failure["level"], "error");
      assert.match(JSON.stringify(failure), /clock\.stratum/);
      assert.equal(
        (await exchange(port, [clientRequest()]))[0]?.[1],
        5,
        "still serving the old configuration",
      );
      writeFileSync(path, `[server]\nlisten = ["127.0.0.1:${port}"]\n[clock]\nstratum = 2\nrefid = "GPS"\n`);
      s.child.kill("SIGHUP");
      await waitFor(() => s.records.some((r) => r["msg"] === "configuration reloaded"));
      const [reply] = await exchange(port, [clientRequest()]);
      assert.equal(reply?.[1], 2);
      assert.equal(reply?.toString("latin1", 12, 15), "GPS");
    } finally {
      await s.stop();
    }
  });

  it("a SIGTERM while Node is still loading the modules is held by the entry and stops cleanly (exit 0, stopping, stopped)", async () => {
    // 150 ms after the spawn Node has run the entry's first line (its own start takes some 50 ms here) and is
    // still loading and stripping the command's modules (some 300-800 ms): before the entry held the signals,
    // this killed the process by the signal's default action, with no stopping line.
    const port = await freeUdpPort();
    const args = [
      "src/cli/entry.ts",
      "serve",
      "--listen",
      `127.0.0.1:${port}`,
      "--http",
      "off",
      "--threads",
      "2",
    ];
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
    });
    const timer = setTimeout(() => child.kill("SIGTERM"), 150);
    const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    const [code, signal] = (await once(child, "exit")) as [number | null, string | null];
    clearTimeout(timer);
    clearTimeout(killer);
    const msgs = out
      .trim()
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => (JSON.parse(l) as { msg: string }).msg);
    assert.equal(signal, null, `ended by the signal, not stopped: ${out}`);
    assert.equal(code, 0, out);
    assert.deepEqual(msgs.slice(-2), ["stopping", "stopped"], out);
  });

  it("stops cleanly on a SIGTERM at any point of start-up: workers gone, stopping and stopped logged, exit 0", async () => {
    // "starting" is its first line (at debug level), before the monitoring endpoint or any worker; the
    // warning for more threads than cores comes once the first of the 8 workers is up, the others spawning.
    const triggers = ["starting"];
    if (availableParallelism() < 8) triggers.push("more worker threads than cores");
    for (const trigger of triggers) {
      const port = await freeUdpPort();
      const args = ["serve", "--threads", "8", "--listen", `127.0.0.1:${port}`, "--http", "127.0.0.1:0"];
      const child = spawn(process.execPath, ["src/cli/main.ts", ...args, "--log-level", "debug"], {
        cwd: REPO_ROOT,
        stdio: ["ignore", "pipe", "pipe"],
      });
      const records: Record<string, unknown>[] = [];
      let partial = "";
      let sentAt = 0;
      child.stdout.setEncoding("utf8").on("data", (d: string) => {
        const lines = (partial + d).split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) {
          const record = JSON.parse(line) as Record<string, unknown>;
          records.push(record);
          if (sentAt === 0 && String(record["msg"]).startsWith(trigger)) {
            sentAt = Date.now();
            child.kill("SIGTERM");
          }
        }
      });
      let stderr = "";
      child.stderr.setEncoding("utf8").on("data", (d: string) => {
        stderr += d;
      });
      const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      const [code, signal] = (await once(child, "exit")) as [number | null, string | null];
      clearTimeout(killer);
      const what = `${trigger}: ${records.map((r) => r["msg"]).join(" | ")} ${stderr}`;
      assert.ok(sentAt > 0, `the trigger came: ${what}`);
      assert.ok(Date.now() - sentAt < 10_000, `exits within 10 s of the signal: ${what}`);
      assert.equal(signal, null, what);
      assert.equal(code, 0, `exit status as for a normal stop: ${what}`);
      assert.deepEqual(
        records.slice(-2).map((r) => r["msg"]),
        ["stopping", "stopped"],
        what,
      );
      assert.equal(records.at(-2)!["signal"], "SIGTERM");
      assert.ok(!records.some((r) => r["level"] === "error"), what);
      // No worker left holding the port: it binds again, exclusively.
      const probe = dgram.createSocket("udp4");
      await new Promise<void>((res, rej) => {
        probe.once("error", rej);
        probe.bind({ port, address: "127.0.0.1", exclusive: true }, () => res());
      });
      probe.close();
    }
  });

  it("refuses an address in use with a message that says so", async () => {
    const holder = dgram.createSocket("udp4");
    await new Promise<void>((r) => holder.bind(0, "127.0.0.1", () => r()));
    const port = holder.address().port;
    try {
      // --http off: the monitoring endpoint's default port may be held too (a server started by `npm start`).
      const r = cli("serve", "--listen", `127.0.0.1:${port}`, "--threads", "1", "--http", "off");
      assert.equal(r.status, 1);
      assert.match(r.stderr, /in use/);
      assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${port}`));
    } finally {
      holder.close();
    }
  });
});
