// Change polling, so that a running server picks up `ntpshield blocklist add/remove` (or an operator's
// sqlite3) within a poll interval. A trigger logs every insert, delete and change of expiry in
// blocklist_changes (schema.ts; the CLI goes through the same triggers), and `PRAGMA data_version` tells a
// connection cheaply whether any *other* connection has committed since it last looked. A watch polls the
// latter and reads the log only when it moved, so the store's own writes are never reported back to it.

import type { DatabaseSync, StatementSync } from "node:sqlite";
import { type BlocklistItem, type BlocklistUpdate, snapshotOf } from "../../defence/blocklist.ts";
import type { BlocklistEntry } from "./entry.ts";
import { COLUMNS, entryOf, type Row } from "./schema.ts";

/** What watch() reports: membership and expiry changes made by other connections (e.g. the CLI). */
export type BlocklistChange =
  | { full: false; upserts: BlocklistEntry[]; removed: string[] }
  | { full: true; entries: BlocklistEntry[] };

export interface BlocklistWatchOptions {
  /** Poll interval in ms (default 2000). */
  intervalMs?: number;
  /** Report the whole list at once, synchronously, before any change (default false). */
  initial?: boolean;
}

/** What the watches need of their store: its connection, its reads, its clock, its error handling. */
export interface WatchedStore {
  readonly db: DatabaseSync;
  /** A statement prepared once per connection: every poll runs the same few. */
  prepare(sql: string): StatementSync;
  /** The live entries, oldest first. */
  list(): BlocklistEntry[];
  now(): number;
  /** Runs `fn` on the open store; what SQLite throws comes out as a BlocklistStoreError. */
  read<T>(doing: string, fn: () => T): T;
  /** Runs a timed task; a failure is counted, reported and retried, never thrown. */
  background(fn: () => unknown, doing: string): void;
}

interface Watcher {
  onChange: (change: BlocklistChange) => void;
  lastSeq: number;
  lastDataVersion: number;
  timer: NodeJS.Timeout;
}

/** The watches on one store's connection. */
export class Watches {
  readonly #store: WatchedStore;
  readonly #watchers = new Set<Watcher>();

  constructor(store: WatchedStore) {
    this.#store = store;
  }

  /** BlocklistStore.watch(): starts a watch, returns the function that stops it. */
  start(onChange: (change: BlocklistChange) => void, options: BlocklistWatchOptions = {}): () => void {
    const intervalMs = Math.max(10, options.intervalMs ?? 2000);
    const from = this.#store.read("starting to watch", () => {
      // data_version first: a commit that lands between the two reads is then seen again, never missed.
      const lastDataVersion = this.#dataVersion();
      if (options.initial) {
        const f = this.#full();
        return { lastSeq: f.seq, lastDataVersion, initial: f.entries };
      }
      return { lastSeq: this.#maxSeq(), lastDataVersion, initial: undefined };
    });
    const w: Watcher = {
      onChange,
      lastSeq: from.lastSeq,
      lastDataVersion: from.lastDataVersion,
      timer: setInterval(
        () => this.#store.background(() => this.#poll(w), "polling for changes"),
        intervalMs,
      ),
    };
    w.timer.unref();
    this.#watchers.add(w);
    if (from.initial !== undefined) onChange({ full: true, entries: from.initial });
    return () => {
      clearInterval(w.timer);
      this.#watchers.delete(w);
    };
  }

  /** Deletes the change-log rows every watch has read, inside the caller's transaction (at each prune). */
  trimLog(): void {
    if (this.#watchers.size === 0) return;
    let seen = Number.POSITIVE_INFINITY;
    for (const w of this.#watchers) seen = Math.min(seen, w.lastSeq);
    this.#store.prepare("DELETE FROM blocklist_changes WHERE seq <= ?").run(seen);
  }

  /** Stops every watch (the store is closing). */
  stopAll(): void {
    for (const w of this.#watchers) clearInterval(w.timer);
    this.#watchers.clear();
  }

  #dataVersion(): number {
    const row = this.#store.prepare("PRAGMA data_version").get() as Record<string, number> | undefined;
    return Number(row === undefined ? 0 : (Object.values(row)[0] ?? 0));
  }

  #maxSeq(): number {
    const row = this.#store
      .prepare("SELECT seq FROM sqlite_sequence WHERE name = 'blocklist_changes'")
      .get() as { seq: number } | undefined;
    return row?.seq ?? 0;
  }

  #full(): { seq: number; entries: BlocklistEntry[] } {
    this.#store.db.exec("BEGIN");
    try {
      const seq = this.#maxSeq();
      const entries = this.#store.list();
      return { seq, entries };
    } finally {
      this.#store.db.exec("COMMIT");
    }
  }

  #poll(w: Watcher): void {
    // Order matters: read the log's end first, then data_version. If no other connection committed
    // before data_version was read, everything up to that end is our own.
    const end = this.#maxSeq();
    const dv = this.#dataVersion();
    if (dv === w.lastDataVersion) {
      w.lastSeq = end;
      return;
    }
    w.lastDataVersion = dv;
    const oldest = this.#store.prepare("SELECT min(seq) AS s FROM blocklist_changes").get() as {
      s: number | null;
    };
    if (oldest.s !== null && oldest.s > w.lastSeq + 1) {
      // Rows we never read were trimmed (another process pruned the log): start again from the whole list.
      const f = this.#full();
      w.lastSeq = f.seq;
      w.onChange({ full: true, entries: f.entries });
      return;
    }
    const now = this.#store.now();
    const rows = this.#store
      .prepare(
        `SELECT c.address AS changed, c.last AS last, ${COLUMNS.split(", ")
          .map((x) => `b.${x} AS ${x}`)
          .join(", ")}
         FROM (SELECT address, max(seq) AS last FROM blocklist_changes WHERE seq > ? GROUP BY address) c
         LEFT JOIN blocklist b ON b.address = c.address`,
      )
      .all(w.lastSeq) as unknown as (Row & { changed: string; last: number })[];
    const upserts: BlocklistEntry[] = [];
    const removed: string[] = [];
    let seq = w.lastSeq;
    for (const r of rows) {
      seq = Math.max(seq, r.last);
      if (r.address === null || (r.expires_ms !== null && r.expires_ms <= now)) removed.push(r.changed);
      else upserts.push(entryOf(r));
    }
    w.lastSeq = seq;
    if (upserts.length > 0 || removed.length > 0) w.onChange({ full: false, upserts, removed });
  }
}

/** The worker messages that carry a watch() change (see BlocklistUpdate in src/defence/blocklist.ts). */
export function updatesOf(change: BlocklistChange): BlocklistUpdate[] {
  const item = (e: BlocklistEntry): BlocklistItem => ({ address: e.address, expiresMs: e.expiresMs });
  if (change.full) return [{ type: "blocklist-replace", snapshot: snapshotOf(change.entries.map(item)) }];
  const out: BlocklistUpdate[] = [];
  if (change.removed.length > 0) out.push({ type: "blocklist-remove", addresses: change.removed });
  if (change.upserts.length > 0) out.push({ type: "blocklist-add", items: change.upserts.map(item) });
  return out;
}
