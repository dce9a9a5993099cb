// One blocklist for the fleet (paper §11 across §7's several servers; docs/fleet.md): each server keeps its
// own SQLite copy, which its workers are loaded from and which it serves from whatever happens to Redis,
// and keeps that copy in step with the shared list in Redis (redis-store.ts):
//   - what this server writes (automatic blocks, the HTTP API, the CLI's edits seen by the watch, hit
//     counts) is pushed to Redis; while Redis is away it waits in a queue, pushed in order on return;
//   - what the other servers write comes back through the changes stream, polled every pollMs (200 ms
//     by default: a block made anywhere is applied everywhere within about half a second);
//   - on every (re)connection: push what is queued, then read the stream from where this server left it;
//     when that is impossible (records trimmed, a Redis that lost its data: a new epoch, the first
//     connection) reconcile the whole list: Redis's entries are taken, and a local entry Redis lacks is
//     pushed back unless Redis remembers removing it after its last write.

import type { BlocklistEntry, BlocklistWrite } from "./entry.ts";
import { RedisClient } from "./redis-client.ts";
import { compareStreamIds, RedisBlocklist, type RedisChange } from "./redis-store.ts";

/** What the sharing needs of the server: its local store, its workers, its log. */
export interface SharingHost {
  /** The local SQLite store, as it is now (the server may have recreated it); undefined: nothing to do. */
  local():
    | {
        list(): BlocklistEntry[];
        restore(entries: readonly BlocklistEntry[]): void;
        remove(address: string): boolean;
      }
    | undefined;
  /** Entries added or changed and addresses removed elsewhere in the fleet: tell every worker. */
  apply(upserts: BlocklistEntry[], removed: string[]): void;
  log: {
    info(msg: string, fields?: Record<string, unknown>): void;
    warn(msg: string, fields?: Record<string, unknown>): void;
    error(msg: string, fields?: Record<string, unknown>): void;
  };
}

export interface SharingOptions {
  url: string;
  /** The keys' prefix ([blocklist] redis-key). */
  key?: string;
  /** How often the changes stream is polled, in ms (default 200). */
  pollMs?: number;
  /** Names this server in the stream (default: random). */
  origin?: string;
  /** Reconnection backoff bounds (ms), for tests. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/** The sharing as /metrics and the API show it. */
export interface SharingStats {
  /** Connected and caught up: every block made elsewhere is applied here within a poll. */
  up: boolean;
  /** Local writes waiting to be pushed (queued while Redis is away). */
  pending: number;
  /** Writes pushed to Redis since start. */
  pushed: number;
  /** Changes made elsewhere applied here since start. */
  pulled: number;
  /** Whole-list reconciliations since start. */
  resyncs: number;
  /** Times Redis became unreachable (or a push or poll failed) since start. */
  failures: number;
}

type Op =
  | { kind: "upsert"; write: BlocklistWrite & { atMs: number } }
  | { kind: "remove"; address: string; atMs: number };

/** Queued hit counts beyond this many addresses are dropped (entries and removals never are). */
const MAX_HIT_ADDRESSES = 100_000;

export class BlocklistSharing {
  readonly #host: SharingHost;
  readonly #client: RedisClient;
  readonly #redis: RedisBlocklist;
  readonly #pollMs: number;
  #ops: Op[] = [];
  #hits = new Map<string, { count: number; at: number }>();
  #lastId: string | undefined;
  #epoch: string | undefined;
  #synced = false;
  #busy = false;
  #timer: NodeJS.Timeout;
  #closed = false;
  /** Whether the last state logged was "away", so that each change is logged once. */
  #saidAway = false;
  readonly #stats = { pushed: 0, pulled: 0, resyncs: 0, failures: 0 };

  constructor(host: SharingHost, options: SharingOptions) {
    this.#host = host;
    this.#pollMs = Math.max(10, options.pollMs ?? 200);
    this.#client = new RedisClient(options.url, {
      ...(options.minBackoffMs === undefined ? {} : { minBackoffMs: options.minBackoffMs }),
      ...(options.maxBackoffMs === undefined ? {} : { maxBackoffMs: options.maxBackoffMs }),
      onState: (up, why) => {
        if (!up) this.#away(why ?? "connection lost");
      },
    });
    this.#redis = new RedisBlocklist(this.#client, {
      ...(options.key === undefined ? {} : { key: options.key }),
      ...(options.origin === undefined ? {} : { origin: options.origin }),
    });
    this.#timer = setInterval(() => void this.#cycle(), this.#pollMs);
    this.#timer.unref();
    // Not reachable within a few seconds of start: say so (the server serves from its copy meanwhile).
    setTimeout(() => {
      if (!this.#synced && !this.#closed) this.#away(this.#client.lastError || "not connected yet");
    }, 3000).unref();
  }

  /** The server, or the CLI through the watch, wrote an entry: push it (now, or once Redis is back). */
  pushWrite(write: BlocklistWrite, atMs = Date.now()): void {
    this.#ops.push({ kind: "upsert", write: { ...write, atMs: write.atMs ?? atMs } });
  }

  pushRemove(address: string, atMs = Date.now()): void {
    this.#ops.push({ kind: "remove", address, atMs });
  }

  pushHits(address: string, count: number, atMs = Date.now()): void {
    const h = this.#hits.get(address);
    if (h !== undefined) {
      h.count += count;
      h.at = Math.max(h.at, atMs);
    } else if (this.#hits.size < MAX_HIT_ADDRESSES) {
      this.#hits.set(address, { count, at: atMs });
    }
  }

  stats(): SharingStats {
    return {
      up: this.#synced && this.#client.up,
      pending: this.#ops.length + this.#hits.size,
      ...this.#stats,
    };
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#client.close();
  }

  #away(why: string): void {
    this.#synced = false;
    if (this.#saidAway || this.#closed) return;
    this.#saidAway = true;
    this.#stats.failures++;
    this.#host.log.warn("blocklist: shared store (Redis) unreachable; serving from the local copy", {
      redis: `${this.#client.address.host}:${this.#client.address.port}`,
      error: why,
    });
  }

  /** One round: push what is queued, then pull (or reconcile after a reconnection). One at a time. */
  async #cycle(): Promise<void> {
    if (this.#busy || this.#closed || !this.#client.up) return;
    this.#busy = true;
    try {
      await this.#push();
      if (!this.#synced) await this.#catchUp();
      else await this.#pull();
    } catch (e) {
      // A reply error (a Redis that refuses scripts, keys of another type) or a lost link: retried next
      // round; the queue is untouched, so nothing is lost.
      this.#away(e instanceof Error ? e.message : String(e));
    } finally {
      this.#busy = false;
    }
  }

  async #push(): Promise<void> {
    if (this.#ops.length > 0) {
      const ops = this.#ops.slice(0, 1000);
      await this.#client.pipeline(
        ops.map((op) =>
          op.kind === "upsert"
            ? this.#redis.addCommand(op.write)
            : this.#redis.removeCommand(op.address, op.atMs),
        ),
      );
      // Written (a reply error is the write's own: a bad entry, kept out of the queue rather than retried).
      this.#ops.splice(0, ops.length);
      this.#stats.pushed += ops.length;
    }
    if (this.#hits.size > 0) {
      const hits = [...this.#hits].slice(0, 1000);
      await this.#client.pipeline(hits.map(([a, h]) => this.#redis.hitsCommand(a, h.count, h.at)));
      for (const [a] of hits) this.#hits.delete(a);
    }
  }

  async #pull(): Promise<void> {
    const changes = await this.#redis.changesSince(this.#lastId ?? "0-0");
    if (changes.length > 0) this.#applyChanges(changes);
  }

  #applyChanges(changes: RedisChange[]): void {
    const local = this.#host.local();
    const upserts = new Map<string, BlocklistEntry>();
    const removed = new Set<string>();
    for (const c of changes) {
      this.#lastId = c.id;
      if (c.op === "upsert" && c.entry !== undefined) {
        upserts.set(c.address, c.entry);
        removed.delete(c.address);
      } else if (c.op === "remove") {
        upserts.delete(c.address);
        removed.add(c.address);
      }
    }
    if (local !== undefined) {
      if (upserts.size > 0) local.restore([...upserts.values()]);
      for (const a of removed) local.remove(a);
    }
    this.#stats.pulled += upserts.size + removed.size;
    this.#host.apply([...upserts.values()], [...removed]);
  }

  /** After a (re)connection: from the stream where possible, else the whole list. */
  async #catchUp(): Promise<void> {
    const epoch = await this.#redis.epoch();
    const stream = await this.#redis.streamState();
    const lastId = this.#lastId;
    const incremental =
      epoch === this.#epoch && lastId !== undefined && compareStreamIds(stream.maxDeleted, lastId) <= 0;
    let pulled = 0;
    if (incremental) {
      const before = this.#stats.pulled;
      for (;;) {
        const changes = await this.#redis.changesSince(this.#lastId ?? "0-0");
        if (changes.length === 0) break;
        this.#applyChanges(changes);
      }
      pulled = this.#stats.pulled - before;
    } else {
      pulled = await this.#reconcile(stream.last);
      this.#stats.resyncs++;
    }
    this.#epoch = epoch;
    this.#synced = true;
    if (this.#saidAway) {
      this.#saidAway = false;
      this.#host.log.info("blocklist: shared store (Redis) reachable again; caught up", {
        redis: `${this.#client.address.host}:${this.#client.address.port}`,
        pulled,
        how: incremental ? "changes since the last read" : "the whole list",
      });
    }
  }

  /** The whole list both ways; reads the stream from `fromId` afterwards. Returns the entries changed here. */
  async #reconcile(fromId: string): Promise<number> {
    const remote = await this.#redis.all();
    const removals = await this.#redis.removals();
    const store = this.#host.local();
    const mine = store?.list() ?? [];
    const now = Date.now();
    const upserts: BlocklistEntry[] = [];
    const removed: string[] = [];
    const mineBy = new Map(mine.map((e) => [e.address, e]));
    for (const [address, e] of remote) {
      if (e.expiresMs !== null && e.expiresMs <= now) continue;
      const m = mineBy.get(address);
      if (m === undefined || !sameEntry(m, e)) upserts.push(e);
    }
    for (const m of mine) {
      if (remote.has(m.address)) continue;
      const gone = removals.get(m.address);
      if (gone !== undefined && gone >= m.updatedMs) {
        removed.push(m.address);
        continue;
      }
      // Made here while Redis was away (or before this Redis existed): the fleet gets it.
      const kept = await this.#redis.seed(m);
      this.#stats.pushed++;
      if (kept === null) removed.push(m.address);
    }
    if (store !== undefined) {
      if (upserts.length > 0) store.restore(upserts);
      for (const a of removed) store.remove(a);
    }
    this.#lastId = fromId;
    this.#stats.pulled += upserts.length + removed.length;
    if (upserts.length > 0 || removed.length > 0) this.#host.apply(upserts, removed);
    return upserts.length + removed.length;
  }
}

function sameEntry(a: BlocklistEntry, b: BlocklistEntry): boolean {
  return (
    a.reason === b.reason &&
    a.addedMs === b.addedMs &&
    a.expiresMs === b.expiresMs &&
    a.source === b.source &&
    a.hits === b.hits &&
    a.updatedMs === b.updatedMs
  );
}
