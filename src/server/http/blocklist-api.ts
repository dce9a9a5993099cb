// /api/blocklist (paper §11, docs/defences-blocklist.md): the blocklist, read by anyone who reaches the
// endpoint and changed only by a writer security.ts lets through; 409 while [blocklist] is disabled.
//
//   GET    /api/blocklist[?limit=N]                   the entries (BLOCKLIST_DEFAULT_LIMIT of them; 0 = all)
//   POST   /api/blocklist  {address, duration?, reason?}
//   DELETE /api/blocklist?address=A  (or /api/blocklist/A; A may be a prefix the server blocked, "P/len")
//
// A write goes through the server (MonitorSource.blockAddress), which stores it and tells every worker.

import type { IncomingMessage, ServerResponse } from "node:http";
import { parseDuration } from "../../config/fields.ts";
import { BlocklistError, canonicalEntry } from "../../defence/blocklist.ts";
import { checkManualEntry } from "../../defence/blocklist-input.ts";
import type { BlocklistEntry, BlocklistWrite } from "../blocklist/index.ts";
import { BlocklistStoreError, ownAddresses } from "../blocklist/index.ts";
import { ServeError } from "../errors.ts";
import { readBody } from "./body.ts";
import { numberParam, QueryError } from "./clients-query.ts";
import type { MonitorContext } from "./context.ts";
import { HttpError } from "./errors.ts";
import { sendJson } from "./reply.ts";
import { checkWriter, requireJsonBody } from "./security.ts";

/** GET /api/blocklist returns at most this many entries unless asked for more (limit=). */
const BLOCKLIST_DEFAULT_LIMIT = 1000;
const PATH = "/api/blocklist";

/** GET (and HEAD) /api/blocklist: the entries and how many there are. */
export function listBlocklist(
  _req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  ctx: MonitorContext,
): void {
  if (url.pathname !== PATH) throw new HttpError(404, "GET /api/blocklist lists the whole blocklist");
  requireBlocklist(ctx);
  const limit = numberOr400(url.searchParams, "limit", BLOCKLIST_DEFAULT_LIMIT);
  const store = ctx.source.blocklistStore!;
  const entries = guard(ctx, () => store.list());
  sendJson(res, 200, {
    enabled: true,
    count: entries.length,
    entries: entries.slice(0, limit === 0 ? entries.length : limit).map(blocklistJson),
  });
}

/** POST /api/blocklist: adds (or updates) an entry; 201 with it as stored. */
export async function addToBlocklist(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  ctx: MonitorContext,
): Promise<void> {
  checkWriter(req, ctx.allowed, ctx.log);
  if (url.pathname !== PATH) throw new HttpError(404, "POST to /api/blocklist itself");
  requireJsonBody(req);
  const body = await readBody(req);
  requireBlocklist(ctx);
  const { write, warnings } = parseBlockWrite(
    body,
    ctx.now(),
    ownAddresses(ctx.source.addresses.map((a) => a.host)),
  );
  const entry = guard(ctx, () => ctx.source.blockAddress(write));
  // Said in the answer, the entry added anyway: e.g. a loopback address cuts the operator's own tools off.
  for (const w of warnings)
    ctx.log.warn("blocklist: added over HTTP", { address: entry.address, warning: w });
  sendJson(res, 201, { ...blocklistJson(entry), warnings });
}

/** DELETE /api/blocklist?address=A or /api/blocklist/A: removes an entry; 404 if it was not there. */
export function removeFromBlocklist(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  ctx: MonitorContext,
): void {
  checkWriter(req, ctx.allowed, ctx.log);
  const tail = url.pathname.slice(PATH.length);
  let fromPath = "";
  try {
    if (tail.startsWith("/")) fromPath = decodeURIComponent(tail.slice(1));
  } catch {
    throw new HttpError(400, "the address in the path is not valid percent-encoding");
  }
  const address = fromPath !== "" ? fromPath : (url.searchParams.get("address") ?? "");
  if (address === "") throw new HttpError(400, "say which address: DELETE /api/blocklist?address=ADDR");
  requireBlocklist(ctx);
  const canonical = guard(ctx, () => canonicalEntry(address));
  const removed = guard(ctx, () => ctx.source.unblockAddress(canonical));
  if (!removed) throw new HttpError(404, `${canonical} is not on the blocklist`);
  sendJson(res, 200, { removed: true, address: canonical });
}

function requireBlocklist(ctx: MonitorContext): void {
  if (!ctx.config.blocklist.enabled || ctx.source.blocklistStore === undefined)
    throw new HttpError(409, "the blocklist is disabled ([blocklist] enabled = false)");
}

/** Runs a blocklist operation, turning its typed errors into HTTP answers. */
function guard<T>(ctx: MonitorContext, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof BlocklistError) throw new HttpError(400, err.message);
    if (err instanceof ServeError && err.code === "ERR_BLOCKLIST_DISABLED")
      throw new HttpError(409, err.message);
    if (err instanceof BlocklistStoreError) {
      ctx.log.error("monitoring endpoint: blocklist database", { code: err.code, error: err.message });
      throw new HttpError(503, `the blocklist database failed: ${err.message}`);
    }
    throw err;
  }
}

function numberOr400(p: URLSearchParams, name: string, fallback: number): number {
  try {
    return numberParam(p, name, fallback, true);
  } catch (err) {
    if (err instanceof QueryError) throw new HttpError(400, err.message);
    throw err;
  }
}

/**
 * {address, duration?, reason?}: duration in seconds or "15m"/"12h"/"7d", 0 or absent = for ever. The
 * address and reason are checked as the CLI checks them (checkManualEntry); `own` are the server's own
 * addresses, for the warning before it blocks itself.
 */
export function parseBlockWrite(
  body: string,
  nowMs: number,
  own: readonly string[] = [],
): { write: BlocklistWrite; warnings: string[] } {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    throw new HttpError(400, "the body is not JSON");
  }
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw new HttpError(400, 'expected {"address": "...", "duration": ..., "reason": "..."}');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (k !== "address" && k !== "duration" && k !== "reason")
      throw new HttpError(400, `unknown field ${JSON.stringify(k)}; known: address, duration, reason`);
  }
  if (typeof o["address"] !== "string" || o["address"] === "")
    throw new HttpError(400, "address: expected an IPv4 or IPv6 address");
  let expiresMs: number | null = null;
  if (o["duration"] !== undefined && o["duration"] !== null) {
    const s = parseDuration(o["duration"]);
    if (s === undefined || s < 0 || s > 100 * 365 * 86400)
      throw new HttpError(
        400,
        'duration: expected seconds or a string like "15m", "12h", "7d" (0 = for ever)',
      );
    if (s > 0) expiresMs = nowMs + Math.round(s * 1000);
  }
  const reason = o["reason"] ?? "added over HTTP";
  if (typeof reason !== "string") throw new HttpError(400, "reason: expected a string");
  try {
    const e = checkManualEntry(o["address"], reason, own);
    return {
      write: { address: e.address, reason: e.reason, source: "manual", expiresMs },
      warnings: e.warnings,
    };
  } catch (err) {
    if (err instanceof BlocklistError) throw new HttpError(400, err.message);
    throw err;
  }
}

function blocklistJson(e: BlocklistEntry): Record<string, unknown> {
  return {
    address: e.address,
    reason: e.reason,
    source: e.source,
    hits: e.hits,
    addedMs: e.addedMs,
    updatedMs: e.updatedMs,
    expiresMs: e.expiresMs,
    added: new Date(e.addedMs).toISOString(),
    expires: e.expiresMs === null ? null : new Date(e.expiresMs).toISOString(),
  };
}
