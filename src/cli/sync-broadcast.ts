// `ntpshield sync --broadcast GROUP[:PORT]`: the broadcast client of the paper's §9 (src/client/broadcast.ts):
// joins the group, calibrates each server it hears by a brief unicast exchange, then only listens, and
// prints a line per broadcast taken. It never sets the clock. The group is checked against the IPv4
// multicast BCP first, as check-config checks a server's (src/config/multicast.ts).

import { BroadcastClient, type BroadcastEvent } from "../client/broadcast-listen.ts";
import { ClientError } from "../client/errors.ts";
import { tryParseHostPort } from "../config/address.ts";
import { groupFindings } from "../config/multicast.ts";
import { refIdText } from "../protocol/index.ts";
import { leapText } from "./query.ts";
import { onStopSignal } from "./stop-signals.ts";

export interface BroadcastSyncFlags {
  broadcast: string;
  interface?: string | undefined;
  source?: string | undefined;
  "calibrate-port"?: string | undefined;
  drift?: string | undefined;
  timeout?: string | undefined;
  count?: string | undefined;
  json?: boolean | undefined;
  verbose?: boolean | undefined;
  server?: string[] | undefined;
}

function signed(x: number, digits: number): string {
  return `${x >= 0 ? "+" : ""}${x.toFixed(digits)}`;
}

/** One line for an event, or undefined for those shown only with --verbose. */
export function broadcastLine(e: BroadcastEvent, verbose: boolean): string | undefined {
  switch (e.kind) {
    case "listening":
      return `listening on ${e.group.includes(":") ? `[${e.group}]` : e.group}:${e.port}`;
    case "calibrating":
      if (e.reason === "next-pair") return verbose ? `${e.server}  next calibration pair` : undefined;
      return e.reason === "drift"
        ? `${e.server}  broadcast offset moved ${signed((e.driftMs ?? 0) / 1000, 6)} s: calibrating again`
        : `${e.server}  new broadcast server: calibrating by unicast`;
    case "calibrated":
      if (e.delayMs === undefined)
        return verbose
          ? `${e.server}  calibration pair: offset ${signed(e.offsetMs / 1000, 6)} s by unicast`
          : undefined;
      return (
        `${e.server}  calibrated: offset ${signed(e.offsetMs / 1000, 6)} s by unicast (delay ` +
        `${(e.unicastDelayMs / 1000).toFixed(6)} s); broadcast delay ${(e.delayMs / 1000).toFixed(6)} s; listening`
      );
    case "calibration-failed":
      return `${e.server}  calibration failed (${e.reason}): its broadcasts are ignored until one succeeds`;
    case "sample": {
      const s = e.sample;
      return (
        `${s.server}  broadcast  offset ${signed(s.offsetMs / 1000, 6)} s  delay ${(s.delayMs / 1000).toFixed(6)} s  ` +
        `stratum ${s.stratum}  refid ${refIdText(s.refId, s.stratum)}  leap ${leapText(s.leap)}`
      );
    }
    case "ignored":
      return verbose ? `${e.server}  ignored a datagram: ${e.reason}` : undefined;
  }
}

/** Runs the broadcast client until a signal or --count samples; returns the exit status. */
export async function broadcastSync(
  f: BroadcastSyncFlags,
  fail: (message: string) => number,
): Promise<number> {
  const hp = tryParseHostPort(f.broadcast, { defaultPort: 123, names: false });
  if (!hp.ok) return fail(`--broadcast "${f.broadcast}": ${hp.reason}`);
  const group = hp.value.host;
  const findings = groupFindings({
    key: "--broadcast",
    sourceKey: "--source",
    address: group.replace(/%.*$/, ""),
    source: f.source,
    use: "client",
  });
  const isGroup = !findings.some((x) => x.rule === "not-a-group");
  for (const x of findings) {
    if (x.rule === "not-a-group") continue; // a subnet broadcast address is listened to as such
    if (x.severity === "error") return fail(`${x.key}: ${x.reason}`);
    process.stderr.write(`ntpshield sync: ${x.key}: warning: ${x.reason}\n`);
  }
  if (!isGroup && f.source !== undefined) return fail("--source is for a source-specific group (232/8)");
  const num = (
    name: string,
    text: string | undefined,
    fallback: number,
    min: number,
    max: number,
  ): number => {
    if (text === undefined) return fallback;
    const n = Number(text);
    if (text.trim() === "" || !Number.isFinite(n) || n < min || n > max)
      throw new ClientError(
        "ERR_CLIENT_INVALID_OPTION",
        `--${name} must be a number from ${min} to ${max}, got "${text}"`,
      );
    return n;
  };
  let count: number | undefined;
  let client: BroadcastClient;
  let samples = 0;
  let finish: (code: number) => void = () => {};
  const done = new Promise<number>((resolve) => {
    finish = resolve;
  });
  const json = f.json === true;
  const verbose = f.verbose === true;
  try {
    count = f.count === undefined ? undefined : num("count", f.count, 1, 1, Number.MAX_SAFE_INTEGER);
    if (count !== undefined && !Number.isInteger(count))
      return fail(`--count must be a whole number >= 1, got "${f.count}"`);
    client = new BroadcastClient({
      group,
      port: hp.value.port,
      interface: f.interface,
      source: f.source,
      calibratePort: num("calibrate-port", f["calibrate-port"], 123, 1, 65535),
      driftMs: num("drift", f.drift, 0.01, 0.0001, 10) * 1000,
      timeout: num("timeout", f.timeout, 2, 0.1, 60),
      servers: f.server ?? [],
      onEvent: (e) => {
        const stamp = new Date().toISOString();
        if (json) {
          if (verbose || e.kind !== "ignored")
            process.stdout.write(`${JSON.stringify({ time: stamp, ...e })}\n`);
        } else {
          const line = broadcastLine(e, verbose);
          if (line !== undefined) process.stdout.write(`${stamp}  ${line}\n`);
        }
        if (e.kind === "sample" && count !== undefined && ++samples >= count) finish(0);
      },
    });
    await client.start();
  } catch (err) {
    if (err instanceof ClientError) return fail(err.message);
    throw err;
  }
  const offSignal = onStopSignal(() => finish(0));
  const code = await done;
  client.stop();
  offSignal();
  return code;
}
