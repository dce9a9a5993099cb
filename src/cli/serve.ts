// `ntpshield serve`: load and validate the configuration, start the server, and handle signals: SIGTERM and
// SIGINT stop it gracefully, at any point of start-up too, SIGHUP reloads the configuration file (an invalid
// one is logged with its reasons and the running configuration stays as it was; one during start-up is
// applied once the server runs).

import { parseArgs } from "node:util";
import { VERSION } from "../base/version.ts";
import {
  applyOverrides,
  type Config,
  ConfigError,
  defaultConfig,
  loadConfigFile,
  parseHostPort,
} from "../config/index.ts";
import { ServeError } from "../server/errors.ts";
import { HttpMonitor } from "../server/http/index.ts";
import { createLogger, type Logger, type LogLevel } from "../server/log.ts";
import type { ListenAddress } from "../server/messages.ts";
import { NtpServer, type ServerSettings } from "../server/server.ts";
import { releaseSignals } from "./early-signals.ts";

export const SERVE_USAGE = `usage: ntpshield serve [--config FILE] [--listen ADDR:PORT]... [--threads N] [--log-level LEVEL]
                       [--http ADDR:PORT|off]

Serves NTP. Without a configuration file it serves on 127.0.0.1:11123 (no root needed) as a stratum-10
local-clock server, with its monitoring endpoint (metrics, JSON API, dashboard) on http://127.0.0.1:11124
(--http moves it, port 0 = any free port; --http off turns it off). Flags override the file. SIGHUP reloads
the file; SIGTERM or SIGINT stops.`;

export function settingsFromConfig(config: Config, configFile?: string): ServerSettings {
  const listen: ListenAddress[] = config.server.listen.map((spec, i) => {
    const hp = parseHostPort(spec);
    if (hp.family === 0) {
      throw new ConfigError(`server.listen[${i}]`, `must be an IP address and port, got "${spec}"`);
    }
    return { host: hp.host, port: hp.port, family: hp.family };
  });
  return {
    listen,
    threads: config.server.threads,
    user: config.server.user,
    answerSymmetric: config.server.answerSymmetric,
    precision: config.clock.precision,
    clock: {
      stratum: config.clock.stratum,
      refid: config.clock.refid,
      rootDelay: config.clock.rootDelay,
      rootDispersion: config.clock.rootDispersion,
      upstream: config.clock.upstream,
      poll: config.clock.poll,
      holdTime: config.clock.holdTime,
      correctOffset: config.clock.correctOffset,
    },
    config,
    configFile,
  };
}

interface ServeFlags {
  config?: string;
  listen?: string[];
  threads?: string;
  logLevel?: string;
  http?: string;
}

function loadConfig(flags: ServeFlags): Config {
  const base = flags.config ? loadConfigFile(flags.config) : defaultConfig();
  const overrides: { listen?: string[]; threads?: number; logLevel?: string; http?: string } = {};
  if (flags.listen && flags.listen.length > 0) overrides.listen = flags.listen;
  if (flags.threads !== undefined) {
    const n = Number(flags.threads);
    if (!Number.isInteger(n))
      throw new ConfigError("--threads", `must be a whole number, got "${flags.threads}"`);
    overrides.threads = n;
  }
  if (flags.logLevel !== undefined) overrides.logLevel = flags.logLevel;
  if (flags.http !== undefined) overrides.http = flags.http;
  return applyOverrides(base, overrides);
}

/** What serve needs of the process's signals, taken before anything else is done. */
interface Signals {
  /** Settles with the first SIGTERM or SIGINT. */
  readonly stop: Promise<string>;
  /** Hands over what a SIGHUP does once the server runs; a SIGHUP that came before is applied now. */
  running(reload: () => void): void;
}

export async function serveCommand(argv: string[]): Promise<number> {
  // Taken first, before the configuration is read: from here on a SIGTERM or SIGINT stops whatever has
  // started and logs as any stop does. One that came while Node loaded the modules was held by the entry
  // (entry.ts) and is replayed here.
  let onStop: (signal: string) => void = () => {};
  const stop = new Promise<string>((resolve) => {
    onStop = resolve;
  });
  let reload: (() => void) | undefined;
  let reloadAsked = false;
  const term = () => onStop("SIGTERM");
  const int = () => onStop("SIGINT");
  const hup = () => {
    if (reload) reload();
    else reloadAsked = true;
  };
  process.once("SIGTERM", term);
  process.once("SIGINT", int);
  process.on("SIGHUP", hup);
  // Signals that came while the modules were loading (entry.ts held them): acted on now, in order.
  for (const signal of releaseSignals()) {
    if (signal === "SIGHUP") hup();
    else onStop(signal);
  }
  const running = (r: () => void) => {
    reload = r;
    if (reloadAsked) r();
  };
  try {
    return await serve(argv, { stop, running });
  } finally {
    process.off("SIGTERM", term);
    process.off("SIGINT", int);
    process.off("SIGHUP", hup);
  }
}

async function serve(argv: string[], signals: Signals): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: "string", short: "c" },
      listen: { type: "string", short: "l", multiple: true },
      threads: { type: "string", short: "t" },
      "log-level": { type: "string" },
      http: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${SERVE_USAGE}\n`);
    return 0;
  }
  const flags: ServeFlags = {
    ...(values.config !== undefined && { config: values.config }),
    ...(values.listen !== undefined && { listen: values.listen }),
    ...(values.threads !== undefined && { threads: values.threads }),
    ...(values["log-level"] !== undefined && { logLevel: values["log-level"] }),
    ...(values.http !== undefined && { http: values.http }),
  };
  let config: Config;
  let settings: ServerSettings;
  try {
    config = loadConfig(flags);
    settings = settingsFromConfig(config, flags.config);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`ntpshield: invalid configuration: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const log = createLogger(config.log.level as LogLevel);
  log.debug("starting", { version: VERSION, threads: config.server.threads, config: flags.config });
  const server = new NtpServer(settings, log);
  // The monitoring endpoint is bound first, while the process may still hold the privileges a low port
  // needs ([server] user drops them inside server.start()); until the server runs it answers 503.
  const monitor = config.http.enabled
    ? new HttpMonitor({ source: server, config, log, startedAtMs: Date.now() })
    : undefined;
  let signalled = false;
  let startup: Promise<void> = Promise.resolve();
  const stopped = signals.stop.then(async (signal) => {
    signalled = true;
    log.info("stopping", { signal });
    // server.stop() first: it ends a start() under way (workers still spawning, say), which must settle
    // before the monitor is closed.
    const serverStopped = server.stop();
    await startup.catch(() => {});
    await Promise.all([monitor?.close(), serverStopped]);
    log.info("stopped", { counters: server.stats() });
    return 0;
  });
  startup = (async () => {
    await monitor?.listen();
    if (!signalled) await server.start();
  })();
  try {
    await startup;
  } catch (err) {
    // Stopped by a signal during start-up: that stop logs and sets the exit status.
    if (signalled) return await stopped;
    await monitor?.close();
    if (err instanceof ServeError) {
      log.error(err.message, { code: err.code });
      process.stderr.write(`ntpshield: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  if (signalled) return await stopped;
  log.info("listening", {
    version: VERSION,
    node: process.version,
    addresses: server.addresses.map((a) =>
      a.family === 6 ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`,
    ),
    threads: server.threads,
    io: server.io,
    ioDetail: server.ioReason,
    http: monitor?.address ?? "off",
    nts: server.ntsKe?.address ?? "off",
    clock: server.describeClock(),
    config: flags.config ?? "(embedded defaults)",
  });
  signals.running(() => reload(server, monitor, flags, log));
  return await stopped;
}

function reload(server: NtpServer, monitor: HttpMonitor | undefined, flags: ServeFlags, log: Logger): void {
  if (!flags.config) {
    log.warn("SIGHUP ignored: running on embedded defaults, there is no configuration file to reload");
    return;
  }
  try {
    const config = loadConfig(flags);
    const restart = server.reload(settingsFromConfig(config, flags.config));
    monitor?.reconfigure(config);
    if (
      config.http.enabled !== (monitor !== undefined) ||
      (monitor && config.http.listen !== monitor.listenSpec)
    )
      restart.push("http");
    log.setLevel(config.log.level as LogLevel);
    log.info("configuration reloaded", { config: flags.config, needsRestart: restart });
  } catch (err) {
    if (err instanceof ConfigError) {
      log.error("configuration reload failed; the running configuration is unchanged", {
        config: flags.config,
        error: err.message,
        problems: err.problems,
      });
      return;
    }
    log.error("configuration reload failed; the running configuration is unchanged", { error: err });
  }
}
