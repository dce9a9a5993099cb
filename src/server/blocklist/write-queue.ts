// The server's writes to the blocklist database, queued and committed in batches: one transaction (one
// fsync) per batch, a few times a second at most, off the per-packet path. Hits on one address add up
// into one write. A batch that fails stays queued, in order, and is tried again; only while the database
// keeps failing can the queue fill. Then what goes is hit counts, oldest first, never an entry: a blocked
// address was told to every worker and logged, so losing it silently would make the list lie; a hit
// count is a statistic nobody was promised. Entries are kept beyond maxQueue (they come at most at the
// rate the workers block addresses), and `full` reports the first drop after each successful commit.

import type { BlocklistSource } from "./entry.ts";

/** A queued write: an add or update (checked and canonical already), or a removal. */
export type Op =
  | {
      kind: "upsert";
      address: string;
      reason: string;
      source: BlocklistSource;
      expires: number | null;
      hits: number;
      at: number;
    }
  | { kind: "remove"; address: string };

/** Hits on one address waiting to be added to its entry. */
export interface Hits {
  count: number;
  at: number;
}

export interface WriteQueueOptions {
  /** How long a write may wait before its batch is due, in ms. */
  flushMs: number;
  /** A batch this large is due at once. */
  maxBatch: number;
  /** Beyond this, queued hit counts are dropped (oldest first) and counted; entries are always kept. */
  maxQueue: number;
  /** Commits a batch in one transaction, or throws (the batch then stays queued). */
  commit: (ops: readonly Op[], hits: ReadonlyMap<string, Hits>) => void;
  /** A batch is due (full, or its time is up): flush it, reporting a failure rather than throwing it. */
  due: () => void;
  /** The queue is full and hit counts were dropped (called once until a batch commits again). */
  full?: (dropped: number, queued: number) => void;
}

export class WriteQueue {
  readonly #flushMs: number;
  readonly #maxBatch: number;
  readonly #maxQueue: number;
  readonly #commit: WriteQueueOptions["commit"];
  readonly #due: () => void;
  readonly #full: WriteQueueOptions["full"];
  /** Whether the drops since the last commit were reported. */
  #reported = false;
  #ops: Op[] = [];
  #hits = new Map<string, Hits>();
  #timer: NodeJS.Timeout | undefined;
  /** Hit-count updates thrown away because the queue was full (only those: entries are kept). */
  dropped = 0;

  constructor(options: WriteQueueOptions) {
    this.#flushMs = options.flushMs;
    this.#maxBatch = options.maxBatch;
    this.#maxQueue = options.maxQueue;
    this.#commit = options.commit;
    this.#due = options.due;
    this.#full = options.full;
  }

  /** Writes waiting for the next flush (an address's accumulated hits count one). */
  get size(): number {
    return this.#ops.length + this.#hits.size;
  }

  /** Queues an entry's add, update or removal: always kept, making room by dropping the oldest hit counts. */
  push(op: Op): void {
    if (this.size >= this.#maxQueue) {
      const oldest = this.#hits.keys().next();
      if (!oldest.done) {
        this.#hits.delete(oldest.value);
        this.#drop();
      }
    }
    this.#ops.push(op);
    this.#afterQueue();
  }

  /** Adds `count` hits on a canonical address, into its queued hits if it has some already. */
  addHits(address: string, count: number, at: number): void {
    const h = this.#hits.get(address);
    if (h !== undefined) {
      h.count += count;
      h.at = Math.max(h.at, at);
      return;
    }
    if (this.size >= this.#maxQueue) {
      this.#drop();
      return;
    }
    this.#hits.set(address, { count, at });
    this.#afterQueue();
  }

  #drop(): void {
    this.dropped++;
    if (this.#reported) return;
    this.#reported = true;
    this.#full?.(this.dropped, this.size);
  }

  #afterQueue(): void {
    if (this.size >= this.#maxBatch) {
      this.#due();
      return;
    }
    if (this.#timer === undefined) this.#dueIn(this.#flushMs);
  }

  #dueIn(ms: number): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#due();
    }, ms);
    this.#timer.unref();
  }

  /** After a failed background task: if writes wait and no flush is timed, try again in a while (>= 1 s). */
  retryLater(): void {
    if (this.size > 0 && this.#timer === undefined) this.#dueIn(Math.max(this.#flushMs, 1000));
  }

  /**
   * Commits every queued write in one transaction, in the order queued (accumulated hits last). Returns
   * how many writes were committed. On failure the writes stay queued and the error is thrown.
   */
  flush(): number {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const ops = this.#ops;
    const hits = this.#hits;
    const n = ops.length + hits.size;
    if (n === 0) return 0;
    this.#ops = [];
    this.#hits = new Map();
    try {
      this.#commit(ops, hits);
    } catch (e) {
      // Keep them, in order, ahead of anything queued since.
      this.#ops = ops.concat(this.#ops);
      for (const [a, h] of this.#hits) {
        const old = hits.get(a);
        if (old === undefined) hits.set(a, h);
        else {
          old.count += h.count;
          old.at = Math.max(old.at, h.at);
        }
      }
      this.#hits = hits;
      throw e;
    }
    this.#reported = false;
    return n;
  }
}
