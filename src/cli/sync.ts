// `ntpshield sync --server HOST[:PORT]...`: runs the client that behaves (src/client) for real and prints
// a line per poll: the measured offset and delay, or what went wrong, and when the next request will go.
// It never sets the clock: it measures, for monitoring, for comparing servers, or as a reference for how
// an embedded client should poll. docs/client.md says how to run it beside chronyd or
// systemd-timesyncd.
//
// Exit status: 0 after SIGINT/SIGTERM or --count polls; 3 when every server has refused us (DENY/RSTR,
// now or remembered from an earlier run); 2 for a usage error.

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { formatServer } from "../client/address.ts";
import { NtpClient } from "../client/client.ts";
import { ClientError } from "../client/errors.ts";
import type { ClientEvent } from "../client/events.ts";
import { NtsSources } from "../client/nts.ts";
import { defaultStatePath } from "../client/state-file.ts";
import { tryParseHostPort } from "../config/address.ts";
import { NTS_KE_PORT } from "../nts/ke-records.ts";
import { kissCodeInfo, refIdText } from "../protocol/index.ts";
import { leapText } from "./query.ts";
import { onStopSignal } from "./stop-signals.ts";
import { broadcastSync } from "./sync-broadcast.ts";
import { manycastSync } from "./sync-manycast.ts";

export const SYNC_USAGE = `usage: ntpshield sync --server HOST[:PORT] [--server HOST[:PORT]]... [options]

Polls the servers as a well-behaved client does and prints a line per poll; it does not set the clock.
The first request goes out at a random moment within --start-spread; the interval starts at --minpoll and
doubles up to --maxpoll while a server is stable; unanswered, it backs off to --maxpoll; a RATE
kiss-o'-death lengthens it; DENY or RSTR stops the use of that server, remembered in the state file.
With several servers, falsetickers are dropped and the three with the lowest root distance kept.

  --server HOST[:PORT]  a server (name or address; port 123 unless given); repeat for several
  --minpoll S           first and lowest interval, seconds (default 64; never below 15)
  --maxpoll S           highest interval, seconds (default 1024)
  --burst               a start-up burst of 4 requests, 2-3 s apart, while the server answers
  --follow-redirects    accept a reply from another address with our exact origin timestamp, and switch
  --state FILE          where DENY/RSTR refusals are remembered (default ${defaultStatePath()})
  --no-state            remember refusals for this run only
  --start-spread S      the first request within S seconds (default 64; at least 1)
  --timeout S           seconds to wait for each reply (default 2)
  --count N             stop after N polls
  --json                one JSON object per line (the client's events)
  --verbose             also print name resolutions and ignored datagrams
  --nts                 Network Time Security (RFC 8915): each --server is an NTS-KE server (port 4460 unless
                        given); NTP goes where it says, every reply must authenticate, cookies are renewed
  --nts-ca FILE         PEM certificates to trust for NTS-KE instead of the system's

Broadcast client (paper §9): ntpshield sync --broadcast GROUP[:PORT] [options]
Joins the group (or listens on a subnet broadcast address), calibrates each server it hears by a brief
unicast exchange (the broadcast path's delay), then only listens. Broadcasts from servers it has not
calibrated with are ignored; a server whose broadcasts move beyond --drift is calibrated again.

  --broadcast G[:PORT]  the group to join (IANA's NTP groups: docs/multicast.md) or a subnet broadcast
                        address; port 123 unless given
  --interface ADDR      the local address whose interface joins the group
  --source ADDR         the source of a source-specific group (232/8), joined with IGMPv3
  --server ADDR         listen only to this server (repeat for several); default: any
  --calibrate-port N    the port servers answer unicast on (default 123)
  --drift S             recalibrate when broadcasts move by more than S seconds (default 0.01)

Manycast discovery (paper §9): ntpshield sync --manycast GROUP[:PORT] [options]
Every --interval, one request to the group; synchronised servers that joined it answer by unicast; each
answer is matched by its origin timestamp whatever address it comes from, and the best three by root
distance are kept, all others discarded. A line per round.

  --manycast G[:PORT]   the group to ask; port 123 unless given
  --interface ADDR      the local address to send from
  --ttl N               the request's TTL or hop limit (default 1: this subnet)
  --interval S          seconds between rounds (default 64)
  --timeout S           seconds to gather answers each round (default 1)
  --count N             stop after N rounds

exit status: 0 stopped (signal or --count); 3 every server refused us; 2 usage error`;

const EXIT_USAGE = 2;
const EXIT_REFUSED = 3;
const POLL_KINDS = new Set(["sample", "no-reply", "unusable", "kiss"]);

function signed(x: number, digits: number): string {
  return `${x >= 0 ? "+" : ""}${x.toFixed(digits)}`;
}

function secs(s: number): string {
  return `${Math.round(s)} s`;
}

/** One line for an event, or undefined for events shown only with --verbose. */
export function eventLine(
  e: ClientEvent,
  verbose: boolean,
  stateFile: string | undefined,
): string | undefined {
  switch (e.kind) {
    case "sample": {
      const s = e.sample;
      const tags = [e.burst ? "burst" : "", e.redirected ? "redirected" : ""].filter(Boolean).join(", ");
      return (
        `${e.source}  ${e.address}  offset ${signed(s.offsetMs / 1000, 6)} s  delay ${(s.delayMs / 1000).toFixed(6)} s  ` +
        `stratum ${s.stratum}  refid ${refIdText(s.refId, s.stratum)}  leap ${leapText(s.leap)}  ` +
        `interval ${secs(e.intervalS)}  next ${secs(e.nextS)}${tags ? `  (${tags})` : ""}`
      );
    }
    case "no-reply":
      return `${e.source}  ${e.address}  no reply  interval ${secs(e.intervalS)}  next ${secs(e.nextS)} (backing off)`;
    case "unusable":
      return `${e.source}  ${e.address}  unusable reply (${e.reason})  interval ${secs(e.intervalS)}  next ${secs(e.nextS)}`;
    case "kiss": {
      const meaning = kissCodeInfo(e.code)?.meaning ?? "unknown kiss code";
      if (e.action === "stop") {
        const until = new Date(e.untilMs ?? 0).toISOString();
        const where = stateFile ? `, remembered in ${stateFile}` : "";
        return `${e.source}  ${e.address}  kiss-o'-death ${e.code} (${meaning}): stopped using ${formatServer(e.address, e.port)} until ${until}${where}`;
      }
      return `${e.source}  ${e.address}  kiss-o'-death ${e.code} (${meaning})  interval ${secs(e.intervalS)}  next ${secs(e.nextS)}`;
    }
    case "redirect":
      return `${e.source}  redirected: ${e.from} answered from ${formatServer(e.to, e.port)}; using it from now on`;
    case "stopped":
      return `${e.source}  stopped: ${e.reason}`;
    case "resolve-failed":
      return `${e.source}  cannot resolve: ${e.error}  next ${secs(e.nextS)}`;
    case "woken":
      return `${e.source}  polled again: ${e.reason}`;
    case "selection": {
      const parts = [`kept ${e.kept.join(", ") || "none"}`];
      if (e.falsetickers.length > 0) parts.push(`falsetickers ${e.falsetickers.join(", ")}`);
      if (e.surplus.length > 0) parts.push(`standby ${e.surplus.join(", ")}`);
      if (!e.majority) parts.push("no majority");
      if (e.systemPeer !== undefined && e.offsetS !== undefined) {
        parts.push(`offset ${signed(e.offsetS, 6)} s by ${e.systemPeer}`);
      }
      return `selection: ${parts.join("; ")}`;
    }
    case "resolved":
      return verbose ? `${e.source}  resolved to ${e.addresses.join(", ")}; chose ${e.chosen}` : undefined;
    case "ignored":
      return verbose
        ? `${e.source}  ignored a datagram from ${formatServer(e.from, e.fromPort)}: ${e.reason}`
        : undefined;
  }
}

function positiveSeconds(
  name: string,
  text: string | undefined,
  fallback: number | undefined,
): number | undefined {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n) || n < 0) {
    throw new ClientError(
      "ERR_CLIENT_INVALID_OPTION",
      `--${name} must be a number of seconds, got "${text}"`,
    );
  }
  return n;
}

export async function syncCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      server: { type: "string", short: "s", multiple: true },
      minpoll: { type: "string" },
      maxpoll: { type: "string" },
      burst: { type: "boolean" },
      "follow-redirects": { type: "boolean" },
      state: { type: "string" },
      "no-state": { type: "boolean" },
      "start-spread": { type: "string" },
      timeout: { type: "string" },
      count: { type: "string" },
      json: { type: "boolean" },
      verbose: { type: "boolean", short: "v" },
      nts: { type: "boolean" },
      "nts-ca": { type: "string" },
      help: { type: "boolean", short: "h" },
      broadcast: { type: "string" },
      interface: { type: "string" },
      source: { type: "string" },
      "calibrate-port": { type: "string" },
      drift: { type: "string" },
      manycast: { type: "string" },
      ttl: { type: "string" },
      interval: { type: "string" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${SYNC_USAGE}\n`);
    return 0;
  }
  const fail = (message: string): number => {
    process.stderr.write(`ntpshield sync: ${message}\n`);
    return EXIT_USAGE;
  };
  if (positionals.length > 0)
    return fail(`unexpected argument "${positionals[0]}" (servers are given with --server)`);
  if (values.broadcast !== undefined) {
    const only: string[] = [];
    for (const text of values.server ?? []) {
      const hp = tryParseHostPort(text, { defaultPort: 123, names: false });
      if (!hp.ok) return fail(`--server "${text}": ${hp.reason}`);
      only.push(hp.value.host);
    }
    return broadcastSync({ ...values, broadcast: values.broadcast, server: only }, fail);
  }
  if (values.manycast !== undefined) return manycastSync({ ...values, manycast: values.manycast }, fail);
  for (const flag of ["interface", "source", "calibrate-port", "drift"] as const)
    if (values[flag] !== undefined) return fail(`--${flag} goes with --broadcast`);
  for (const flag of ["ttl", "interval"] as const)
    if (values[flag] !== undefined) return fail(`--${flag} goes with --manycast`);
  const specs = values.server ?? [];
  if (specs.length === 0)
    return fail(`no server given: name at least one with --server HOST[:PORT]\n${SYNC_USAGE}`);
  let servers = [];
  for (const text of specs) {
    // With --nts a server is an NTS-KE server, port 4460 unless given (RFC 8915 §7.1).
    const hp = tryParseHostPort(text, { defaultPort: values.nts ? NTS_KE_PORT : 123, names: true });
    if (!hp.ok) return fail(`--server "${text}": ${hp.reason}`);
    servers.push({ host: hp.value.host, port: hp.value.port });
  }
  let nts: NtsSources | undefined;
  if (values.nts) {
    let ca: Buffer | undefined;
    try {
      ca = values["nts-ca"] === undefined ? undefined : readFileSync(values["nts-ca"]);
    } catch (err) {
      return fail(`--nts-ca: ${(err as Error).message}`);
    }
    nts = new NtsSources(servers, { ca });
    try {
      // Where NTP goes: each KE server's Server and Port Negotiation (the fleet's choice, RFC 8915 §4.1.7).
      servers = await nts.establish();
    } catch (err) {
      process.stderr.write(`ntpshield sync: NTS-KE: ${(err as Error).message}\n`);
      return 1;
    }
  } else if (values["nts-ca"] !== undefined) return fail("--nts-ca needs --nts");
  let count: number | undefined;
  if (values.count !== undefined) {
    count = Number(values.count);
    if (!Number.isInteger(count) || count < 1)
      return fail(`--count must be a whole number >= 1, got "${values.count}"`);
  }
  if (values.state !== undefined && values["no-state"])
    return fail("--state and --no-state do not go together");
  const stateFile = values["no-state"] ? undefined : (values.state ?? defaultStatePath());
  const verbose = values.verbose === true;
  const json = values.json === true;

  let client: NtpClient;
  let polls = 0;
  let finish: (code: number) => void = () => {};
  const done = new Promise<number>((resolve) => {
    finish = resolve;
  });
  try {
    client = new NtpClient({
      servers,
      minpoll: positiveSeconds("minpoll", values.minpoll, undefined),
      maxpoll: positiveSeconds("maxpoll", values.maxpoll, undefined),
      startSpread: positiveSeconds("start-spread", values["start-spread"], undefined),
      replyTimeout: positiveSeconds("timeout", values.timeout, undefined),
      burst: values.burst ? 3 : 0,
      followRedirects: values["follow-redirects"] === true,
      stateFile,
      ...(nts !== undefined ? { nts } : {}),
      onWarning: (m) => process.stderr.write(`ntpshield sync: ${m}\n`),
      onEvent: (e) => {
        const stamp = new Date().toISOString();
        if (json) {
          if (verbose || (e.kind !== "ignored" && e.kind !== "resolved")) {
            process.stdout.write(`${JSON.stringify({ time: stamp, ...e })}\n`);
          }
        } else {
          const line = eventLine(e, verbose, stateFile);
          if (line !== undefined) process.stdout.write(`${stamp}  ${line}\n`);
        }
        if (e.kind === "stopped" && client.core.usableSources() === 0) {
          process.stderr.write("ntpshield sync: every server has refused us (DENY/RSTR): stopping\n");
          finish(EXIT_REFUSED);
        }
        if (POLL_KINDS.has(e.kind) && count !== undefined && ++polls >= count) finish(0);
      },
    });
  } catch (err) {
    if (err instanceof ClientError) return fail(err.message);
    throw err;
  }
  const offSignal = onStopSignal(() => finish(0));
  if (!json) {
    const o = client.core.options;
    process.stdout.write(
      `${new Date().toISOString()}  sync ${servers.map((s) => formatServer(s.host, s.port)).join(", ")}: ` +
        `minpoll ${o.minpoll} s, maxpoll ${o.maxpoll} s, first request within ${o.startSpread} s` +
        `${o.burst > 0 ? ", burst" : ""}${o.followRedirects ? ", following redirects" : ""}` +
        `${nts !== undefined ? ", NTS-authenticated" : ""}; the clock is not set\n`,
    );
  }
  client.start();
  const code = await done;
  client.stop();
  offSignal();
  return code;
}
