// `ntpshield clients`: the MRU list of a running server (paper §5: who is sending us what), in the columns
// of NTPsec's `ntpq -c mrulist`, read from the monitoring endpoint's /api/clients (docs/monitoring.md).
// The filters and sort orders are ntpq's, passed through to the server, which applies them (one code path
// for the CLI, curl and the dashboard). Also the small HTTP client that `stats` and `top` share.
//
// node:http rather than fetch(): fetch() refuses the WHATWG "bad ports" (6000, 6665-6669, 10080...), which
// an operator may have chosen for the endpoint, and reports every socket error as "fetch failed".

import { request } from "node:http";
import { parseArgs } from "node:util";
import { CodedError } from "../base/errors.ts";

export const DEFAULT_MONITOR_URL = "http://127.0.0.1:11124";
const TIMEOUT_MS = 10_000;
/** A JSON answer larger than this is not one of ours (a 1M-client snapshot is ~250 MB; clients is less). */
const MAX_ANSWER_BYTES = 512 * 1024 * 1024;

export const CLIENTS_USAGE = `usage: ntpshield clients [--url URL] [--limited] [--kod] [--mincount N] [--mindrop N]
                        [--maxlstint S] [--minlstint S] [--sort [-]KEY] [--limit N] [--json]
                        [ntpq-style tags: limited kod mincount=N sort=-count ...]

The MRU list of a running server, as ntpq -c mrulist shows it, newest first unless sorted:
  lstint  seconds since the last packet      avgint  average seconds between packets
  rstr    restriction bits of the last packet (hex: 20 limited, 400 kod, 2 noserve, 40 noquery)
  r       K kissed, L rate-limited, . neither  m, v   mode and version of the last packet
  count   packets                             drop   packets the call-gap refused
  rport   source port of the last packet

  --url       the monitoring endpoint (default ${DEFAULT_MONITOR_URL}, the server's [http] listen)
  --limited   only clients whose last packet was rate-limited;  --kod  only those kissed
  --mincount  only clients with at least N packets;  --mindrop  with at least N refused
  --maxlstint only clients heard from within S seconds;  --minlstint  not within S seconds
  --sort      lstint (default), avgint, addr, count or drop; "-" in front reverses (--sort=-count:
              elephants first)
  --limit     at most N rows
  --json      the server's JSON answer as is`;

export type MonitorErrorCode =
  | "ERR_MONITOR_URL"
  | "ERR_MONITOR_UNREACHABLE"
  | "ERR_MONITOR_HTTP"
  | "ERR_MONITOR_FORMAT";

/** The endpoint could not be asked, or did not answer as ntpshield does. The message says what to do. */
export class MonitorError extends CodedError<MonitorErrorCode> {
  /** The HTTP status, for ERR_MONITOR_HTTP. */
  readonly status: number | undefined;
  constructor(code: MonitorErrorCode, message: string, status?: number) {
    super(code, message);
    this.status = status;
  }
}

/** "http://host:port" from "host:port", "http://host:port" or "http://host:port/". */
export function monitorBase(text: string): URL {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new MonitorError(
      "ERR_MONITOR_URL",
      `${JSON.stringify(text)} is not a URL (expected http://host:port)`,
    );
  }
  if (url.protocol !== "http:")
    throw new MonitorError("ERR_MONITOR_URL", `${text}: the monitoring endpoint speaks plain http`);
  url.pathname = "/";
  url.search = "";
  url.hash = "";
  return url;
}

/** GETs `path` from the endpoint and parses the JSON answer. Throws MonitorError. */
export function getJson<T>(base: URL, path: string, timeoutMs = TIMEOUT_MS): Promise<T> {
  const url = new URL(path, base);
  return new Promise<T>((resolve, reject) => {
    const req = request(
      url,
      { method: "GET", headers: { accept: "application/json" }, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > MAX_ANSWER_BYTES) {
            req.destroy(new MonitorError("ERR_MONITOR_FORMAT", `${url.href}: the answer is too large`));
            return;
          }
          chunks.push(c);
        });
        res.on("error", (err) => reject(unreachable(base, err)));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let body: unknown;
          try {
            body = JSON.parse(text);
          } catch {
            reject(
              new MonitorError(
                "ERR_MONITOR_FORMAT",
                `${url.href} answered HTTP ${res.statusCode} with something other than JSON: is this ntpshield's monitoring endpoint?`,
              ),
            );
            return;
          }
          if (res.statusCode !== 200) {
            const why = (body as { error?: unknown } | null)?.error;
            reject(
              new MonitorError(
                "ERR_MONITOR_HTTP",
                `${url.pathname}${url.search}: HTTP ${res.statusCode}${typeof why === "string" ? `: ${why}` : ""}`,
                res.statusCode,
              ),
            );
            return;
          }
          resolve(body as T);
        });
      },
    );
    req.on("timeout", () =>
      req.destroy(
        new MonitorError("ERR_MONITOR_UNREACHABLE", `${base.href}: no answer within ${timeoutMs} ms`),
      ),
    );
    req.on("error", (err) => reject(err instanceof MonitorError ? err : unreachable(base, err)));
    req.end();
  });
}

function unreachable(base: URL, err: NodeJS.ErrnoException): MonitorError {
  return new MonitorError(
    "ERR_MONITOR_UNREACHABLE",
    `cannot reach the monitoring endpoint at ${base.href}: ${err.code ?? err.message}. Is ntpshield running, ` +
      "with [http] enabled, listening there? (--url says where; the default is " +
      `${DEFAULT_MONITOR_URL})`,
  );
}

/** One row of /api/clients (the fields this command shows; src/server/http/clients.ts has them all). */
export interface ClientRowJson {
  address: string;
  port: number;
  lstint: number;
  avgint: number;
  rstr: number;
  r: string;
  mode: number;
  version: number;
  count: number;
  drop: number;
}

export interface ClientsAnswer {
  now: number;
  size: number;
  clients: ClientRowJson[];
}

export const MRULIST_HEADER = " lstint avgint rstr r m v  count   drop rport remote address";

/** avgint as ntpq prints it: whole seconds above 5 s (or for one packet), else 2 or 3 decimals. */
function avgintText(avgint: number, count: number): string {
  if (avgint > 5 || count === 1) return String(Math.round(avgint)).padStart(6);
  if (avgint >= 1) return avgint.toFixed(2).padStart(6);
  return avgint.toFixed(3).padStart(6);
}

/** One line in ntpq's mrulist layout. */
export function formatClientRow(c: ClientRowJson): string {
  return [
    String(Math.floor(c.lstint + 0.5)).padStart(7),
    avgintText(c.avgint, c.count),
    c.rstr.toString(16).padStart(4),
    c.r,
    String(c.mode),
    String(c.version),
    String(c.count).padStart(6),
    String(c.drop).padStart(6),
    String(c.port).padStart(5),
    c.address,
  ].join(" ");
}

/** A bad flag or tag: exit status 2. */
export class UsageError extends CodedError<"ERR_MONITOR_USAGE"> {
  constructor(message: string) {
    super("ERR_MONITOR_USAGE", message);
  }
}

const TAGS = new Set(["limited", "kod", "mincount", "mindrop", "maxlstint", "minlstint", "sort", "limit"]);

/** The query string of /api/clients from the flags and ntpq-style tags. */
export function clientsQuery(values: Record<string, unknown>, tags: readonly string[]): URLSearchParams {
  const q = new URLSearchParams();
  if (values["limited"]) q.set("limited", "1");
  if (values["kod"]) q.set("kod", "1");
  for (const k of ["mincount", "mindrop", "maxlstint", "minlstint", "sort", "limit"]) {
    const v = values[k];
    if (typeof v === "string") q.set(k, v);
  }
  for (const t of tags) {
    const eq = t.indexOf("=");
    const name = eq < 0 ? t : t.slice(0, eq);
    if (!TAGS.has(name))
      throw new UsageError(`unknown tag ${JSON.stringify(t)}; known: ${[...TAGS].join(", ")}`);
    if (eq < 0 && name !== "limited" && name !== "kod")
      throw new UsageError(`${name} needs a value (${name}=...)`);
    q.set(name, eq < 0 ? "1" : t.slice(eq + 1));
  }
  return q;
}

/**
 * Writes a command's failure and returns its exit status: 2 for usage, 1 for everything else. parseArgs's
 * own errors are thrown on, for main() to print with the command's usage.
 */
export function reportFailure(command: string, err: unknown): number {
  if (err instanceof UsageError) {
    process.stderr.write(`ntpshield ${command}: ${(err as Error).message}\n`);
    return 2;
  }
  if (err instanceof MonitorError) {
    process.stderr.write(`ntpshield ${command}: ${err.message}\n`);
    // A bad URL, or a query the server refused as malformed (a bad filter or sort): the command line's fault.
    return err.code === "ERR_MONITOR_URL" || err.status === 400 ? 2 : 1;
  }
  throw err;
}

export async function clientsCommand(argv: string[]): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        url: { type: "string", short: "u" },
        limited: { type: "boolean" },
        kod: { type: "boolean" },
        mincount: { type: "string" },
        mindrop: { type: "string" },
        maxlstint: { type: "string" },
        minlstint: { type: "string" },
        sort: { type: "string" },
        limit: { type: "string" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) {
      process.stdout.write(`${CLIENTS_USAGE}\n`);
      return 0;
    }
    const base = monitorBase(values.url ?? DEFAULT_MONITOR_URL);
    const query = clientsQuery(values, positionals);
    const path = `/api/clients${query.size > 0 ? `?${query}` : ""}`;
    const answer = await getJson<ClientsAnswer>(base, path);
    if (!Array.isArray(answer?.clients))
      throw new MonitorError(
        "ERR_MONITOR_FORMAT",
        `${base.href}: /api/clients did not answer with a client list`,
      );
    if (values.json) {
      process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
      return 0;
    }
    const lines = [MRULIST_HEADER, "=".repeat(MRULIST_HEADER.length), ...answer.clients.map(formatClientRow)];
    process.stdout.write(`${lines.join("\n")}\n`);
    return 0;
  } catch (err) {
    return reportFailure("clients", err);
  }
}
