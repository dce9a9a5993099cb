// scripts/ensure-installed.mjs decides whether `npm start` / `npm test` must run `npm ci` first. Its staleness
// check is tested here on small fixture trees; the whole path (a clean clone served by `npm start` alone) is
// what CI's clean clone exercises through `npm test`.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
// @ts-expect-error: a plain JavaScript module (it must run on the machine's older Node), without types.
import { staleReason } from "../../scripts/ensure-installed.mjs";

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Pkg {
  version: string;
  optional?: boolean;
}

function tree(
  lock: Record<string, Pkg> | undefined,
  installed: Record<string, Pkg> | undefined,
  node = true,
) {
  const dir = mkdtempSync(join(tmpdir(), "ntpshield-ensure-"));
  dirs.push(dir);
  if (lock !== undefined) {
    writeFileSync(join(dir, "package-lock.json"), JSON.stringify({ packages: { "": {}, ...lock } }));
  }
  if (installed !== undefined) {
    mkdirSync(join(dir, "node_modules"), { recursive: true });
    writeFileSync(join(dir, "node_modules", ".package-lock.json"), JSON.stringify({ packages: installed }));
  }
  if (node) {
    mkdirSync(join(dir, "node_modules", "node", "bin"), { recursive: true });
    writeFileSync(join(dir, "node_modules", "node", "bin", "node"), "");
  }
  return dir;
}

const LOCK = {
  "node_modules/smol-toml": { version: "1.9.1" },
  "node_modules/node": { version: "24.9.0" },
  "node_modules/@biomejs/cli-darwin-arm64": { version: "2.6.8", optional: true },
};
const INSTALLED = {
  "node_modules/smol-toml": { version: "1.9.1" },
  "node_modules/node": { version: "24.9.0" },
};

describe("scripts/ensure-installed.mjs: when npm ci must run", () => {
  test("an installation that matches the lock is current (other platforms' optional packages absent)", () => {
    assert.equal(staleReason(tree(LOCK, INSTALLED)), undefined);
  });

  test("a clean clone: nothing installed", () => {
    assert.equal(staleReason(tree(LOCK, undefined, false)), "the dependencies are not installed");
  });

  test("a lock changed by a pull: a version differs, a package is missing or extra", () => {
    const newer = { ...LOCK, "node_modules/smol-toml": { version: "1.9.2" } };
    assert.equal(staleReason(tree(newer, INSTALLED)), "smol-toml is 1.9.1, the lock wants 1.9.2");
    const added = { ...LOCK, "node_modules/ajv": { version: "8.17.1" } };
    assert.equal(staleReason(tree(added, INSTALLED)), "ajv is not installed");
    const removed = { "node_modules/node": { version: "24.9.0" } };
    assert.equal(staleReason(tree(removed, INSTALLED)), "smol-toml is installed but not in the lock");
  });

  test("the pinned Node missing, or no lock file at all", () => {
    assert.equal(staleReason(tree(LOCK, INSTALLED, false)), "the pinned Node 24 is missing");
    assert.equal(staleReason(tree(undefined, INSTALLED)), "package-lock.json is missing or unreadable");
  });

  test("this checkout, as the test command runs it, is current", () => {
    assert.equal(staleReason(join(import.meta.dirname, "..", "..")), undefined);
  });
});
