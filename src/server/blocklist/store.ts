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
// Beside it in this folder: the tables (schema.ts), the batching (write-queue.ts), the polling for other
// processes' changes (watch.ts), the errors (errors.ts).

import { existsSync, statSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { canonicalEntry } from "../../defence/blocklist.ts";
import type { BlocklistEntry, BlocklistWrite } from "./entry.ts";
import { BlocklistStoreError, storeError } from "./errors.ts";
import { loadSqlite } from "./load-sqlite.ts";
import { COLUMNS, createSchema, entryOf, isOurs, type Row } from "./schema.ts";
import { type BlocklistChange, type BlocklistWatchOptions, Watches } from "./watch.ts";
import { type Op, WriteQueue } from "./write-queue.ts";

export interface BlocklistStoreStats {
  /** Write transactions committed (batches and direct writes). */
  transactions: number;
  /** Writes committed (an upsert, a removal or one address's accumulated hits each count one). */
  written: number;
  /** Writes waiting for the next flush. */
  queued: number;
  /**
   * Hit-count updates thrown away because the queue was full (the database kept failing). Only those:
   * queued entries (adds, removals) are kept whatever the queue holds.
   */
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
  /**
   * Beyond this many queued writes (only while the database keeps failing), hit counts are dropped,
   * oldest first, and counted; entries are kept (default 100000).
   */
  maxQueue?: number;
  /** Delete expired entries this often, in ms; 0 = only when prune() is called (default 60000). */
  pruneIntervalMs?: number;
  /** The clock (ms since the epoch); tests set it. */
  now?: () => number;
  /** Background failures (timed flushes, polls, prunes); they are retried, never thrown. */
  onError?: (err: BlocklistStoreError) => void;
  /** The write queue is full and hit counts are being dropped; called once until a batch commits again. */
  onQueueFull?: (dropped: number, queued: number) => void;
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
  readonly #watches: Watches;
  #pruneTimer: NodeJS.Timeout | undefined;
  #closed = false;
  /** The file's device and inode when opened: the path may later be deleted or name another file. */
  #identity: { dev: number; ino: number } | undefined;
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
    this.#onError = options.onError;
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
      ...(options.onQueueFull === undefined ? {} : { full: options.onQueueFull }),
    });
    if (this.path !== ":memory:" && options.create === false && !existsSync(this.path)) {
      throw new BlocklistStoreError(
        "ERR_BLOCKLIST_MISSING",
        this.path,
        `no blocklist database at ${this.path} (the server creates it when [blocklist] enabled = true; ` +
          "`ntpshield blocklist add --create` creates it by hand, but a server already running reads only " +
          "the file it opened when it started)",
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
    this.#watches = new Watches({
      db,
      prepare: (sql) => this.#prepare(sql),
      list: () => this.list(),
      now: () => this.#now(),
      read: (doing, fn) => this.#read(doing, fn),
      background: (fn, doing) => this.#background(fn, doing),
    });
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
    if (this.path !== ":memory:") {
      const st = statSync(this.path);
      this.#identity = { dev: st.dev, ino: st.ino };
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
      address: canonicalEntry(w.address),
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
    this.#queue.push({ kind: "remove", address: canonicalEntry(address) });
  }

  /** Queues `count` more hits on an entry (ignored if the address is not on the list by then). */
  enqueueHits(address: string, count: number, atMs?: number): void {
    this.#assertOpen();
    if (!Number.isInteger(count) || count <= 0) return;
    const a = canonicalEntry(address);
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

  /** Removes an address (or prefix) in its own transaction. Returns whether it was on the list. */
  remove(address: string): boolean {
    const a = canonicalEntry(address);
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
    const a = canonicalEntry(address);
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
      this.#watches.trimLog();
      return deleted;
    });
    this.#stats.pruned += n;
    return n;
  }

  /**
   * Polls every `intervalMs` for entries added, removed or re-timed by other connections (the CLI, an
   * operator's sqlite3) and calls `onChange` with them; the store's own writes are not reported. With
   * `initial`, first reports the whole list (synchronously), read in the same snapshot as the starting
   * point, so nothing falls between loading and watching. Returns a function that stops the watch.
   * Each poll is one PRAGMA and one indexed read when nothing changed.
   */
  watch(onChange: (change: BlocklistChange) => void, options: BlocklistWatchOptions = {}): () => void {
    return this.#watches.start(onChange, options);
  }

  /**
   * Why the path no longer names the file this store has open, or undefined while it does: someone
   * deleted it (the store would go on writing into a file nobody else can see, lost at the next start)
   * or put another file in its place. One stat() of the path; the server calls it before each direct
   * write and every couple of seconds.
   */
  fileProblem(): string | undefined {
    if (this.#identity === undefined || this.#closed) return undefined;
    let st: { dev: number; ino: number; nlink: number };
    try {
      st = statSync(this.path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return code === "ENOENT" ? "the file was deleted" : `the file cannot be checked (${code})`;
    }
    if (st.dev !== this.#identity.dev || st.ino !== this.#identity.ino)
      return "the path now names another file";
    return undefined;
  }

  /**
   * Every entry with all its fields, expired ones included, read from the open file (still readable when
   * its path was deleted): what recreating the file at the path writes back.
   */
  dump(): BlocklistEntry[] {
    return this.list({ includeExpired: true });
  }

  /** Writes entries as they were (times, hits, source kept) in one transaction: a recreated file's contents. */
  restore(entries: readonly BlocklistEntry[]): void {
    const st = this.#prepare(
      `INSERT OR REPLACE INTO blocklist (address, reason, added_ms, updated_ms, expires_ms, hits, source)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#transaction("restoring entries", () => {
      for (const e of entries)
        st.run(e.address, e.reason, e.addedMs, e.updatedMs, e.expiresMs, e.hits, e.source);
    });
    this.#stats.written += entries.length;
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
    this.#watches.stopAll();
    try {
      this.flush(); // also stops the queue's timer
    } finally {
      this.#closed = true;
      this.#db.close();
    }
  }
}
