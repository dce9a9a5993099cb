// Taking the snapshots of several servers at substantially the same instant (paper §5: "running a program
// on each machine at substantially the same time to retrieve and consolidate the three lists"): one GET
// /api/snapshot per server, all sent at once, each with its own timeout, and the times recorded so that the
// skew between the snapshots is known. A server that fails is reported with what went wrong (unreachable,
// timed out, HTTP status, not JSON, not a snapshot) and does not lose the others' data; the caller decides
// whether that is fatal (--strict).
//
// node:http rather than fetch(): fetch() refuses the "bad ports" of the WHATWG list (6000, 6665-6669,
// 10080...), which an operator may well have chosen for a monitoring endpoint, and hides socket errors
// behind "fetch failed".

import { type ClientRequest, request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { SurveyError } from "./errors.ts";
import type { Snapshot } from "./snapshot.ts";
import { parseSnapshot } from "./validate.ts";

export const SNAPSHOT_PATH = "/api/snapshot";
export const DEFAULT_TIMEOUT_MS = 10_000;
/** A list of a million clients is about 250 MB of JSON; more than this is not a snapshot. */
export const DEFAULT_MAX_BYTES = 512 * 1024 * 1024;

/**
 * The snapshot URL of a server given as `http://host:port` (then /api/snapshot is asked), a full URL (used
 * as it is), or `host:port` (http assumed). Throws SurveyError ERR_SURVEY_URL.
 */
export function snapshotUrl(text: string): string {
  const trimmed = text.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) ? trimmed : `http://${trimmed}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new SurveyError(
      "ERR_SURVEY_URL",
      `${JSON.stringify(text)} is not a URL (expected http://host:port)`,
      {
        server: text,
      },
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new SurveyError("ERR_SURVEY_URL", `${text}: only http and https URLs can be surveyed`, {
      server: text,
    });
  if (url.hostname === "")
    throw new SurveyError("ERR_SURVEY_URL", `${text}: the URL names no host`, { server: text });
  if (url.pathname === "/" || url.pathname === "") url.pathname = SNAPSHOT_PATH;
  return url.href;
}

/** Times on this machine's clock (Unix seconds) around one request. */
export interface FetchTimes {
  /** Request sent. */
  sentAt: number;
  /** Answer's headers received (undefined if none came); the snapshot was taken between sentAt and this. */
  answeredAt: number | undefined;
  /** Answer complete, or the failure. */
  finishedAt: number;
}

export type FetchOutcome =
  | ({ url: string; ok: true; snapshot: Snapshot; bytes: number } & FetchTimes)
  | ({ url: string; ok: false; error: SurveyError } & FetchTimes);

export interface FetchOptions {
  /** Per server, for the whole exchange. */
  timeoutMs?: number;
  maxBytes?: number;
  progress?: Progress;
  /** This machine's clock, Unix seconds (tests). */
  now?: () => number;
}

function describeSocketError(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case "ECONNREFUSED":
      return "connection refused (ECONNREFUSED): nothing listens there";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return `host not found (${e.code})`;
    case "ECONNRESET":
      return "connection reset by the server (ECONNRESET)";
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return `no route to the host (${e.code})`;
    default:
      return e.code ? `${e.message} (${e.code})` : e.message;
  }
}

function sample(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return JSON.stringify(flat.length > 60 ? `${flat.slice(0, 57)}...` : flat);
}

/** One GET of one snapshot URL; never rejects: a failure is an outcome. */
export function fetchSnapshot(url: string, options: FetchOptions = {}): Promise<FetchOutcome> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const now = options.now ?? (() => Date.now() / 1000);
  return new Promise((resolve) => {
    const sentAt = now();
    let answeredAt: number | undefined;
    let settled = false;
    let req: ClientRequest | undefined;
    let res: IncomingMessage | undefined;
    const settle = (outcome: FetchOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(outcome);
    };
    const fail = (code: SurveyError["code"], message: string, cause?: unknown) => {
      settle({
        url,
        ok: false,
        error: new SurveyError(code, `${url}: ${message}`, { server: url, cause }),
        sentAt,
        answeredAt,
        finishedAt: now(),
      });
      res?.destroy();
      req?.destroy();
    };
    const timer = setTimeout(
      () => fail("ERR_SURVEY_TIMEOUT", `no complete answer within ${timeoutMs / 1000} s`),
      timeoutMs,
    );
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch (e) {
      fail("ERR_SURVEY_URL", "not a URL", e);
      return;
    }
    const send = parsed.protocol === "https:" ? httpsRequest : httpRequest;
    req = send(parsed, { method: "GET", headers: { accept: "application/json" }, agent: false });
    req.on("error", (e: NodeJS.ErrnoException) => fail("ERR_SURVEY_UNREACHABLE", describeSocketError(e), e));
    req.on("response", (answer) => {
      res = answer;
      answeredAt = now();
      answer.on("error", (e: NodeJS.ErrnoException) =>
        fail("ERR_SURVEY_UNREACHABLE", `the answer broke off: ${describeSocketError(e)}`, e),
      );
      if (answer.statusCode !== 200) {
        fail("ERR_SURVEY_HTTP", `HTTP ${answer.statusCode} ${answer.statusMessage ?? ""}`.trimEnd());
        return;
      }
      const chunks: Buffer[] = [];
      let bytes = 0;
      answer.on("data", (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > maxBytes)
          fail("ERR_SURVEY_TOO_LARGE", `the answer exceeds ${maxBytes} bytes: not a snapshot`);
        else chunks.push(chunk);
      });
      answer.on("aborted", () => fail("ERR_SURVEY_UNREACHABLE", "the answer broke off"));
      answer.on("end", () => {
        if (settled) return;
        const text = Buffer.concat(chunks).toString("utf8");
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch (e) {
          fail("ERR_SURVEY_BAD_JSON", `the answer is not JSON: ${sample(text)}`, e);
          return;
        }
        let snapshot: Snapshot;
        try {
          snapshot = parseSnapshot(value, url);
        } catch (e) {
          const err = e as SurveyError;
          settle({ url, ok: false, error: err, sentAt, answeredAt, finishedAt: now() });
          return;
        }
        settle({ url, ok: true, snapshot, bytes, sentAt, answeredAt, finishedAt: now() });
      });
    });
    req.end();
  });
}

/** What the survey learnt about the timing of its snapshots. */
export interface FetchSkew {
  /** Spread of the snapshots' takenAt (server clocks), seconds; null with fewer than one snapshot. */
  takenAtSpread: number | null;
  /** Spread of the midpoints between sending and the answer (this machine's clock). */
  localSpread: number | null;
  /** First request sent to last answer complete (this machine's clock). */
  elapsed: number;
}

export interface FetchSummary {
  outcomes: FetchOutcome[];
  skew: FetchSkew;
}

function spread(values: number[]): number | null {
  return values.length === 0 ? null : Math.max(...values) - Math.min(...values);
}

/** One request per URL, all in flight at once; outcomes in the order of `urls`. */
export async function fetchSnapshots(
  urls: readonly string[],
  options: FetchOptions = {},
): Promise<FetchSummary> {
  options.progress?.begin(urls);
  const outcomes = await Promise.all(
    urls.map(async (url) => {
      const outcome = await fetchSnapshot(url, options);
      options.progress?.settled(outcome);
      return outcome;
    }),
  );
  const ok = outcomes.filter((o) => o.ok);
  const skew: FetchSkew = {
    takenAtSpread: spread(ok.map((o) => o.snapshot.takenAt)),
    localSpread: spread(ok.map((o) => (o.sentAt + (o.answeredAt ?? o.finishedAt)) / 2)),
    elapsed:
      outcomes.length === 0
        ? 0
        : Math.max(...outcomes.map((o) => o.finishedAt)) - Math.min(...outcomes.map((o) => o.sentAt)),
  };
  options.progress?.end(skew);
  return { outcomes, skew };
}

/** A JSON-friendly record of one server's fetch, for the report. */
export interface SurveySource {
  url: string;
  ok: boolean;
  /** The name the snapshot gives its server. */
  server: string | null;
  sentAt: number;
  answeredAt: number | null;
  finishedAt: number;
  /** takenAt minus the midpoint of the request (this machine's clock): clock offset plus serving time. */
  offset: number | null;
  bytes: number | null;
  error: { code: string; message: string } | null;
}

export function sourcesOf(outcomes: readonly FetchOutcome[]): SurveySource[] {
  return outcomes.map((o) => ({
    url: o.url,
    ok: o.ok,
    server: o.ok ? o.snapshot.server : null,
    sentAt: o.sentAt,
    answeredAt: o.answeredAt ?? null,
    finishedAt: o.finishedAt,
    offset: o.ok ? o.snapshot.takenAt - (o.sentAt + (o.answeredAt ?? o.finishedAt)) / 2 : null,
    bytes: o.ok ? o.bytes : null,
    error: o.ok ? null : { code: o.error.code, message: o.error.message },
  }));
}

// ---------------------------------------------------------------------------------------------------------
// Progress

/** Told as the fetches go. */
export interface Progress {
  begin(urls: readonly string[]): void;
  settled(outcome: FetchOutcome): void;
  end(skew: FetchSkew): void;
}

export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

function outcomeLine(o: FetchOutcome): string {
  const took = `${(o.finishedAt - o.sentAt).toFixed(3)} s`;
  if (!o.ok) return `survey: ${o.error.message} [${o.error.code}]`;
  return `survey: ${o.url}: ${o.snapshot.server}, ${o.snapshot.clients.length} records, ${o.bytes} bytes in ${took}`;
}

/**
 * Progress on `stream` (stderr): on a terminal, one line rewritten in place while the fetches run (and a
 * line per failure); otherwise a plain line per server as it completes. Either way a last line with the
 * skew. `tty` overrides stream.isTTY (tests).
 */
export function progressTo(stream: ProgressStream, options: { tty?: boolean } = {}): Progress {
  const tty = options.tty ?? stream.isTTY === true;
  let total = 0;
  let ok = 0;
  let failed = 0;
  let started = 0;
  let ticker: ReturnType<typeof setInterval> | undefined;
  const line = () => {
    const waiting = total - ok - failed;
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    stream.write(
      `\r\x1b[Ksurvey: fetching ${total} snapshots: ${ok} done, ${failed} failed, ${waiting} waiting (${seconds} s)`,
    );
  };
  return {
    begin(urls) {
      total = urls.length;
      started = performance.now();
      if (tty) {
        line();
        ticker = setInterval(line, 200);
        ticker.unref();
      }
    },
    settled(outcome) {
      if (outcome.ok) ok++;
      else failed++;
      if (tty) {
        if (!outcome.ok) stream.write(`\r\x1b[K${outcomeLine(outcome)}\n`);
        line();
      } else {
        stream.write(`${outcomeLine(outcome)}\n`);
      }
    },
    end(skew) {
      if (ticker !== undefined) clearInterval(ticker);
      const spreadText =
        skew.takenAtSpread === null
          ? ""
          : `, snapshots ${skew.takenAtSpread.toFixed(3)} s apart (server clocks)`;
      stream.write(
        `${tty ? "\r\x1b[K" : ""}survey: ${ok} of ${total} snapshots in ${skew.elapsed.toFixed(3)} s${spreadText}\n`,
      );
    },
  };
}
