// `ntpshield query HOST[:PORT]...`: one exchange with each server (src/client/query.ts) and what came
// back: offset, delay, stratum, refid, leap, and the address that answered. One request per server and no
// retry, from a random source port, with the reply matched by its origin timestamp: a diagnostic, not a
// way to keep time (run `ntpshield sync`, or the system's time service, for that; a query run from cron
// on the hour is exactly the USNO peak of paper §4).
//
// Exit status: 0 when every server gave a valid reply; 3 when one sent a kiss-o'-death (its code is
// printed); 1 when one gave no usable reply (none in time, unsynchronised, name not resolved); 2 for a
// usage error.

import { lookup } from "node:dns/promises";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { unmapAddress } from "../client/address.ts";
import { ntsKeyExchange, ntsQuery } from "../client/nts.ts";
import type { QueryResult } from "../client/query.ts";
import { newQueryResult, queryServer } from "../client/query.ts";
import { tryParseHostPort } from "../config/address.ts";
import { NTS_KE_PORT } from "../nts/ke-records.ts";
import { kissCodeInfo, refIdText } from "../protocol/index.ts";

export const QUERY_USAGE = `usage: ntpshield query [--json] [--timeout S] [--follow-redirects] HOST[:PORT]...
       ntpshield query --nts [--nts-ca FILE] [--json] [--timeout S] HOST[:KE-PORT]...

Sends one NTP request to each server (port 123 unless given; IPv6 as [ADDR]:PORT) and prints the offset of
this machine's clock from the server's, the round-trip delay, stratum, refid, leap indicator and the address
that answered. A name is resolved and one of its addresses chosen at random.

  --json              one JSON array of results
  --timeout S         seconds to wait for each reply (default 2)
  --follow-redirects  accept the reply from another address when it echoes our exact origin timestamp
  --nts               Network Time Security (RFC 8915): HOST[:PORT] is the NTS-KE server (port 4460 unless
                      given); the request goes where it says (its server and port, else HOST:123) and only
                      an authenticated reply counts
  --nts-ca FILE       PEM certificates to trust for NTS-KE instead of the system's

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

/**
 * One NTS exchange (RFC 8915): NTS-KE with host:kePort, then one authenticated request to the server and
 * port it named, reported in the shape of a plain query (`server` is the KE server, `address` where the
 * NTP went). A reply that does not authenticate is no reply; an NTS NAK is reported as the kiss NTSN.
 */
async function ntsQueryServer(
  host: string,
  kePort: number,
  ca: Buffer | undefined,
  timeout: number,
): Promise<QueryResult> {
  const result = newQueryResult(host, kePort, "error");
  try {
    const session = await ntsKeyExchange({ host, port: kePort, ca, timeout: Math.max(timeout, 5) });
    const addresses = await lookup(session.ntpHost, { all: true, order: "verbatim" });
    result.addresses = addresses.map((a) => unmapAddress(a.address));
    const address = result.addresses[0];
    if (address === undefined)
      return { ...result, outcome: "resolve-failed", reason: "the name has no address" };
    const r = await ntsQuery(session, address, { timeout });
    result.address = address;
    result.ignored = r.ignored;
    result.redirected = session.ntpHost !== host;
    if (r.outcome === "sample" || r.outcome === "kiss" || r.outcome === "nak") {
      result.answeredBy = address;
      result.answeredPort = session.ntpPort;
    }
    switch (r.outcome) {
      case "sample":
        return { ...result, outcome: "sample", sample: r.sample };
      case "nak":
        return { ...result, outcome: "kiss", kiss: "NTSN", kissAction: "info" };
      case "kiss":
        return {
          ...result,
          outcome: "kiss",
          kiss: r.kiss,
          kissAction: kissCodeInfo(r.kiss ?? "")?.action ?? "info",
        };
      case "unusable":
        return { ...result, outcome: "unusable", reason: r.reason };
      case "no-reply":
        return {
          ...result,
          outcome: "no-reply",
          reason: r.reason ?? `no authenticated reply within ${timeout} s`,
        };
      default:
        return { ...result, outcome: "error", reason: r.reason };
    }
  } catch (err) {
    return { ...result, outcome: "error", reason: `NTS-KE: ${(err as Error).message}` };
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
      nts: { type: "boolean" },
      "nts-ca": { type: "string" },
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
    // With --nts the server named is the NTS-KE server, port 4460 unless given (RFC 8915 §7.1).
    const hp = tryParseHostPort(text, { defaultPort: values.nts ? NTS_KE_PORT : 123, names: true });
    if (!hp.ok) {
      process.stderr.write(`ntpshield query: "${text}": ${hp.reason}\n`);
      return EXIT_USAGE;
    }
    servers.push({ host: hp.value.host, port: hp.value.port });
  }
  let ca: Buffer | undefined;
  if (values["nts-ca"] !== undefined) {
    try {
      ca = readFileSync(values["nts-ca"]);
    } catch (err) {
      process.stderr.write(`ntpshield query: --nts-ca: ${(err as Error).message}\n`);
      return EXIT_USAGE;
    }
  }
  const nts = values.nts === true;
  const results = await Promise.all(
    servers.map((s) =>
      nts
        ? ntsQueryServer(s.host, s.port, ca, timeout)
        : queryServer(s, { timeout, followRedirects: values["follow-redirects"] === true }),
    ),
  );
  if (values.json) process.stdout.write(`${JSON.stringify(results.map(jsonResult), null, 1)}\n`);
  else for (const r of results) process.stdout.write(`${textLine(r)}\n`);
  if (results.some((r) => r.outcome === "kiss")) return EXIT_KISS;
  if (results.some((r) => r.outcome !== "sample")) return EXIT_NO_REPLY;
  return 0;
}
