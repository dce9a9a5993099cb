// `ntpshield simulate <scenario>`: replays one of the paper's incidents (§3 Wisconsin, §4 USNO, §5 NIST,
// §12 balancers) on virtual time against the server's own decision code, and prints the paper's figures
// beside the simulated ones (src/sim, docs/simulator.md). Text on stdout, or JSON with --json; --html
// writes a self-contained page with the plots; a progress bar on stderr when it is a terminal.

import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { type Config, ConfigError, defaultConfig, loadConfigFile } from "../config/index.ts";
import { htmlReport } from "../sim/html.ts";
import { progressBar } from "../sim/progress.ts";
import { jsonReport, textReport } from "../sim/report.ts";
import { SCENARIO_NAMES, SCENARIOS } from "../sim/scenarios/index.ts";

export const SIMULATE_USAGE = `usage: ntpshield simulate <scenario> [--seed N] [--scale X] [--duration S] [--config FILE]
                          [--json] [--html FILE]
       ntpshield simulate --list

scenarios: ${SCENARIO_NAMES.join(", ")}

  --seed      seed of every random draw (default 1): the same seed gives the same run
  --scale     multiply the multitudes (mice, scripts, burstmakers, routers) by X (default 1: the paper's)
  --duration  seconds of virtual time per run (default: the scenario's)
  --config    the configuration the simulated servers start from (default: the defaults)
  --json      print the report as JSON instead of text
  --html      also write the report, with plots, as one self-contained HTML file
  --list      list the scenarios`;

function fail(message: string): number {
  process.stderr.write(`ntpshield simulate: ${message}\n${SIMULATE_USAGE}\n`);
  return 2;
}

function listScenarios(): string {
  const width = Math.max(...SCENARIO_NAMES.map((n) => n.length));
  return `${SCENARIO_NAMES.map((n) => {
    const s = SCENARIOS[n]!;
    return `${n.padEnd(width)}  ${s.title} (paper ${s.sections})\n${" ".repeat(width + 2)}${s.about}`;
  }).join("\n")}\n`;
}

/** A number option: undefined when absent, NaN when not a number. */
function num(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  return /^[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/.test(text.trim()) ? Number(text) : Number.NaN;
}

export function simulateCommand(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      seed: { type: "string" },
      scale: { type: "string" },
      duration: { type: "string" },
      config: { type: "string" },
      json: { type: "boolean", default: false },
      html: { type: "string" },
      list: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${SIMULATE_USAGE}\n`);
    return 0;
  }
  if (values.list) {
    process.stdout.write(listScenarios());
    return 0;
  }
  if (positionals.length !== 1)
    return fail(positionals.length === 0 ? "name a scenario" : "one scenario at a time");
  const name = positionals[0]!;
  const scenario = SCENARIOS[name];
  if (!scenario) return fail(`unknown scenario ${JSON.stringify(name)}`);
  const seed = num(values.seed) ?? 1;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)
    return fail(`--seed must be an integer from 0 to 4294967295`);
  const scale = num(values.scale) ?? 1;
  if (!(scale > 0 && scale <= 100)) return fail("--scale must be a number above 0 and at most 100");
  const duration = num(values.duration);
  if (duration !== undefined && !(duration > 0 && duration <= 30 * 86400)) {
    return fail("--duration must be a number of seconds above 0 and at most 30 days");
  }
  let config: Config;
  try {
    config = values.config === undefined ? defaultConfig() : loadConfigFile(values.config);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`ntpshield simulate: ${values.config}: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const progress = progressBar(process.stderr);
  let report: ReturnType<typeof scenario.run>;
  try {
    report = scenario.run({ seed, scale, duration, config, progress });
  } catch (err) {
    progress.finish();
    if (err instanceof RangeError) return fail(err.message);
    throw err;
  }
  process.stdout.write(values.json ? jsonReport(report) : textReport(report));
  if (values.html !== undefined) {
    try {
      writeFileSync(values.html, htmlReport(report));
    } catch (err) {
      process.stderr.write(`ntpshield simulate: cannot write ${values.html}: ${(err as Error).message}\n`);
      return 1;
    }
  }
  return 0;
}
