// The blocklist database's layout: the table, the change log its triggers fill for the watch, the header
// fields that mark a file as ours, and the row <-> entry mapping. An existing file is checked before
// anything in it is changed, so a mistyped path never alters another program's database.

import type { DatabaseSync } from "node:sqlite";
import type { BlocklistEntry } from "./entry.ts";
import { BlocklistStoreError } from "./errors.ts";

/** "NTSB" in the SQLite header's application id, so we never take over somebody else's database. */
const APPLICATION_ID = 0x4e545342;
const SCHEMA_VERSION = 1;

const SCHEMA_SQL = `
CREATE TABLE blocklist (
  address    TEXT PRIMARY KEY NOT NULL,
  reason     TEXT NOT NULL DEFAULT '',
  added_ms   INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  expires_ms INTEGER,
  hits       INTEGER NOT NULL DEFAULT 0,
  source     TEXT NOT NULL CHECK (source IN ('auto', 'manual'))
) WITHOUT ROWID;
CREATE INDEX blocklist_expiry ON blocklist (expires_ms) WHERE expires_ms IS NOT NULL;
CREATE TABLE blocklist_changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, address TEXT NOT NULL);
CREATE TRIGGER blocklist_log_insert AFTER INSERT ON blocklist BEGIN
  INSERT INTO blocklist_changes (address) VALUES (new.address);
END;
CREATE TRIGGER blocklist_log_delete AFTER DELETE ON blocklist BEGIN
  INSERT INTO blocklist_changes (address) VALUES (old.address);
END;
-- Hits and reasons change often and matter to no worker; only membership and expiry are logged.
CREATE TRIGGER blocklist_log_update AFTER UPDATE ON blocklist
  WHEN old.expires_ms IS NOT new.expires_ms OR old.address IS NOT new.address BEGIN
  INSERT INTO blocklist_changes (address) VALUES (old.address);
  INSERT INTO blocklist_changes (address) VALUES (new.address);
END;
PRAGMA application_id = ${APPLICATION_ID};
PRAGMA user_version = ${SCHEMA_VERSION};
`;

/** The table's columns, in order, for a SELECT that makes entries. */
export const COLUMNS = "address, reason, added_ms, updated_ms, expires_ms, hits, source";

/** A row of the blocklist table as node:sqlite returns it. */
export interface Row {
  address: string;
  reason: string;
  added_ms: number;
  updated_ms: number;
  expires_ms: number | null;
  hits: number;
  source: string;
}

export function entryOf(r: Row): BlocklistEntry {
  return {
    address: r.address,
    reason: r.reason,
    addedMs: r.added_ms,
    updatedMs: r.updated_ms,
    expiresMs: r.expires_ms,
    hits: r.hits,
    source: r.source === "manual" ? "manual" : "auto",
  };
}

function pragma(db: DatabaseSync, name: string): number {
  const row = db.prepare(`PRAGMA ${name}`).get() as Record<string, number> | undefined;
  return Number(row === undefined ? 0 : (Object.values(row)[0] ?? 0));
}

/**
 * Whether the file already holds our tables: false when it is empty (new), true when it is ours at a
 * schema we know. ERR_BLOCKLIST_NOT_OURS for anything else (another program's database, a newer schema).
 */
export function isOurs(db: DatabaseSync, path: string): boolean {
  const appId = pragma(db, "application_id");
  const tables = (db.prepare("SELECT count(*) AS n FROM sqlite_schema").get() as { n: number }).n;
  if (appId === 0 && tables === 0) return false;
  if (appId !== APPLICATION_ID) {
    throw new BlocklistStoreError(
      "ERR_BLOCKLIST_NOT_OURS",
      path,
      `${path} is an SQLite database but not an ntpshield blocklist; refusing to change it`,
    );
  }
  const version = pragma(db, "user_version");
  if (version > SCHEMA_VERSION) {
    throw new BlocklistStoreError(
      "ERR_BLOCKLIST_NOT_OURS",
      path,
      `${path} was written by a newer ntpshield (blocklist schema ${version}, this one knows ${SCHEMA_VERSION})`,
    );
  }
  return true;
}

/** Creates the tables in an empty file, under the write lock. */
export function createSchema(db: DatabaseSync, path: string): void {
  db.exec("BEGIN IMMEDIATE");
  try {
    // Another process may have created it between our check and our lock.
    if (!isOurs(db, path)) db.exec(SCHEMA_SQL);
    db.exec("COMMIT");
  } catch (e) {
    db.exec("ROLLBACK");
    throw e;
  }
}
