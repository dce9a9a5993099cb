// `ntpshield load --target ADDR:PORT --scenario <name> --duration S`: sends a scenario's clients to a real
// server over loopback, each client from its own 127.x.y.z address, and reports per population what came
// back: answered, kiss-o'-death by code, or nothing (src/sim/live.ts). With --compare it also runs the same
// clients through the simulator against the server's decision code, and prints both side by side.
// Loopback targets only; bounded in time (--duration, at most an hour) and in packets (--max-packets).

import { parseArgs } from "node:util";
import { type Config, ConfigError, defaultConfig, loadConfigFile } from "../config/index.ts";
import { LIVE_LIMITS, type LiveResult, LoadError, parseTarget, runLive, simulateLive } from "../sim/live.ts";
import { progressBar } from "../sim/progress.ts";
import { fmtInt, fmtPct, fmtPps, ratio, textTable } from "../sim/report.ts";
import { SCENARIO_NAMES, SCENARIOS } from "../sim/scenarios/index.ts";

export const LOAD_USAGE = `usage: ntpshield load --target ADDR:PORT --scenario <name> --duration S [--scale X] [--seed N]
                      [--max-packets N] [--timeout MS] [--compare [--config FILE]] [--json]

scenarios: ${SCENARIO_NAMES.join(", ")}

  --target       the server to load: an address in 127.0.0.0/8 and a port (anything else is refused)
  --scenario     whose clients to send (each scenario's live plan: its kinds of clients, scaled down)
  --duration     seconds to send for (at most ${LIVE_LIMITS.maxDuration})
  --scale        multiply the plan's client counts (default 1)
  --seed         seed of the clients' random choices (default 1)
  --max-packets  stop after this many requests (default 200,000; at most ${fmtInt(LIVE_LIMITS.maxPackets)})
  --timeout      longest wait for a reply before counting nothing, ms (default 1000; fast clients wait less)
  --compare      also simulate the same clients against one simulated server and show both
  --config       the configuration of the simulated server for --compare (default: the defaults)
  --json         print the result as JSON`;

function fail(message: string): number {
  process.stderr.write(`ntpshield load: ${message}\n${LOAD_USAGE}\n`);
  return 2;
}

function num(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  return /^[0-9]+(\.[0-9]+)?$/.test(text.trim()) ? Number(text) : Number.NaN;
}

interface Side {
  sent: number;
  answered: number;
  kissed: number;
  nothing: number;
  kisses: Record<string, number>;
}

function fmtKisses(k: Record<string, number>): string {
  const e = Object.entries(k);
  return e.length === 0 ? "" : ` (${e.map(([c, n]) => `${c} ${fmtInt(n)}`).join(", ")})`;
}

function sideCells(s: Side, duration: number): string[] {
  return [
    fmtPps(s.sent / duration),
    fmtPct(ratio(s.answered, s.sent)),
    `${fmtPct(ratio(s.kissed, s.sent))}${fmtKisses(s.kisses)}`,
    fmtPct(ratio(s.nothing, s.sent)),
  ];
}

export async function loadCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      target: { type: "string" },
      scenario: { type: "string" },
      duration: { type: "string" },
      scale: { type: "string" },
      seed: { type: "string" },
      "max-packets": { type: "string" },
      timeout: { type: "string" },
      compare: { type: "boolean", default: false },
      config: { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${LOAD_USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0) return fail(`unexpected argument ${JSON.stringify(positionals[0])}`);
  if (values.target === undefined) return fail("--target is required");
  if (values.scenario === undefined) return fail("--scenario is required");
  if (values.duration === undefined) return fail("--duration is required");
  const scenario = SCENARIOS[values.scenario];
  if (!scenario) return fail(`unknown scenario ${JSON.stringify(values.scenario)}`);
  const duration = num(values.duration)!;
  if (!(duration > 0 && duration <= LIVE_LIMITS.maxDuration)) {
    return fail(`--duration must be a number of seconds above 0 and at most ${LIVE_LIMITS.maxDuration}`);
  }
  const scale = num(values.scale) ?? 1;
  if (!(scale > 0 && scale <= 100)) return fail("--scale must be a number above 0 and at most 100");
  const seed = num(values.seed) ?? 1;
  if (!Number.isInteger(seed) || seed > 0xffffffff)
    return fail("--seed must be an integer from 0 to 4294967295");
  const maxPackets = num(values["max-packets"]) ?? 200_000;
  if (!Number.isInteger(maxPackets) || maxPackets < 1 || maxPackets > LIVE_LIMITS.maxPackets) {
    return fail(`--max-packets must be an integer from 1 to ${LIVE_LIMITS.maxPackets}`);
  }
  const timeoutMs = num(values.timeout) ?? 1000;
  if (!(timeoutMs >= 1 && timeoutMs <= 10_000)) return fail("--timeout must be 1 to 10000 ms");
  let target: ReturnType<typeof parseTarget>;
  try {
    target = parseTarget(values.target);
  } catch (err) {
    if (err instanceof LoadError) return fail(err.message);
    throw err;
  }
  let config: Config = defaultConfig();
  if (values.config !== undefined) {
    try {
      config = loadConfigFile(values.config);
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`ntpshield load: ${values.config}: ${err.message}\n`);
        return 2;
      }
      throw err;
    }
  }
  const progress = progressBar(process.stderr);
  let live: LiveResult;
  try {
    live = await runLive({
      target,
      plan: scenario.live(scale),
      duration,
      seed,
      maxPackets,
      timeoutMs,
      onProgress: (d) => progress.update(`load ${scenario.name}`, d),
    });
  } catch (err) {
    progress.finish();
    if (err instanceof LoadError) return fail(err.message);
    throw err;
  } finally {
    progress.finish();
  }
  const simulated = values.compare
    ? simulateLive(scenario.live(scale), seed, duration, config, live.startMs)
    : undefined;
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify({ scenario: scenario.name, plan: scenario.live(scale).description, live, simulated: simulated && { populations: simulated.populations, packets: simulated.packets } }, null, 2)}\n`,
    );
    return 0;
  }
  const plan = scenario.live(scale);
  const out: string[] = [];
  out.push(`ntpshield load ${scenario.name} -> ${live.target}: ${plan.description}`);
  out.push(
    `${fmtInt(live.packets)} requests in ${(live.wallMs / 1000).toFixed(1)} s from ${fmtInt(live.sockets)} client sockets` +
      (live.stoppedBy === "max-packets" ? " (stopped at --max-packets)" : ""),
  );
  const rows = live.populations.map((p) => {
    const row = [p.name, fmtInt(p.addresses), ...sideCells(p, duration)];
    if (simulated) {
      const s = simulated.populations.find((x) => x.name === p.name)!;
      row.push(...sideCells(s, duration));
    }
    if (p.discarded > 0) row.push(`${fmtInt(p.discarded)} replies thrown away by its own firewall`);
    else if (p.sendErrors > 0) row.push(`${fmtInt(p.sendErrors)} send errors`);
    else row.push("");
    return row;
  });
  const columns = ["population", "addresses", "sent", "answered", "kissed", "nothing"];
  if (simulated) columns.push("sim: sent", "sim: answered", "sim: kissed", "sim: nothing");
  columns.push("note");
  out.push("", textTable({ title: "What came back, per population", columns, rows }));
  process.stdout.write(`${out.join("\n")}\n`);
  return 0;
}
