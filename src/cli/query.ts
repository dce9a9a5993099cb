// `ntpshield query HOST[:PORT]...`: one exchange with each server (src/client/query.ts) and what came
// back: offset, delay, stratum, refid, leap, and the address that answered. One request per server and no
// retry, from a random source port, with the reply matched by its origin timestamp: a diagnostic, not a
// way to keep time (run `ntpshield sync`, or the system's time service, for that; a query run from cron
// on the hour is exactly the USNO peak of paper §4).
//
// Exit status: 0 when every server gave a valid reply; 3 when one sent a kiss-o'-death (its code is
// printed); 1 when one gave no usable reply (none in time, unsynchronised, name not resolved); 2 for a
// usage error.

import { parseArgs } from "node:util";
import type { QueryResult } from "../client/query.ts";
import { queryServer } from "../client/query.ts";
import { tryParseHostPort } from "../config/address.ts";
import { kissCodeInfo, refIdText } from "../protocol/index.ts";

export const QUERY_USAGE = `usage: ntpshield query [--json] [--timeout S] [--follow-redirects] HOST[:PORT]...

Sends one NTP request to each server (port 123 unless given; IPv6 as [ADDR]:PORT) and prints the offset of
this machine's clock from the server's, the round-trip delay, stratum, refid, leap indicator and the address
that answered. A name is resolved and one of its addresses chosen at random.

  --json              one JSON array of results
  --timeout S         seconds to wait for each reply (default 2)
  --follow-redirects  accept the reply from another address when it echoes our exact origin timestamp

exit status: 0 every server gave a valid reply; 1 some gave no usable reply; 3 some sent a kiss-o'-death;
2 usage error`;

export const EXIT_NO_REPLY = 1;
export const EXIT_USAGE = 2;
export const EXIT_KISS = 3;

/** "none", "add-second", "delete-second" or "unsynchronised": RFC 5905 §7.3's leap indicator in words. */
export function leapText(leap: number): string {
  return ["none", "add-second", "delete-second", "unsynchronised"][leap & 3]!;
}

function signed(x: number, digits: number): string {
  return `${x >= 0 ? "+" : ""}${x.toFixed(digits)}`;
}

function textLine(r: QueryResult): string {
  const who = r.answeredBy ?? r.address ?? "-";
  const via =
    (r.redirected ? ` (redirected from ${r.address})` : "") +
    (r.redirectTo !== undefined ? ` (asks us to use ${r.redirectTo})` : "");
  const head = `${r.server}  ${who}${via}`;
  switch (r.outcome) {
    case "sample": {
      const s = r.sample!;
      return (
        `${head}  offset ${signed(s.offsetMs / 1000, 6)} s  delay ${(s.delayMs / 1000).toFixed(6)} s  ` +
        `stratum ${s.stratum}  refid ${refIdText(s.refId, s.stratum)}  leap ${leapText(s.leap)}`
      );
    }
    case "kiss":
      return `${head}  kiss-o'-death ${r.kiss}: ${kissCodeInfo(r.kiss!)?.meaning ?? "unknown kiss code"}`;
    case "unusable":
      return `${head}  unusable reply: ${r.reason}`;
    default:
      return `${head}  ${r.outcome === "no-reply" ? "no reply" : r.outcome}: ${r.reason}`;
  }
}

function jsonResult(r: QueryResult): Record<string, unknown> {
  const s = r.sample;
  return {
    server: r.server,
    host: r.host,
    port: r.port,
    addresses: r.addresses,
    address: r.address ?? null,
    answeredBy: r.answeredBy ?? null,
    answeredPort: r.answeredPort ?? null,
    redirected: r.redirected,
    redirectTo: r.redirectTo ?? null,
    ok: r.outcome === "sample",
    outcome: r.outcome,
    offset: s ? s.offsetMs / 1000 : null,
    delay: s ? s.delayMs / 1000 : null,
    stratum: s ? s.stratum : null,
    refid: s ? refIdText(s.refId, s.stratum) : null,
    leap: s ? s.leap : null,
    leapText: s ? leapText(s.leap) : null,
    version: s ? s.version : null,
    poll: s ? s.poll : null,
    precision: s ? s.precision : null,
    rootDelay: s ? s.rootDelay : null,
    rootDispersion: s ? s.rootDispersion : null,
    kiss: r.kiss ?? null,
    kissMeaning: r.kiss ? (kissCodeInfo(r.kiss)?.meaning ?? null) : null,
    error: r.outcome === "sample" || r.outcome === "kiss" ? null : (r.reason ?? r.outcome),
    localPort: r.localPort ?? null,
  };
}

export async function queryCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      json: { type: "boolean" },
      timeout: { type: "string", short: "t" },
      "follow-redirects": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${QUERY_USAGE}\n`);
    return 0;
  }
  if (positionals.length === 0) {
    process.stderr.write(`ntpshield query: no server given\n${QUERY_USAGE}\n`);
    return EXIT_USAGE;
  }
  const timeout = values.timeout === undefined ? 2 : Number(values.timeout);
  if (!(timeout > 0 && timeout <= 60)) {
    process.stderr.write(
      `ntpshield query: --timeout must be a number of seconds in (0, 60], got "${values.timeout}"\n`,
    );
    return EXIT_USAGE;
  }
  const servers = [];
  for (const text of positionals) {
    const hp = tryParseHostPort(text, { defaultPort: 123, names: true });
    if (!hp.ok) {
      process.stderr.write(`ntpshield query: "${text}": ${hp.reason}\n`);
      return EXIT_USAGE;
    }
    servers.push({ host: hp.value.host, port: hp.value.port });
  }
  const results = await Promise.all(
    servers.map((s) => queryServer(s, { timeout, followRedirects: values["follow-redirects"] === true })),
  );
  if (values.json) process.stdout.write(`${JSON.stringify(results.map(jsonResult), null, 1)}\n`);
  else for (const r of results) process.stdout.write(`${textLine(r)}\n`);
  if (results.some((r) => r.outcome === "kiss")) return EXIT_KISS;
  if (results.some((r) => r.outcome !== "sample")) return EXIT_NO_REPLY;
  return 0;
}
