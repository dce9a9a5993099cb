// The blocklist database's one error class, its codes, and the translation of what node:sqlite throws (an
// SQLite result code) into it, so that the server's start-up line and the CLI say which file and what to do.

import { CodedError } from "../../base/errors.ts";
import { blocklistPathProblem } from "./path-check.ts";

export type BlocklistStoreErrorCode =
  | "ERR_BLOCKLIST_MISSING"
  | "ERR_BLOCKLIST_OPEN"
  | "ERR_BLOCKLIST_LOCKED"
  | "ERR_BLOCKLIST_NOT_OURS"
  | "ERR_BLOCKLIST_IO"
  | "ERR_BLOCKLIST_CLOSED"
  | "ERR_BLOCKLIST_GONE";

/** Every way the database can fail us; the message names the file and says what to do. */
export class BlocklistStoreError extends CodedError<BlocklistStoreErrorCode> {
  readonly path: string;

  constructor(code: BlocklistStoreErrorCode, path: string, message: string, cause?: unknown) {
    super(code, message, cause === undefined ? {} : { cause });
    this.path = path;
  }
}

function errcodeOf(e: unknown): number | undefined {
  const c = (e as { errcode?: unknown } | null)?.errcode;
  return typeof c === "number" ? c & 0xff : undefined;
}

function cannotOpen(path: string, why: string, cause: unknown): BlocklistStoreError {
  return new BlocklistStoreError(
    "ERR_BLOCKLIST_OPEN",
    path,
    `cannot open blocklist database ${path}: ${why}`,
    cause,
  );
}

/** A BlocklistStoreError for what node:sqlite threw while `doing` something with the file at `path`. */
export function storeError(e: unknown, path: string, doing: string, busyMs: number): BlocklistStoreError {
  if (e instanceof BlocklistStoreError) return e;
  const what = (e as { errstr?: unknown })?.errstr ?? (e instanceof Error ? e.message : String(e));
  switch (errcodeOf(e)) {
    case 5: // SQLITE_BUSY
    case 6: // SQLITE_LOCKED
      return new BlocklistStoreError(
        "ERR_BLOCKLIST_LOCKED",
        path,
        `blocklist database ${path} is locked by another process (waited ${busyMs} ms while ${doing}); ` +
          "try again, and check that no other program holds it open in a transaction",
        e,
      );
    case 14: // SQLITE_CANTOPEN
      return cannotOpen(path, blocklistPathProblem(path) ?? "unable to open the database file", e);
    case 8: // SQLITE_READONLY
    case 3: // SQLITE_PERM
    case 23: // SQLITE_AUTH
      return new BlocklistStoreError(
        "ERR_BLOCKLIST_OPEN",
        path,
        `cannot write blocklist database ${path}: ${what} (check the permissions of the file and its directory)`,
        e,
      );
    case 26: // SQLITE_NOTADB
    case 11: // SQLITE_CORRUPT
      return new BlocklistStoreError(
        "ERR_BLOCKLIST_NOT_OURS",
        path,
        `${path} is not a usable blocklist database: ${what}`,
        e,
      );
    default: {
      // A device such as /dev/null opens, then fails as "disk I/O error": the path says why.
      const why = doing === "opening it" ? blocklistPathProblem(path) : undefined;
      if (why !== undefined) return cannotOpen(path, why, e);
      return new BlocklistStoreError(
        "ERR_BLOCKLIST_IO",
        path,
        `blocklist database ${path}: ${what} while ${doing}`,
        e,
      );
    }
  }
}
