// The blocklist's durable half: an embedded SQLite database (node:sqlite), owned by the main thread.
// Paper §11: the server "keeps the KoD address of an offending client indefinitely and discards all
// further packets from that client"; MISSION.md asks that this list survive restarts and not be lost.
//
// Durability: WAL journal with synchronous=FULL, so a transaction is on disk (WAL fsynced) before COMMIT
// returns. NORMAL would already survive a kill -9 of the server (the OS keeps the written WAL pages), but
// not a power cut; since writes come in batches a few times a second at most, an fsync per batch is cheap.
// The server's own writes are queued (enqueue*) and committed in one transaction per batch, off the
// per-packet path; the CLI's writes (add/remove) commit at once. Readers (the CLI's list) never wait for a
// writer in WAL mode; writers wait up to busy_timeout for each other.
//
// Change polling: a trigger logs every insert, delete and change of expiry in blocklist_changes (the CLI
// goes through the same triggers), and `PRAGMA data_version` tells a connection cheaply whether any
// *other* connection has committed since it last looked. watch() polls the latter and reads the log only
// when it moved, so a running server picks up `ntpshield blocklist add/remove` within a poll interval.

import { existsSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import {
  type BlocklistItem,
  type BlocklistUpdate,
  canonicalAddress,
  snapshotOf,
} from "../../defence/blocklist.ts";
import type { BlocklistEntry, BlocklistWrite } from "./entry.ts";
import { BlocklistStoreError, storeError } from "./errors.ts";
import { loadSqlite } from "./load-sqlite.ts";
import { COLUMNS, createSchema, entryOf, isOurs, type Row } from "./schema.ts";
import { type Op, WriteQueue } from "./write-queue.ts";

/** What watch() reports: membership and expiry changes made by other connections (e.g. the CLI). */
export type BlocklistChange =
  | { full: false; upserts: BlocklistEntry[]; removed: string[] }
  | { full: true; entries: BlocklistEntry[] };

export interface BlocklistStoreStats {
  /** Write transactions committed (batches and direct writes). */
  transactions: number;
  /** Writes committed (an upsert, a removal or one address's accumulated hits each count one). */
  written: number;
  /** Writes waiting for the next flush. */
  queued: number;
  /** Writes refused because the queue was full (the database kept failing). */
  dropped: number;
  /** Expired entries deleted. */
  pruned: number;
  /** Background flushes or polls that failed (reported through onError). */
  errors: number;
}

export interface BlocklistStoreOptions {
  /** Create the file when missing (default true); false gives ERR_BLOCKLIST_MISSING instead. */
  create?: boolean;
  /** How long a write waits for another process's write to finish, in ms (default 5000). */
  busyTimeoutMs?: number;
  /** How long an enqueued write may wait before its batch is committed, in ms (default 250). */
  flushIntervalMs?: number;
  /** A batch this large is committed at once, without waiting for the timer (default 1000). */
  maxBatch?: number;
  /** Queued writes beyond this are dropped and counted (only while the database keeps failing). */
  maxQueue?: number;
  /** Delete expired entries this often, in ms; 0 = only when prune() is called (default 60000). */
  pruneIntervalMs?: number;
  /** The clock (ms since the epoch); tests set it. */
  now?: () => number;
  /** Background failures (timed flushes, polls, prunes); they are retried, never thrown. */
  onError?: (err: BlocklistStoreError) => void;
}

export interface BlocklistWatchOptions {
  /** Poll interval in ms (default 2000). */
  intervalMs?: number;
  /** Report the whole list at once, synchronously, before any change (default false). */
  initial?: boolean;
}

// An entry that has expired is a new entry when the address comes back. An automatic write never
// changes a manual entry's reason, expiry or source: the operator's word wins over the server's.
const EXPIRED = "(blocklist.expires_ms IS NOT NULL AND blocklist.expires_ms <= excluded.updated_ms)";
const KEEP = `(blocklist.source = 'manual' AND excluded.source = 'auto' AND NOT ${EXPIRED})`;
const UPSERT_SQL = `
INSERT INTO blocklist (address, reason, added_ms, updated_ms, expires_ms, hits, source)
VALUES ($address, $reason, $at, $at, $expires, $hits, $source)
ON CONFLICT (address) DO UPDATE SET
  added_ms   = CASE WHEN ${EXPIRED} THEN excluded.added_ms ELSE blocklist.added_ms END,
  updated_ms = max(blocklist.updated_ms, excluded.updated_ms),
  reason     = CASE WHEN ${KEEP} THEN blocklist.reason ELSE excluded.reason END,
  expires_ms = CASE WHEN ${KEEP} THEN blocklist.expires_ms ELSE excluded.expires_ms END,
  source     = CASE WHEN ${KEEP} THEN blocklist.source ELSE excluded.source END,
  hits       = CASE WHEN ${EXPIRED} THEN excluded.hits ELSE blocklist.hits + excluded.hits END
RETURNING *`;

interface Watcher {
  onChange: (change: BlocklistChange) => void;
  lastSeq: number;
  lastDataVersion: number;
  timer: NodeJS.Timeout;
}

/**
 * The blocklist file for a configured path: relative paths are taken from the configuration file's
 * directory (from the working directory when there is no file), so the server and the CLI agree whatever
 * directory they were started in. ":memory:" is kept as is.
 */
export function resolveBlocklistPath(path: string, configFile?: string): string {
  if (path === ":memory:" || isAbsolute(path)) return path;
  return configFile === undefined ? resolve(path) : resolve(dirname(resolve(configFile)), path);
}

function checkTime(name: string, v: number): number {
  if (!Number.isFinite(v)) throw new RangeError(`${name} must be a finite number of ms, got ${v}`);
  return Math.floor(v);
}

/**
 * The blocklist database. One per process (the server's main thread, or one CLI invocation); not for
 * worker threads. Synchronous: each call runs to completion on the calling thread.
 */
export class BlocklistStore {
  /** The file (resolved), or ":memory:". */
  readonly path: string;
  readonly #db: DatabaseSync;
  readonly #now: () => number;
  readonly #busyMs: number;
  readonly #onError: ((err: BlocklistStoreError) => void) | undefined;
  readonly #upsert: StatementSync;
  readonly #hit: StatementSync;
  readonly #delete: StatementSync;
  readonly #queue: WriteQueue;
  #pruneTimer: NodeJS.Timeout | undefined;
  readonly #watchers = new Set<Watcher>();
  #closed = false;
  /** The counters of stats() that are the store's own (the queue keeps queued and dropped). */
  readonly #stats = { transactions: 0, written: 0, pruned: 0, errors: 0 };

  /** Opens (and when needed creates) the database at `path` (":memory:" for a private in-memory one). */
  static open(path: string, options: BlocklistStoreOptions = {}): BlocklistStore {
    return new BlocklistStore(path, options);
  }

  private constructor(path: string, options: BlocklistStoreOptions) {
    this.path = path === ":memory:" ? path : resolve(path);
    this.#now = options.now ?? Date.now;
    this.#busyMs = Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000));
    const maxBatch = Math.max(1, options.maxBatch ?? 1000);
    this.#queue = new WriteQueue({
      flushMs: Math.max(0, options.flushIntervalMs ?? 250),
      maxBatch,
      maxQueue: Math.max(maxBatch, options.maxQueue ?? 100_000),
      commit: (ops, hits) =>
        this.#transaction("writing a batch", () => {
          for (const op of ops) this.#run(op);
          for (const [address, h] of hits) this.#hit.run({ address, count: h.count, at: h.at });
        }),
      due: () => this.#background(() => this.flush(), "writing a batch"),
    });
    this.#onError = options.onError;
    if (this.path !== ":memory:" && options.create === false && !existsSync(this.path)) {
      throw new BlocklistStoreError(
        "ERR_BLOCKLIST_MISSING",
        this.path,
        `no blocklist database at ${this.path} (it is created by the first \`ntpshield blocklist add\`, ` +
          "or by the server when [blocklist] enabled = true)",
      );
    }
    const { DatabaseSync } = loadSqlite();
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(this.path);
    } catch (e) {
      throw storeError(e, this.path, "opening it", this.#busyMs);
    }
    this.#db = db;
    try {
      db.exec(`PRAGMA busy_timeout = ${this.#busyMs}`);
      this.#setUp();
      this.#upsert = this.#prepare(UPSERT_SQL);
      this.#hit = this.#prepare(
        "UPDATE blocklist SET hits = hits + $count, updated_ms = max(updated_ms, $at) WHERE address = $address",
      );
      this.#delete = this.#prepare("DELETE FROM blocklist WHERE address = ?");
    } catch (e) {
      db.close();
      throw storeError(e, this.path, "opening it", this.#busyMs);
    }
    const pruneMs = options.pruneIntervalMs ?? 60_000;
    if (pruneMs > 0) {
      this.#pruneTimer = setInterval(() => this.#background(() => this.prune(), "pruning"), pruneMs);
      this.#pruneTimer.unref();
    }
  }

  readonly #statements = new Map<string, StatementSync>();

  /** Prepared once per connection: polls and batches run the same few statements over and over. */
  #prepare(sql: string): StatementSync {
    let st = this.#statements.get(sql);
    if (st === undefined) {
      st = this.#db.prepare(sql);
      this.#statements.set(sql, st);
    }
    return st;
  }

  #pragma(name: string): number | string {
    const row = this.#prepare(`PRAGMA ${name}`).get() as Record<string, number | string> | undefined;
    return row === undefined ? 0 : (Object.values(row)[0] ?? 0);
  }

  /** Checks the file is ours (or empty), turns on WAL and FULL sync, creates the tables the first time. */
  #setUp(): void {
    const db = this.#db;
    const ready = isOurs(db, this.path);
    // WAL: readers (the CLI's list) and the one writer do not block each other. Set outside a transaction.
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = FULL");
    if (!ready) createSchema(db, this.path);
  }

  #assertOpen(): void {
    if (this.#closed) {
      throw new BlocklistStoreError(
        "ERR_BLOCKLIST_CLOSED",
        this.path,
        `blocklist database ${this.path} is closed`,
      );
    }
  }

  /** Runs `fn` in one write transaction (BEGIN IMMEDIATE takes the write lock first, honouring busy_timeout). */
  #transaction<T>(doing: string, fn: () => T): T {
    this.#assertOpen();
    try {
      this.#db.exec("BEGIN IMMEDIATE");
    } catch (e) {
      throw storeError(e, this.path, doing, this.#busyMs);
    }
    try {
      const r = fn();
      this.#db.exec("COMMIT");
      this.#stats.transactions++;
      return r;
    } catch (e) {
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      throw storeError(e, this.path, doing, this.#busyMs);
    }
  }

  #op(w: BlocklistWrite): Op & { kind: "upsert" } {
    const expires =
      w.expiresMs === undefined || w.expiresMs === null ? null : checkTime("expiresMs", w.expiresMs);
    const hits = w.hits ?? 0;
    if (!Number.isInteger(hits) || hits < 0)
      throw new RangeError(`hits must be a whole number >= 0, got ${hits}`);
    if (w.source !== "auto" && w.source !== "manual")
      throw new RangeError(`source must be "auto" or "manual", got ${String(w.source)}`);
    return {
      kind: "upsert",
      address: canonicalAddress(w.address),
      reason: String(w.reason),
      source: w.source,
      expires,
      hits,
      at: checkTime("atMs", w.atMs ?? this.#now()),
    };
  }

  #run(op: Op): BlocklistEntry | undefined {
    if (op.kind === "remove") {
      this.#delete.run(op.address);
      return undefined;
    }
    const row = this.#upsert.get({
      address: op.address,
      reason: op.reason,
      at: op.at,
      expires: op.expires,
      hits: op.hits,
      source: op.source,
    }) as unknown as Row;
    return entryOf(row);
  }

  // --- Batched writes (the server) ---

  /** Queues an add (or update) for the next batch. Throws BlocklistError for a bad address. */
  enqueue(write: BlocklistWrite): void {
    this.#assertOpen();
    this.#queue.push(this.#op(write));
  }

  /** Queues a removal for the next batch. */
  enqueueRemove(address: string): void {
    this.#assertOpen();
    this.#queue.push({ kind: "remove", address: canonicalAddress(address) });
  }

  /** Queues `count` more hits on an entry (ignored if the address is not on the list by then). */
  enqueueHits(address: string, count: number, atMs?: number): void {
    this.#assertOpen();
    if (!Number.isInteger(count) || count <= 0) return;
    const a = canonicalAddress(address);
    this.#queue.addHits(a, count, checkTime("atMs", atMs ?? this.#now()));
  }

  /** Runs a timed or threshold task; a failure is counted, reported and retried, never thrown. */
  #background(fn: () => unknown, doing: string): void {
    if (this.#closed) return;
    try {
      fn();
    } catch (e) {
      this.#stats.errors++;
      const err = storeError(e, this.path, doing, this.#busyMs);
      this.#queue.retryLater();
      this.#onError?.(err);
    }
  }

  /**
   * Commits every queued write in one transaction, in the order queued (accumulated hits last). Returns
   * how many writes were committed. On failure the writes stay queued and the error is thrown.
   */
  flush(): number {
    this.#assertOpen();
    const n = this.#queue.flush();
    this.#stats.written += n;
    return n;
  }

  // --- Direct writes and reads (the CLI; also the server at start) ---

  /** Adds or updates an entry in its own transaction, durable when this returns. Returns the entry. */
  add(write: BlocklistWrite): BlocklistEntry {
    const op = this.#op(write);
    const entry = this.#transaction(`adding ${op.address}`, () => this.#run(op)!);
    this.#stats.written++;
    return entry;
  }

  /** Removes an address in its own transaction. Returns whether it was on the list. */
  remove(address: string): boolean {
    const a = canonicalAddress(address);
    const changes = this.#transaction(`removing ${a}`, () => this.#delete.run(a).changes);
    this.#stats.written++;
    return Number(changes) > 0;
  }

  #read<T>(doing: string, fn: () => T): T {
    this.#assertOpen();
    try {
      return fn();
    } catch (e) {
      throw storeError(e, this.path, doing, this.#busyMs);
    }
  }

  /** The entry for an address (expired or not), or undefined. */
  get(address: string): BlocklistEntry | undefined {
    const a = canonicalAddress(address);
    return this.#read("reading", () => {
      const row = this.#prepare(`SELECT ${COLUMNS} FROM blocklist WHERE address = ?`).get(a);
      return row === undefined ? undefined : entryOf(row as unknown as Row);
    });
  }

  /** Entries not expired at `nowMs` (default: now), oldest first; all of them with includeExpired. */
  list(options: { nowMs?: number; includeExpired?: boolean } = {}): BlocklistEntry[] {
    const now = options.nowMs ?? this.#now();
    return this.#read("listing", () => {
      const rows = options.includeExpired
        ? this.#prepare(`SELECT ${COLUMNS} FROM blocklist ORDER BY added_ms, address`).all()
        : this.#prepare(
            `SELECT ${COLUMNS} FROM blocklist WHERE expires_ms IS NULL OR expires_ms > ? ORDER BY added_ms, address`,
          ).all(now);
      return rows.map((r) => entryOf(r as unknown as Row));
    });
  }

  /** How many entries are live at `nowMs` (default: now). */
  count(nowMs?: number): number {
    const now = nowMs ?? this.#now();
    return this.#read("counting", () => {
      const row = this.#prepare(
        "SELECT count(*) AS n FROM blocklist WHERE expires_ms IS NULL OR expires_ms > ?",
      ).get(now) as { n: number };
      return row.n;
    });
  }

  /** Deletes entries expired at `nowMs` (default: now), and change-log rows every watcher has read. */
  prune(nowMs?: number): number {
    const now = nowMs ?? this.#now();
    const n = this.#transaction("pruning", () => {
      const deleted = Number(
        this.#prepare("DELETE FROM blocklist WHERE expires_ms IS NOT NULL AND expires_ms <= ?").run(now)
          .changes,
      );
      if (this.#watchers.size > 0) {
        let seen = Number.POSITIVE_INFINITY;
        for (const w of this.#watchers) seen = Math.min(seen, w.lastSeq);
        this.#prepare("DELETE FROM blocklist_changes WHERE seq <= ?").run(seen);
      }
      return deleted;
    });
    this.#stats.pruned += n;
    return n;
  }

  // --- Watching for other processes' changes ---

  #maxSeq(): number {
    const row = this.#prepare("SELECT seq FROM sqlite_sequence WHERE name = 'blocklist_changes'").get() as
      | { seq: number }
      | undefined;
    return row?.seq ?? 0;
  }

  #full(): { seq: number; entries: BlocklistEntry[] } {
    this.#db.exec("BEGIN");
    try {
      const seq = this.#maxSeq();
      const entries = this.list();
      return { seq, entries };
    } finally {
      this.#db.exec("COMMIT");
    }
  }

  /**
   * Polls every `intervalMs` for entries added, removed or re-timed by other connections (the CLI, an
   * operator's sqlite3) and calls `onChange` with them; the store's own writes are not reported. With
   * `initial`, first reports the whole list (synchronously), read in the same snapshot as the starting
   * point, so nothing falls between loading and watching. Returns a function that stops the watch.
   * Each poll is one PRAGMA and one indexed read when nothing changed.
   */
  watch(onChange: (change: BlocklistChange) => void, options: BlocklistWatchOptions = {}): () => void {
    this.#assertOpen();
    const intervalMs = Math.max(10, options.intervalMs ?? 2000);
    let lastSeq: number;
    let lastDataVersion: number;
    let initial: BlocklistEntry[] | undefined;
    try {
      // data_version first: a commit that lands between the two reads is then seen again, never missed.
      lastDataVersion = Number(this.#pragma("data_version"));
      if (options.initial) {
        const f = this.#full();
        lastSeq = f.seq;
        initial = f.entries;
      } else {
        lastSeq = this.#maxSeq();
      }
    } catch (e) {
      throw storeError(e, this.path, "starting to watch", this.#busyMs);
    }
    const w: Watcher = {
      onChange,
      lastSeq,
      lastDataVersion,
      timer: setInterval(() => this.#background(() => this.#poll(w), "polling for changes"), intervalMs),
    };
    w.timer.unref();
    this.#watchers.add(w);
    if (initial !== undefined) onChange({ full: true, entries: initial });
    return () => {
      clearInterval(w.timer);
      this.#watchers.delete(w);
    };
  }

  #poll(w: Watcher): void {
    // Order matters: read the log's end first, then data_version. If no other connection committed
    // before data_version was read, everything up to that end is our own.
    const end = this.#maxSeq();
    const dv = Number(this.#pragma("data_version"));
    if (dv === w.lastDataVersion) {
      w.lastSeq = end;
      return;
    }
    w.lastDataVersion = dv;
    const oldest = this.#prepare("SELECT min(seq) AS s FROM blocklist_changes").get() as { s: number | null };
    if (oldest.s !== null && oldest.s > w.lastSeq + 1) {
      // Rows we never read were trimmed (another process pruned the log): start again from the whole list.
      const f = this.#full();
      w.lastSeq = f.seq;
      w.onChange({ full: true, entries: f.entries });
      return;
    }
    const now = this.#now();
    const rows = this.#prepare(
      `SELECT c.address AS changed, c.last AS last, ${COLUMNS.split(", ")
        .map((x) => `b.${x} AS ${x}`)
        .join(", ")}
         FROM (SELECT address, max(seq) AS last FROM blocklist_changes WHERE seq > ? GROUP BY address) c
         LEFT JOIN blocklist b ON b.address = c.address`,
    ).all(w.lastSeq) as unknown as (Row & { changed: string; last: number })[];
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

  /** Counters since open. */
  stats(): BlocklistStoreStats {
    const s = this.#stats;
    return {
      transactions: s.transactions,
      written: s.written,
      queued: this.#queue.size,
      dropped: this.#queue.dropped,
      pruned: s.pruned,
      errors: s.errors,
    };
  }

  /** Commits what is queued, stops timers and watches, closes the file. Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    clearInterval(this.#pruneTimer);
    for (const w of this.#watchers) clearInterval(w.timer);
    this.#watchers.clear();
    try {
      this.flush(); // also stops the queue's timer
    } finally {
      this.#closed = true;
      this.#db.close();
    }
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
