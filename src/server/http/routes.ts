// The route table of the monitoring endpoint (docs/monitoring.md), and the dispatch that applies it: which
// path and method reach which handler, 404 for any other path, 405 (with Allow) for any other method, 503
// for the pages that read the defences before the server has built them.
//
//   GET  /                 the live dashboard (and /dashboard.js, /dashboard.css)
//   GET  /metrics          Prometheus text format; ntpd-rs's names where the meaning is the same
//   GET  /api/stats        the counters, the clock, the MRU list's and the KoD limiter's figures (JSON)
//   GET  /api/clients      the MRU list with `ntpq -c mrulist`'s filters and sort orders (JSON)
//   GET  /api/snapshot     the whole MRU list with the clock and counters: the survey's input (snapshot.ts)
//   GET  /api/blocklist    the blocklist (paper §11)
//   POST /api/blocklist    add {address, duration?, reason?}      } only from [control] allow;
//   DELETE /api/blocklist?address=A (or /api/blocklist/A)        } 409 while [blocklist] is disabled

import type { IncomingMessage, ServerResponse } from "node:http";
import { addToBlocklist, listBlocklist, removeFromBlocklist } from "./blocklist-api.ts";
import type { Handler, MonitorContext } from "./context.ts";
import { HttpError } from "./errors.ts";
import {
  clients,
  dashboardPage,
  dashboardScript,
  dashboardStyle,
  favicon,
  metrics,
  snapshot,
  stats,
} from "./handlers.ts";

interface Route {
  /** Also answers the paths below it (path + "/..."). */
  below?: boolean;
  /** Answered 503 until the server has built its defences (the first moments of start-up). */
  needsDefences?: boolean;
  /** A handler per method answered (any other is 405, Allow naming these), or one for every method. */
  handlers: Readonly<Record<string, Handler>> | Handler;
}

/** GET and HEAD (Node writes a HEAD answer's headers only). */
const read = (handler: Handler): Record<string, Handler> => ({ GET: handler, HEAD: handler });

const ROUTES: ReadonlyMap<string, Route> = new Map<string, Route>([
  ["/", { handlers: read(dashboardPage) }],
  ["/dashboard.js", { handlers: read(dashboardScript) }],
  ["/dashboard.css", { handlers: read(dashboardStyle) }],
  ["/favicon.ico", { handlers: favicon }],
  ["/metrics", { needsDefences: true, handlers: read(metrics) }],
  ["/api/stats", { needsDefences: true, handlers: read(stats) }],
  ["/api/clients", { needsDefences: true, handlers: read(clients) }],
  ["/api/snapshot", { needsDefences: true, handlers: read(snapshot) }],
  [
    "/api/blocklist",
    {
      below: true,
      handlers: {
        GET: listBlocklist,
        HEAD: listBlocklist,
        POST: addToBlocklist,
        DELETE: removeFromBlocklist,
      },
    },
  ],
]);

function findRoute(path: string): Route | undefined {
  const exact = ROUTES.get(path);
  if (exact !== undefined) return exact;
  for (const [prefix, route] of ROUTES) {
    if (route.below && path.startsWith(`${prefix}/`)) return route;
  }
  return undefined;
}

/** Answers a request by the table; rejects with HttpError to refuse it (the server answers those). */
export async function dispatch(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: MonitorContext,
): Promise<void> {
  const url = new URL(req.url ?? "/", "http://monitor.invalid");
  const path = url.pathname;
  const route = findRoute(path);
  if (route === undefined) throw new HttpError(404, `no such page: ${path}`);
  const method = req.method ?? "GET";
  const handlers = route.handlers;
  const handler =
    typeof handlers === "function"
      ? handlers
      : Object.hasOwn(handlers, method)
        ? handlers[method]
        : undefined;
  if (handler === undefined) {
    const allow = Object.keys(handlers).join(", ");
    res.setHeader("allow", allow);
    throw new HttpError(405, `method not allowed; use ${allow}`);
  }
  if (route.needsDefences && ctx.source.defences === undefined)
    throw new HttpError(503, "the server is starting");
  await handler(req, res, url, ctx);
}
