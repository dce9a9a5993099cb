#!/usr/bin/env node
// Makes a checkout ready to run before `npm start` and `npm test` (their prestart and pretest step), so that a
// clean clone needs no separate `npm ci`: the locked dependencies (including the pinned Node 24 of the `node`
// package) and the native UDP addon are installed or brought up to date when they are missing or stale.
//
// Plain JavaScript on purpose: on a clean clone it runs on whatever Node the machine has (Node 20 here),
// because the pinned Node 24 that runs our TypeScript does not exist yet. It must stay fast when all is
// present (it runs before every start and test): reading two lock files and stat calls, no network.
//
// "Stale" means the installed tree disagrees with package-lock.json: npm keeps a copy of what it installed in
// node_modules/.package-lock.json; a package whose version differs there, or a required one missing, means
// the lock changed since (a pull, a branch switch) and `npm ci` runs again. The addon has its own staleness
// check (a hash of its source and compiler command, scripts/build-native.ts).

import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const say = (msg) => process.stderr.write(`ntpshield: ${msg}\n`);

function readJson(path) {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch {
    return undefined;
  }
}

/** Why the installed dependencies do not match package-lock.json, or undefined when they do. */
export function staleReason(dir) {
  const lock = readJson(join(dir, "package-lock.json"));
  if (lock === undefined) return "package-lock.json is missing or unreadable";
  const installed = readJson(join(dir, "node_modules", ".package-lock.json"));
  if (installed === undefined) return "the dependencies are not installed";
  const want = lock.packages ?? {};
  const have = installed.packages ?? {};
  for (const [path, pkg] of Object.entries(want)) {
    if (path === "" || !path.startsWith("node_modules/")) continue;
    const got = have[path];
    // Optional packages for other platforms (Biome's binaries, say) are never installed here.
    if (got === undefined) {
      if (pkg.optional === true) continue;
      return `${path.slice("node_modules/".length)} is not installed`;
    }
    if (got.version !== pkg.version) {
      return `${path.slice("node_modules/".length)} is ${got.version}, the lock wants ${pkg.version}`;
    }
  }
  for (const path of Object.keys(have)) {
    if (!(path in want)) return `${path.slice("node_modules/".length)} is installed but not in the lock`;
  }
  if (!existsSync(join(dir, "node_modules", "node", "bin", "node"))) return "the pinned Node 24 is missing";
  return undefined;
}

function run(cmd, args, what) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit" });
  if (r.error !== undefined || r.status !== 0) {
    const how = r.error !== undefined ? r.error.message : `exit status ${r.status ?? r.signal}`;
    say(`${what} failed (${how}); fix what it printed above, then run the command again`);
    process.exit(1);
  }
}

function main() {
  const [major] = process.versions.node.split(".").map(Number);
  const reason = staleReason(root);
  if (reason !== undefined) {
    say(`installing the locked dependencies (${reason}): npm ci`);
    if (major < 18) {
      say(
        `this Node is ${process.version}; npm ci needs Node 18 or later (npm 10+) to install the pinned Node 24`,
      );
      process.exit(1);
    }
    // npm_execpath is the npm that runs this script; plain "npm" otherwise.
    const npm = process.env.npm_execpath;
    if (npm?.endsWith(".js")) run(process.execPath, [npm, "ci"], "npm ci");
    else run("npm", ["ci"], "npm ci");
    const still = staleReason(root);
    if (still !== undefined) {
      say(`npm ci finished but the installation is still incomplete: ${still}`);
      process.exit(1);
    }
    return; // npm ci ran `prepare`, which built the addon.
  }
  // The addon: rebuilt only when its source or compiler command changed; --optional keeps a machine without
  // a C compiler working (the server then uses node:dgram). Run by the pinned Node, which strips types.
  const node24 = join(root, "node_modules", "node", "bin", "node");
  run(
    node24,
    [join(root, "scripts", "build-native.ts"), "--optional", "--quiet"],
    "building the native addon",
  );
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) main();
