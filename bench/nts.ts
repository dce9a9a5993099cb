// The NTS benchmark (RFC 8915; docs/nts.md): what an authenticated reply costs beside a plain one, on the
// same core, and beside chrony serving NTS on the same machine. Each server in turn runs pinned to core 0
// with one worker (ntpshield with its defences and overload control off, as `npm run bench`'s
// ntpshield-bare, so that what is measured is the reply); the generator (bench/nts-load.ts) runs pinned to core 1 and offers a ladder of
// rates, plain requests and then NTS requests from one NTS-KE session; each step prints the replies per
// second and the share answered. The generator is Node (it must build NTS requests): its own ceiling, a
// little over 100,000 requests/s here, bounds the plain figures, not the NTS ones.
//
//   npx node bench/nts.ts [--rates 5k,10k,20k,40k] [--duration S] [--servers ntpshield,chrony] [--json]
//
// Needs chronyd (built with NTS), openssl and taskset (scripts/install-peers.sh); loopback only.

import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { parseConfig } from "../src/config/index.ts";
import { Defences } from "../src/core/defences.ts";
import { NtsResponder } from "../src/core/nts.ts";
import { type ServeState, unsynchronisedState } from "../src/core/serve-state.ts";
import { AEAD_AES_SIV_CMAC_256 } from "../src/nts/aes-siv.ts";
import { sealCookie } from "../src/nts/cookie.ts";
import { buildNtsRequest } from "../src/nts/extensions.ts";
import { CookieKeys, newCookieKey } from "../src/nts/keys.ts";
import { certificateRecipe } from "./certificates.ts";
import {
  BARE_CONFIG,
  BenchError,
  chronyLaunch,
  fmt,
  freePort,
  type Launch,
  ntpshieldLaunch,
  parseNumber,
  parseRate,
  pct,
  ROOT,
  runBench,
  runGenerator,
  startServer,
} from "./harness.ts";

interface Step {
  mode: "plain" | "nts";
  offered: number;
  sent: number;
  replies: number;
  repliesPerSecond: number;
  ratio: number;
  requestBytes: number;
  checked: number;
  checkFailures: number;
}

function freeTcpPort(): Promise<number> {
  const srv = createServer();
  return new Promise((resolve) =>
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    }),
  );
}

/** A CA and a certificate for 127.0.0.1, made as the tests make theirs (bench/certificates.ts). */
function certificates(dir: string): { ca: string; cert: string; key: string } {
  const recipe = certificateRecipe(dir, ["127.0.0.1"], { caName: "bench CA", days: 1 });
  writeFileSync(recipe.extFile, recipe.extensions);
  try {
    for (const args of recipe.commands)
      execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
  } catch (err) {
    throw new BenchError("ERR_BENCH_OPENSSL", `openssl failed: ${(err as Error).message}`);
  }
  return { ca: recipe.ca, cert: recipe.cert, key: recipe.key };
}

function load(args: string[], timeoutMs: number): Promise<Step> {
  return runGenerator<Step>(
    "nts-load",
    [process.execPath, join(ROOT, "bench", "nts-load.ts"), ...args],
    false,
    timeoutMs,
  );
}

/**
 * The decision alone, without sockets, on this thread: microseconds per request through the defences and,
 * for NTS, the cookie, the authenticator and the sealed reply (with `placeholders` more cookies).
 */
function decisionCost(nts: boolean, placeholders: number, ms: number): number {
  const random = (n: number) => new Uint8Array(randomBytes(n));
  const key = newCookieKey([], Date.now(), random);
  const d = Defences.fromConfig(parseConfig(`${BARE_CONFIG}[overload]\nenabled = false\n`));
  const responder = new NtsResponder(
    (c) => {
      c[0] = Date.now();
    },
    [key],
  );
  const session = { aead: AEAD_AES_SIV_CMAC_256, c2s: random(32), s2c: random(32) };
  const header = new Uint8Array(48);
  header[0] = (4 << 3) | 3;
  header.set(random(8), 40);
  const req = nts
    ? buildNtsRequest(
        header,
        random(32),
        sealCookie(new CookieKeys([key]).current, session),
        placeholders,
        session.c2s,
        random(16),
      )
    : header;
  const state: ServeState = { ...unsynchronisedState(-20, true), leap: 0, stratum: 2 };
  const buf = new Uint8Array(2048);
  const source = new Uint32Array([0, 0, 0xffff, 0x7f000001]);
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    for (let i = 0; i < 100; i++) {
      buf.set(req);
      if (nts) responder.inspect(buf, req.length);
      const reason = d.decide(buf, req.length, source, 40000, Date.now(), state);
      if (nts) responder.respond(buf, reason, state);
    }
    n += 100;
    t = performance.now();
  }
  return ((t - t0) * 1000) / n;
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      rates: { type: "string", default: "5k,10k,20k,40k,80k" },
      duration: { type: "string", default: "3" },
      servers: { type: "string", default: "ntpshield,chrony" },
      json: { type: "boolean", default: false },
    },
  });
  const rates = values.rates.split(",").map(parseRate);
  const duration = parseNumber("--duration", values.duration, 0.5, 60, "a number of seconds");
  const servers = values.servers.split(",");
  const costs = {
    plainUs: decisionCost(false, 0, 1000),
    ntsUs: decisionCost(true, 0, 2000),
    nts7PlaceholdersUs: decisionCost(true, 7, 2000),
  };
  process.stderr.write(
    `bench: the decision without sockets: plain ${costs.plainUs.toFixed(2)} µs, NTS ${costs.ntsUs.toFixed(1)} µs, ` +
      `NTS with 7 placeholders ${costs.nts7PlaceholdersUs.toFixed(1)} µs per request\n`,
  );
  const dir = mkdtempSync(join(tmpdir(), "ntpshield-bench-nts-"));
  const results: Record<string, Step[]> = {};
  try {
    const c = certificates(dir);
    for (const name of servers) {
      const port = await freePort();
      const kePort = await freeTcpPort();
      let launch: Launch;
      if (name === "ntpshield") {
        const nts = `[nts]\nenabled = true\nlisten = "127.0.0.1:${kePort}"\ncertificate = "${c.cert}"\nkey = "${c.key}"\n`;
        // Overload control off too: it would withhold the generator's one address past the redline, and what
        // is measured here is how many replies the core can make.
        launch = ntpshieldLaunch(port, dir, { config: `${BARE_CONFIG}[overload]\nenabled = false\n${nts}` });
      } else if (name === "chrony") {
        launch = chronyLaunch(port, dir, [
          `ntsserverkey ${c.key}`,
          `ntsservercert ${c.cert}`,
          `ntsport ${kePort}`,
          `ntsdumpdir ${dir}`,
        ]);
        // As root: chronyd would otherwise drop to its own user, which cannot read the key in our temp dir.
        launch.argv.splice(1, 0, "-u", "root");
      } else {
        throw new BenchError("ERR_BENCH_OPTION", `--servers: unknown server "${name}" (ntpshield, chrony)`);
      }
      process.stderr.write(`bench: ${name} on 127.0.0.1:${port}, NTS-KE on ${kePort}\n`);
      results[name] = [];
      const server = await startServer(name, launch, port, false);
      try {
        for (const mode of ["plain", "nts"] as const) {
          for (const rate of rates) {
            const args = [
              "--target",
              `127.0.0.1:${port}`,
              "--rate",
              String(rate),
              "--duration",
              String(duration),
            ];
            if (mode === "nts") args.push("--nts", `127.0.0.1:${kePort}`, "--ca", c.ca);
            const step = await load(args, (duration + 30) * 1000);
            results[name]!.push(step);
            process.stderr.write(
              `bench: ${name} ${mode} offered ${fmt(rate)}/s: ${fmt(step.repliesPerSecond)} replies/s (${pct(step.ratio)})` +
                `${step.checkFailures > 0 ? `, ${step.checkFailures} of ${step.checked} checked did not authenticate` : ""}\n`,
            );
          }
        }
      } finally {
        await server.stop();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ decision: costs, servers: results })}\n`);
    return 0;
  }
  const lines = [
    `decision without sockets, µs per request: plain ${costs.plainUs.toFixed(2)}, NTS ${costs.ntsUs.toFixed(1)}, ` +
      `NTS with 7 placeholders (8 cookies back) ${costs.nts7PlaceholdersUs.toFixed(1)}`,
    "",
    "server     mode   offered/s  replies/s  answered  request octets",
  ];
  for (const [name, steps] of Object.entries(results)) {
    for (const s of steps) {
      lines.push(
        `${name.padEnd(10)} ${s.mode.padEnd(6)} ${fmt(s.offered).padStart(9)}  ${fmt(s.repliesPerSecond).padStart(9)}  ` +
          `${pct(s.ratio).padStart(8)}  ${String(s.requestBytes).padStart(14)}`,
      );
    }
  }
  process.stdout.write(`${lines.join("\n")}\n`);
  return 0;
}

await runBench("bench/nts", main);
