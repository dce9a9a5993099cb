// `ntpshield blocklist list|add|remove` as an operator runs it, in a child process: the round trip, clear
// errors (bad address, missing or locked database, bad config), and a running server seeing the change.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, describe, it } from "node:test";
import { type BlocklistChange, BlocklistStore } from "../../src/server/blocklist/index.ts";

const dir = mkdtempSync(join(tmpdir(), "ntpshield-blocklist-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

// Through the one command, as an operator types it.
const MAIN = join(import.meta.dirname, "../../src/cli/main.ts");

function blocklist(...args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, "blocklist", ...args], {
    encoding: "utf8",
    timeout: 15_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

let n = 0;
/** A fresh directory with a configuration file (no [blocklist] section: the default path, beside it). */
function setup(configText = "[clock]\nstratum = 3\n") {
  const d = join(dir, `case-${++n}`);
  mkdirSync(d);
  const config = join(d, "ntpshield.toml");
  writeFileSync(config, configText);
  return { d, config, db: join(d, "ntpshield-blocklist.db") };
}

describe("ntpshield blocklist", () => {
  it("add, list (address in the first column), list --json, remove", () => {
    const { config, db } = setup();
    let r = blocklist(
      "add",
      "192.0.2.1",
      "--reason",
      "broken router",
      "--duration",
      "1h",
      "--config",
      config,
      "--create",
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /blocked 192\.0\.2\.1 until \d{4}-\d\d-\d\dT/);
    assert.match(r.stderr, /enabled = false/, "warns that the server is not using this list");
    assert.ok(existsSync(db), "the list lives beside the configuration file");
    r = blocklist("add", "2001:DB8:0::7", "--config", config);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /blocked 2001:db8::7 for ever/);

    r = blocklist("list", "--config", config);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines.length, 2);
    assert.deepEqual(
      lines.map((l) => l.split(/\s+/)[0]),
      ["192.0.2.1", "2001:db8::7"],
    );
    assert.match(lines[0]!, /reason="broken router".*added=\S+.*expires=\d{4}-.*hits=0/);
    assert.match(lines[1]!, /expires=never/);

    r = blocklist("list", "--json", "--db", db);
    assert.equal(r.status, 0, r.stderr);
    const entries = JSON.parse(r.stdout) as Record<string, unknown>[];
    assert.equal(entries[0]?.["address"], "192.0.2.1");
    assert.equal(entries[0]?.["reason"], "broken router");
    assert.equal(entries[0]?.["source"], "manual");
    assert.equal(entries[1]?.["expires"], null);

    r = blocklist("remove", "192.0.2.1", "--config", config);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /unblocked 192\.0\.2\.1/);
    r = blocklist("remove", "192.0.2.1", "--config", config);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /192\.0\.2\.1 is not on the blocklist/);
    r = blocklist("list", "--config", config);
    assert.equal(r.stdout.trim().split("\n").length, 1, "one entry left");
    assert.match(r.stdout, /^2001:db8::7 /);
  });

  it("lists and removes a prefix the server blocked; adding one by hand is refused", () => {
    const { config, db } = setup();
    const store = BlocklistStore.open(db, { pruneIntervalMs: 0 });
    store.add({ address: "2001:db8:1:2::/64", reason: "kept asking", source: "auto", hits: 10 });
    store.close();
    let r = blocklist("list", "--config", config);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^2001:db8:1:2::\/64 +reason="kept asking"/);
    r = blocklist("add", "2001:db8:1:3::/64", "--config", config);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /"2001:db8:1:3::\/64" is a prefix/);
    r = blocklist("remove", "2001:db8:1:2::1/64", "--config", config);
    assert.equal(r.status, 2, "host bits set: not an entry's text");
    assert.match(r.stderr, /is not an address or a prefix/);
    r = blocklist("remove", "2001:DB8:1:2::/64", "--config", config);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /unblocked 2001:db8:1:2::\/64/);
    assert.equal(blocklist("list", "--config", config).stdout.trim(), "");
  });

  it("a running server's watch sees the CLI's changes", async () => {
    const { config, db } = setup();
    assert.equal(blocklist("add", "198.51.100.1", "--config", config, "--create").status, 0);
    const server = BlocklistStore.open(db, { pruneIntervalMs: 0 });
    const changes: BlocklistChange[] = [];
    const stop = server.watch((c) => changes.push(c), { intervalMs: 20 });
    try {
      assert.equal(blocklist("add", "198.51.100.2", "--reason", "spray", "--config", config).status, 0);
      assert.equal(blocklist("remove", "198.51.100.1", "--config", config).status, 0);
      const until = Date.now() + 3000;
      while (changes.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      const c = changes[0];
      assert.ok(c && !c.full, "a change was seen");
      assert.deepEqual(
        c.upserts.map((e) => e.address),
        ["198.51.100.2"],
      );
      assert.deepEqual(c.removed, ["198.51.100.1"]);
    } finally {
      stop();
      server.close();
    }
  });

  it("names a bad address and creates nothing", () => {
    const { config, db } = setup();
    for (const bad of ["300.1.2.3", "10.0.0.0/8", "ntp.example.org"]) {
      const r = blocklist("add", bad, "--config", config);
      assert.equal(r.status, 2, bad);
      assert.match(r.stderr, new RegExp(`"${bad.replace(/[./]/g, "\\$&")}"`), "the message names the input");
      assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/, "no stack trace");
    }
    assert.equal(existsSync(db), false);
    const r = blocklist("remove", "1.2.3", "--config", config);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /"1\.2\.3" is not a valid IPv4 address/);
  });

  it("checks an entry as the HTTP API does: refusals with a reason, warnings on stderr", () => {
    const { config, db } = setup();
    const refused: [string[], RegExp][] = [
      [["0.0.0.0"], /"0\.0\.0\.0" is the unspecified address/],
      [["255.255.255.255"], /broadcast/],
      [["ff02::1"], /multicast/],
      [["fe80::1%eth0"], /zones are not kept/],
      [["192.0.2.1", "--reason", "x".repeat(201)], /reason: 201 characters, at most 200/],
      [["192.0.2.1", "--reason", "a\u0007b"], /reason: control character U\+0007 at position 2/],
    ];
    for (const [args, why] of refused) {
      const r = blocklist("add", ...args, "--config", config);
      assert.equal(r.status, 2, args.join(" "));
      assert.match(r.stderr, why);
    }
    assert.equal(existsSync(db), false, "nothing was created");
    const r = blocklist("add", "::ffff:127.0.0.1", "--config", config, "--create");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /blocked 127\.0\.0\.1 for ever/);
    assert.match(r.stderr, /warning: 127\.0\.0\.1 is a loopback address \(given as ::ffff:127\.0\.0\.1/);
  });

  it("says when the database is missing, and when it is locked", () => {
    const { config, db } = setup();
    let r = blocklist("list", "--config", config);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no blocklist database at .*ntpshield-blocklist\.db/);
    assert.equal(existsSync(db), false, "list does not create it");

    r = blocklist("add", "192.0.2.1", "--db", db);
    assert.equal(r.status, 1, "add creates no database without --create");
    assert.match(
      r.stderr,
      /no blocklist database at .*--create.*a server already running reads only the file/,
    );
    assert.equal(existsSync(db), false);
    r = blocklist("remove", "192.0.2.1", "--db", db, "--create");
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--create goes with add/);
    assert.equal(blocklist("add", "192.0.2.1", "--db", db, "--create").status, 0);
    const locker = new DatabaseSync(db);
    try {
      locker.exec("BEGIN IMMEDIATE");
      locker.exec("DELETE FROM blocklist");
      r = blocklist("add", "192.0.2.2", "--db", db, "--wait", "0.2");
      assert.equal(r.status, 1);
      assert.match(r.stderr, /is locked by another process \(waited 200 ms/);
      r = blocklist("list", "--db", db, "--wait", "0.2");
      assert.equal(r.status, 0, "a reader does not wait for a writer (WAL)");
      assert.match(r.stdout, /^192\.0\.2\.1 /, "and sees the last committed state");
    } finally {
      locker.exec("ROLLBACK");
      locker.close();
    }
  });

  it("reports configuration and usage errors with exit status 2", () => {
    let r = blocklist("list", "--config", join(dir, "nope.toml"));
    assert.equal(r.status, 2);
    assert.match(r.stderr, /nope\.toml/);
    const { config } = setup("[clock]\nstratum = 99\n");
    r = blocklist("list", "--config", config);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /clock\.stratum/);
    for (const args of [
      [],
      ["list"],
      ["frob", "--db", "x.db"],
      ["add", "--db", "x.db"],
      ["list", "1.2.3.4", "--db", "x.db"],
      ["list", "--bogus"],
      ["add", "192.0.2.1", "--duration", "soon", "--db", "x.db"],
      ["remove", "192.0.2.1", "--reason", "x", "--db", "x.db"],
    ]) {
      r = blocklist(...args);
      assert.equal(r.status, 2, args.join(" "));
      assert.match(r.stderr, /usage: ntpshield blocklist/, args.join(" "));
    }
    r = blocklist("--help");
    assert.equal(r.status, 0);
    assert.match(r.stdout, /ntpshield blocklist add ADDR/);
  });

  it("uses the configured [blocklist] path, relative to the configuration file", () => {
    const { d, config } = setup('[blocklist]\nenabled = true\npath = "lists/bl.db"\n');
    mkdirSync(join(d, "lists"));
    const r = blocklist("add", "192.0.2.1", "--config", config, "--create");
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /enabled = false/);
    assert.ok(existsSync(join(d, "lists", "bl.db")));
  });
});
