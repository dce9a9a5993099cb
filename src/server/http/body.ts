// Request bodies, bounded: the endpoint takes only small JSON writes, and a body larger than that is refused
// before it is buffered (declared too large; with `Expect: 100-continue` before the client is invited to
// send it, server.ts) or as soon as it grows past the bound (chunked).

import type { IncomingMessage } from "node:http";
import { HttpError } from "./errors.ts";

/** Request bodies beyond this are refused (413): a blocklist write is a few dozen bytes. */
export const MAX_BODY_BYTES = 4096;

/** The refusal of a body too large (413). */
export function tooLarge(): HttpError {
  return new HttpError(413, `a request body is at most ${MAX_BODY_BYTES} bytes`);
}

/** True when the request declares a body larger than MAX_BODY_BYTES (Content-Length). */
export function declaredTooLarge(req: IncomingMessage): boolean {
  return Number(req.headers["content-length"] ?? 0) > MAX_BODY_BYTES;
}

/** Reads a request body of at most MAX_BODY_BYTES; 413 beyond (and the connection is closed). */
export async function readBody(req: IncomingMessage): Promise<string> {
  if (declaredTooLarge(req)) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw tooLarge(); // (chunked: no length was declared)
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}
