// How the endpoint answers. Every answer says not to sniff, cache or send a referrer; the dashboard's pages
// also carry a content security policy that lets them load nothing from anywhere else and be framed by
// nobody (docs/monitoring.md, safety).

import type { ServerResponse } from "node:http";
import type { HttpError } from "./errors.ts";

const JSON_TYPE = "application/json; charset=utf-8";
const COMMON_HEADERS: Record<string, string> = {
  "x-content-type-options": "nosniff",
  "cache-control": "no-store",
  "referrer-policy": "no-referrer",
};
const PAGE_HEADERS: Record<string, string> = {
  ...COMMON_HEADERS,
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-frame-options": "DENY",
};

/** A JSON answer, its length declared. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...COMMON_HEADERS,
    "content-type": JSON_TYPE,
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

/** A page of the dashboard (HTML, script or style sheet), under the page headers. */
export function sendPage(res: ServerResponse, type: string, body: string): void {
  res.writeHead(200, { ...PAGE_HEADERS, "content-type": type });
  res.end(body);
}

/** A 200 text answer (a Prometheus scrape). */
export function sendText(res: ServerResponse, type: string, text: string): void {
  res.writeHead(200, { ...COMMON_HEADERS, "content-type": type });
  res.end(text);
}

/** 204, no body. */
export function sendNoContent(res: ServerResponse): void {
  res.writeHead(204, COMMON_HEADERS);
  res.end();
}

/** A refused request: its status, and {error} saying why. */
export function sendError(res: ServerResponse, err: HttpError): void {
  // A body refused unread is not drained: the connection is closed after the answer instead.
  if (err.status === 413) res.setHeader("connection", "close");
  sendJson(res, err.status, { error: err.message });
}
