// Request bodies, bounded: the endpoint takes only small JSON writes, and a body larger than that is refused
// before it is buffered (declared too large) or as soon as it grows past the bound (chunked).

import type { IncomingMessage } from "node:http";
import { HttpError } from "./errors.ts";

/** Request bodies beyond this are refused (413): a blocklist write is a few dozen bytes. */
export const MAX_BODY_BYTES = 4096;

/** Reads a request body of at most MAX_BODY_BYTES; 413 beyond (and the connection is closed). */
export async function readBody(req: IncomingMessage): Promise<string> {
  const tooLarge = () => new HttpError(413, `a request body is at most ${MAX_BODY_BYTES} bytes`);
  if (Number(req.headers["content-length"] ?? 0) > MAX_BODY_BYTES) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw tooLarge(); // (chunked: no length was declared)
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}
