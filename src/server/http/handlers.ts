// The read-only pages: the dashboard's assets, /metrics, /api/stats, /api/clients and /api/snapshot. They
// never slow the NTP path: packets are served by the worker threads, and these run on the main thread,
// which only reads the workers' shared counters and walks the shared MRU list in chunks under its lock
// (MruList.entries), so a worker waits at most for one chunk. routes.ts says which path reaches which.

import type { IncomingMessage, ServerResponse } from "node:http";
import { VERSION } from "../../base/version.ts";
import { refIdText } from "../../protocol/index.ts";
import { snapshotFromMru } from "../../survey/from-mru.ts";
import type { Snapshot } from "../../survey/snapshot.ts";
import { DASHBOARD_CSS, DASHBOARD_HTML, DASHBOARD_JS } from "../dashboard/assets.ts";
import { formatAddress } from "../messages.ts";
import { clientRow, selectClients } from "./clients.ts";
import { type ClientQuery, parseClientQuery, QueryError } from "./clients-query.ts";
import type { Handler, MonitorContext } from "./context.ts";
import { HttpError } from "./errors.ts";
import type { BlocklistSummary } from "./metrics.ts";
import { METRICS_CONTENT_TYPE, metricsText } from "./metrics.ts";
import { packetTotals } from "./packet-totals.ts";
import { sendJson, sendNoContent, sendPage, sendText } from "./reply.ts";

function asset(type: string, body: string): Handler {
  return (_req, res) => sendPage(res, type, body);
}

/** The live dashboard (src/server/dashboard/): its page, script and style sheet, all served from here. */
export const dashboardPage = asset("text/html; charset=utf-8", DASHBOARD_HTML);
export const dashboardScript = asset("text/javascript; charset=utf-8", DASHBOARD_JS);
export const dashboardStyle = asset("text/css; charset=utf-8", DASHBOARD_CSS);

/** No icon: 204 rather than a 404 in the browser's console. */
export function favicon(_req: IncomingMessage, res: ServerResponse): void {
  sendNoContent(res);
}

/** GET /metrics: a Prometheus scrape (metrics.ts). */
export function metrics(_req: IncomingMessage, res: ServerResponse, _url: URL, ctx: MonitorContext): void {
  const text = metricsText({
    uptimeS: Math.max(0, ctx.now() - ctx.startedAtMs) / 1000,
    counters: ctx.source.stats(),
    state: ctx.source.state,
    defences: ctx.source.defences!,
    blocklist: blocklistSummary(ctx),
    broadcast: ctx.source.broadcastStats?.(),
    ...(ctx.source.fleetCounts === undefined ? {} : { fleet: ctx.source.fleetCounts() }),
    nts: ctx.source.ntsStats?.(),
  });
  sendText(res, METRICS_CONTENT_TYPE, text);
}

/** GET /api/stats: statsFigures as JSON. */
export function stats(_req: IncomingMessage, res: ServerResponse, _url: URL, ctx: MonitorContext): void {
  sendJson(res, 200, statsFigures(ctx));
}

/** GET /api/clients: the MRU list as `ntpq -c mrulist` shows it, with its filters (clients-query.ts). */
export function clients(_req: IncomingMessage, res: ServerResponse, url: URL, ctx: MonitorContext): void {
  let q: ClientQuery;
  try {
    q = parseClientQuery(url.searchParams);
  } catch (err) {
    if (err instanceof QueryError) throw new HttpError(400, err.message);
    throw err;
  }
  const mru = ctx.source.defences!.mru;
  // Newest first, as the list holds them: with the default order and no filter the walk can stop early.
  const plain =
    q.sort === "lstint" &&
    !q.descending &&
    !q.limited &&
    !q.kod &&
    q.mincount === 0 &&
    q.mindrop === 0 &&
    q.minlstint === 0 &&
    q.maxlstint === Number.POSITIVE_INFINITY;
  const entries = mru.snapshot(plain ? q.limit : Number.POSITIVE_INFINITY);
  const nowS = servedNowS(ctx);
  const rows = selectClients(
    entries.map((e) => clientRow(e, nowS)),
    q,
  );
  sendJson(res, 200, { now: nowS, size: mru.size, clients: rows });
}

/** GET /api/snapshot: surveySnapshot as JSON. */
export function snapshot(_req: IncomingMessage, res: ServerResponse, _url: URL, ctx: MonitorContext): void {
  sendJson(res, 200, surveySnapshot(ctx));
}

/** The figures of /api/stats (and, as JSON, of `ntpshield stats` and the dashboard). */
function statsFigures(ctx: MonitorContext): Record<string, unknown> {
  const counters = ctx.source.stats();
  const d = ctx.source.defences!;
  const state = ctx.source.state;
  const nowS = servedNowS(ctx);
  return {
    version: VERSION,
    server: serverName(ctx),
    addresses: ctx.source.addresses.map((a) => formatAddress(a.host, a.port)),
    threads: ctx.source.threads,
    takenAt: nowS,
    startedAt: ctx.startedAtMs / 1000,
    uptime: Math.max(0, ctx.now() - ctx.startedAtMs) / 1000,
    clock: state
      ? {
          stratum: state.stratum,
          leap: state.leap,
          refid: refIdText(state.refId, state.stratum),
          rootDelay: state.rootDelay,
          rootDispersion: state.rootDispersion,
          precision: state.precision,
        }
      : null,
    packets: packetTotals(counters),
    responses: counters.byResponse,
    reasons: counters.byReason,
    mru: d.mru.stats(),
    kodLimiter: d.kod.stats(),
    overload: d.overload.stats(),
    blocklist: blocklistSummary(ctx),
  };
}

/** The survey's input (src/survey/snapshot.ts, format 1). */
function surveySnapshot(ctx: MonitorContext): Snapshot {
  const c = ctx.source.stats();
  return snapshotFromMru(ctx.source.defences!.mru, {
    server: serverName(ctx),
    takenAt: servedNowS(ctx),
    startedAt: ctx.startedAtMs / 1000,
    counters: {
      received: c.received,
      served: c.byResponse.served,
      kissed: c.byResponse.kissed,
      dropped: c.byResponse.dropped,
    },
  });
}

/** Unix seconds on the clock the server serves (the machine's clock and the clock source's offset). */
function servedNowS(ctx: MonitorContext): number {
  return (ctx.now() + (ctx.source.state?.offsetMs ?? 0)) / 1000;
}

function blocklistSummary(ctx: MonitorContext): BlocklistSummary {
  const store = ctx.source.blocklistStore;
  if (!ctx.config.blocklist.enabled || store === undefined) return { enabled: false, entries: 0 };
  // The database's own figures (its write queue above all) come from memory: they are there even when the
  // count below fails, which is when an operator needs them.
  const database = store.stats();
  const shared = ctx.source.blocklistSharing?.stats();
  const extra = shared === undefined ? {} : { shared };
  try {
    return { enabled: true, entries: store.count(), database, ...extra };
  } catch (err) {
    ctx.log.warn("monitoring endpoint: blocklist count failed", { error: err });
    return { enabled: true, entries: Number.NaN, database, ...extra };
  }
}

function serverName(ctx: MonitorContext): string {
  const a = ctx.source.addresses[0];
  return a ? formatAddress(a.host, a.port) : "ntpshield";
}
