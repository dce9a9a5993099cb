// Builds the batched UDP addon, native/udpio.c -> native/build/udpio.node, with the system C compiler:
// `npx node scripts/build-native.ts [--force] [--optional] [--quiet]`. Skips the build when the binary is
// up to date: a stamp file beside it records a hash of the source, the compiler command and the Node-API
// header it was built against, so a changed flag or header rebuilds too (file times alone lie after a
// checkout). The output is written to a temporary file and renamed, so a reader never loads half a file.
//
// The addon uses Node-API version 8 only (NAPI_VERSION is defined in the source), so headers of any Node
// >= 16 build a binary that loads in Node 24. Headers are searched in order: the running Node's own (the
// node package's platform package has them while it is installed), npm's nodedir setting, then
// /usr/include/node and /usr/local/include/node.
//
// --optional: when no compiler or no headers exist, or the platform is not Linux, print why and exit 0
// (the server then serves through node:dgram); a compiler error still fails. Used by tests and
// benchmarks through buildNative().

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { CodedError } from "../src/base/errors.ts";

export const ROOT = fileURLToPath(new URL("..", import.meta.url));
export const NATIVE_SOURCE = join(ROOT, "native", "udpio.c");
export const NATIVE_BINARY = join(ROOT, "native", "build", "udpio.node");
const STAMP = `${NATIVE_BINARY}.stamp`;

const FLAGS = ["-O2", "-shared", "-fPIC", "-Wall", "-Wextra", "-std=gnu11", "-fvisibility=hidden"];

export class NativeBuildError extends CodedError {}

/** Codes of the failures --optional tolerates: the machine cannot build, not the code is wrong. */
const MISSING_TOOLS = new Set([
  "ERR_NATIVE_BUILD_PLATFORM",
  "ERR_NATIVE_BUILD_NO_CC",
  "ERR_NATIVE_BUILD_NO_HEADERS",
]);

/** Directories that may hold node_api.h, best first. */
function headerCandidates(): string[] {
  const dirs: string[] = [];
  try {
    // The running Node's headers: <prefix>/bin/node -> <prefix>/include/node. node_modules/node's bin is
    // a copy of the platform package's, so also look in that package.
    const exec = realpathSync(process.execPath);
    dirs.push(join(dirname(exec), "..", "include", "node"));
  } catch {
    // execPath unreadable: fall through to the other places.
  }
  const platformPackage = `node-${process.platform}-${process.arch}`;
  dirs.push(join(ROOT, "node_modules", "node", "node_modules", platformPackage, "include", "node"));
  // npm's own setting for native builds (node-gyp's nodedir), as npm passes it to scripts.
  const nodedir = process.env["npm_config_nodedir"];
  if (nodedir) dirs.push(join(nodedir, "include", "node"));
  dirs.push("/usr/include/node", "/usr/local/include/node");
  return dirs;
}

export function findNodeHeaders(): string {
  for (const dir of headerCandidates()) {
    if (existsSync(join(dir, "node_api.h")) && existsSync(join(dir, "js_native_api.h"))) return dir;
  }
  throw new NativeBuildError(
    "ERR_NATIVE_BUILD_NO_HEADERS",
    `no Node-API headers (node_api.h) in ${headerCandidates().join(", ")}`,
  );
}

function compiler(): string {
  return process.env["CC"] || "cc";
}

function commandFor(headers: string, output: string): string[] {
  return [...FLAGS, `-I${headers}`, "-o", output, NATIVE_SOURCE];
}

function stampFor(headers: string): string {
  const hash = createHash("sha256");
  hash.update(readFileSync(NATIVE_SOURCE));
  hash.update("\0");
  hash.update([compiler(), ...commandFor(headers, NATIVE_BINARY)].join(" "));
  hash.update("\0");
  hash.update(readFileSync(join(headers, "node_api.h")));
  hash.update(readFileSync(join(headers, "js_native_api.h")));
  return hash.digest("hex");
}

/** Whether native/build/udpio.node is missing or was built from another source, command or header. */
export function nativeIsStale(): boolean {
  if (!existsSync(NATIVE_BINARY) || !existsSync(STAMP)) return true;
  try {
    return readFileSync(STAMP, "utf8").trim() !== stampFor(findNodeHeaders());
  } catch {
    return true;
  }
}

export interface BuildResult {
  /** False when the binary was already up to date. */
  built: boolean;
  path: string;
  /** The compiler command, for the log. */
  command: string;
  /** What the compiler printed (warnings); empty when clean or not built. */
  warnings: string;
}

/** Builds the addon unless it is up to date (or `force`). Throws NativeBuildError. */
export function buildNative(options: { force?: boolean } = {}): BuildResult {
  if (process.platform !== "linux") {
    throw new NativeBuildError(
      "ERR_NATIVE_BUILD_PLATFORM",
      `the UDP addon is for Linux (recvmmsg, sendmmsg), not ${process.platform}`,
    );
  }
  if (!existsSync(NATIVE_SOURCE)) {
    throw new NativeBuildError("ERR_NATIVE_BUILD_NO_SOURCE", `${NATIVE_SOURCE} does not exist`);
  }
  const headers = findNodeHeaders();
  const stamp = stampFor(headers);
  const cc = compiler();
  const display = [cc, ...commandFor(headers, NATIVE_BINARY)].join(" ");
  if (!options.force && existsSync(NATIVE_BINARY) && existsSync(STAMP)) {
    if (readFileSync(STAMP, "utf8").trim() === stamp)
      return { built: false, path: NATIVE_BINARY, command: display, warnings: "" };
  }
  mkdirSync(dirname(NATIVE_BINARY), { recursive: true });
  const temp = `${NATIVE_BINARY}.${process.pid}.tmp`;
  const run = spawnSync(cc, commandFor(headers, temp), {
    stdio: ["ignore", "pipe", "pipe"],
    encoding: "utf8",
  });
  const diagnostics = `${run.stdout ?? ""}${run.stderr ?? ""}`.trim();
  if (run.error || run.status !== 0) {
    rmSync(temp, { force: true });
    if ((run.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT") {
      throw new NativeBuildError("ERR_NATIVE_BUILD_NO_CC", `no C compiler: "${cc}" was not found (set CC)`);
    }
    throw new NativeBuildError(
      "ERR_NATIVE_BUILD_FAILED",
      `${display} failed:\n${diagnostics || run.error?.message || `exit ${run.status}`}`,
    );
  }
  renameSync(temp, NATIVE_BINARY);
  writeFileSync(STAMP, `${stamp}\n`);
  return { built: true, path: NATIVE_BINARY, command: display, warnings: diagnostics };
}

function main(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    options: {
      force: { type: "boolean", default: false },
      optional: { type: "boolean", default: false },
      quiet: { type: "boolean", default: false },
    },
    strict: true,
  });
  try {
    const r = buildNative({ force: values.force });
    if (!values.quiet) {
      process.stdout.write(
        r.built ? `build-native: ${r.command}\n` : `build-native: ${r.path} is up to date\n`,
      );
    }
    if (r.warnings) process.stderr.write(`${r.warnings}\n`);
    return 0;
  } catch (err) {
    const e = err as NativeBuildError;
    if (values.optional && MISSING_TOOLS.has(e.code)) {
      process.stderr.write(`build-native: skipped (${e.message}); the server will use node:dgram\n`);
      return 0;
    }
    process.stderr.write(`build-native: ${e.code ? `${e.code}: ` : ""}${e.message}\n`);
    return 1;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = main(process.argv.slice(2));
}
