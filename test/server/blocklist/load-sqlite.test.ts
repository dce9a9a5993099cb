// node:sqlite loads without its ExperimentalWarning on stderr, and every other warning still gets through.
// In a child process: the warning is printed once per process, so this one must not have loaded it yet.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, it } from "node:test";
import { pathToFileURL } from "node:url";

const MODULE = pathToFileURL(join(import.meta.dirname, "../../../src/server/blocklist/load-sqlite.ts")).href;

describe("loadSqlite", () => {
  it("loads node:sqlite once, silently, and leaves other warnings alone", () => {
    const code = `
      import { loadSqlite } from ${JSON.stringify(MODULE)};
      const a = loadSqlite();
      const b = loadSqlite();
      console.log(typeof a.DatabaseSync, a === b, a === process.getBuiltinModule("node:sqlite"));
      process.emitWarning("an experimental thing of ours", "ExperimentalWarning");`;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", code], {
      encoding: "utf8",
      timeout: 15_000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "function true true");
    assert.doesNotMatch(r.stderr, /SQLite/);
    assert.match(r.stderr, /ExperimentalWarning: an experimental thing of ours/);
  });
});
