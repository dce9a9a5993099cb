// The one command: `ntpshield <subcommand> [options]`.

import { VERSION } from "../base/version.ts";
import { BLOCKLIST_USAGE, blocklistCommand } from "./blocklist.ts";
import { CHECK_USAGE, checkConfigCommand } from "./check-config.ts";
import { CLIENTS_USAGE, clientsCommand } from "./clients.ts";
import { releaseSignals } from "./early-signals.ts";
import { LOAD_USAGE, loadCommand } from "./load.ts";
import { QUERY_USAGE, queryCommand } from "./query.ts";
import { SERVE_USAGE, serveCommand } from "./serve.ts";
import { SIMULATE_USAGE, simulateCommand } from "./simulate.ts";
import { STATS_USAGE, statsCommand } from "./stats.ts";
import { SURVEY_USAGE, surveyCommand } from "./survey.ts";
import { SYNC_USAGE, syncCommand } from "./sync.ts";
import { TOP_USAGE, topCommand } from "./top.ts";

interface Command {
  summary: string;
  usage: string;
  run(argv: string[]): number | Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  serve: { summary: "serve NTP (defaults: 127.0.0.1:11123, no root)", usage: SERVE_USAGE, run: serveCommand },
  "check-config": {
    summary: "validate a configuration file without serving (--json-schema: print its schema)",
    usage: CHECK_USAGE,
    run: checkConfigCommand,
  },
  blocklist: {
    summary: "list, add or remove blocked addresses (paper §11)",
    usage: BLOCKLIST_USAGE,
    run: blocklistCommand,
  },
  survey: {
    summary: "survey several servers' MRU lists: bursters and load share (paper §5)",
    usage: SURVEY_USAGE,
    run: surveyCommand,
  },
  clients: {
    summary: "a running server's clients (its MRU list), as ntpq -c mrulist shows them",
    usage: CLIENTS_USAGE,
    run: clientsCommand,
  },
  stats: {
    summary: "a running server's counters, as chronyc serverstats shows them",
    usage: STATS_USAGE,
    run: statsCommand,
  },
  top: {
    summary: "a live view of a running server: packets per second and its top talkers",
    usage: TOP_USAGE,
    run: topCommand,
  },
  query: {
    summary: "ask NTP servers once: offset, delay, stratum, refid, leap (--json)",
    usage: QUERY_USAGE,
    run: queryCommand,
  },
  sync: {
    summary: "poll servers as a well-behaved client, a line per poll (does not set the clock)",
    usage: SYNC_USAGE,
    run: syncCommand,
  },
  simulate: {
    summary: "replay the paper's incidents on virtual time, paper's figures beside ours (§3-§5, §12)",
    usage: SIMULATE_USAGE,
    run: simulateCommand,
  },
  load: {
    summary: "send a scenario's clients to a real server over loopback, from many 127.x addresses",
    usage: LOAD_USAGE,
    run: loadCommand,
  },
  version: {
    summary: "print the version",
    usage: "usage: ntpshield version",
    run: () => {
      process.stdout.write(`ntpshield ${VERSION} (node ${process.version})\n`);
      return 0;
    },
  },
};

function help(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: ntpshield <command> [options]\n\ncommands:\n${lines.join("\n")}\n\n'ntpshield <command> --help' for a command's options.\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "help" || name === "--help" || name === "-h") {
    process.stdout.write(help());
    return name ? 0 : 2;
  }
  if (name === "--version" || name === "-V") return COMMANDS.version!.run([]);
  const command = COMMANDS[name];
  if (name !== "serve") {
    // Only serve replays the signals the entry held while loading; for any other command they act now as
    // they would have (their default action, or the command's own handlers later).
    for (const signal of releaseSignals()) if (signal !== "SIGHUP") process.kill(process.pid, signal);
  }
  if (!command) {
    process.stderr.write(`ntpshield: unknown command "${name}"\n${help()}`);
    return 2;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    const e = err as Error & { code?: string };
    if (
      e.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" ||
      e.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" ||
      e.code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL"
    ) {
      process.stderr.write(`ntpshield ${name}: ${e.message}\n${command.usage}\n`);
      return 2;
    }
    throw err;
  }
}

process.exitCode = await main(process.argv.slice(2));
