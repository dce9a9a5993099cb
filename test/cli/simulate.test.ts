// `ntpshield simulate` as an operator runs it: a scenario's table in text, the same report as JSON, a
// self-contained HTML page with inline SVG plots, the list of scenarios, and clear errors.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { REPO_ROOT } from "../helpers/peers.ts";

const dir = mkdtempSync(join(tmpdir(), "ntpshield-simulate-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function cli(...args: string[]) {
  return spawnSync(process.execPath, ["src/cli/main.ts", "simulate", ...args], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    timeout: 30_000,
  });
}

describe("ntpshield simulate", () => {
  it("prints the paper's figures beside the simulated ones", () => {
    const r = cli("balancer", "--scale", "0.05", "--duration", "60", "--seed", "4");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^ntpshield simulate balancer: /);
    assert.match(r.stdout, /figure\s+paper\s+round-robin\s+random\s+source-hash\s+note/);
    assert.match(r.stdout, /all packets caught\s+6\.5% \(USNO\), 0\.1% \(NIST\)/);
    assert.match(r.stdout, /seed 4, scale 0\.05; 3 runs/);
    assert.equal(r.stderr, "", "no progress bar when stderr is not a terminal");
  });

  it("runs the Wisconsin splurge with and without overload control beside the paper's figures", () => {
    const r = cli("wisconsin", "--scale", "0.02", "--duration", "60");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /seed 1, scale 0\.02; 4 runs/);
    assert.match(
      r.stdout,
      /^The splurge against a server with a capacity \(.*our extension, the paper has no figure\)$/m,
    );
    assert.match(r.stdout, /figure\s+paper\s+no overload control\s+overload control\s+note/);
    assert.match(
      r.stdout,
      /mice served during the splurge\s+none \(§12 proposes overload control and gives no figure\)/,
    );
    assert.match(r.stdout, /Populations, run "splurge, overload control"/);
  });

  it("gives the same report as JSON, and the same JSON for the same seed", () => {
    const a = cli("nist", "--scale", "0.05", "--duration", "40", "--json");
    const b = cli("nist", "--scale", "0.05", "--duration", "40", "--json");
    assert.equal(a.status, 0, a.stderr);
    const ja = JSON.parse(a.stdout);
    const jb = JSON.parse(b.stdout);
    assert.equal(ja.scenario, "nist");
    assert.equal(ja.format, 1);
    assert.equal(ja.runs.length, 2);
    assert.ok(ja.tables[0].rows.length > 10);
    assert.ok(ja.runs[0].packets > 0);
    assert.deepEqual(ja.tables, jb.tables);
  });

  it("writes a self-contained HTML page with inline SVG plots", () => {
    const file = join(dir, "usno.html");
    const r = cli("usno", "--scale", "0.02", "--duration", "600", "--html", file);
    assert.equal(r.status, 0, r.stderr);
    const html = readFileSync(file, "utf8");
    assert.match(html, /^<!doctype html>/);
    assert.match(html, /<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(html, /<polyline /);
    assert.match(html, /top of the hour/);
    assert.doesNotMatch(html, /<script|<link|src="http/i, "no external resources");
  });

  it("lists the scenarios", () => {
    const r = cli("--list");
    assert.equal(r.status, 0);
    for (const name of ["usno", "wisconsin", "nist", "balancer"])
      assert.match(r.stdout, new RegExp(`^${name} `, "m"));
  });

  it("refuses an unknown scenario or bad options with exit 2", () => {
    for (const args of [
      ["nope"],
      [],
      ["nist", "--scale", "0"],
      ["nist", "--seed", "-1"],
      ["usno", "--duration", "60"],
      ["nist", "--bogus"],
    ]) {
      const r = cli(...args);
      assert.equal(r.status, 2, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /usage: ntpshield simulate/);
    }
  });
});
