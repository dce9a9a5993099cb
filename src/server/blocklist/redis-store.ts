// The fleet's shared blocklist in Redis (paper §11, shot by one server, shot by all; docs/fleet.md). The
// same entries and the same merge rules as the SQLite store (store.ts), so that a block made anywhere in
// the fleet reads the same everywhere; each write is one Lua script, atomic in Redis, so that servers
// writing the same address at once merge as one database would.
//
// Keys, under a prefix P ([blocklist] redis-key, default "ntpshield:blocklist"):
//   P:entries  hash   address -> the entry as JSON (reason, addedMs, updatedMs, expiresMs, hits, source)
//   P:removed  hash   address -> ms of its last removal (a tombstone: a server that was away learns that
//                     an entry it still holds was removed, rather than pushing it back; kept 30 days)
//   P:changes  stream one record per add/change/removal: op, address, entry (JSON), origin (the server);
//                     what the servers poll, from the last ID each has read (trimmed to ~100,000)
//   P:epoch    string a random value set by the first server to find it missing: when it changes, Redis
//                     lost its data (or is another Redis), and every server reconciles its whole list

import { randomBytes } from "node:crypto";
import { canonicalEntry } from "../../defence/blocklist.ts";
import type { BlocklistEntry, BlocklistSource, BlocklistWrite } from "./entry.ts";
import type { RedisClient } from "./redis-client.ts";
import type { RespValue } from "./resp.ts";

export const DEFAULT_REDIS_KEY = "ntpshield:blocklist";
/** Stream records kept (approximately: MAXLEN ~); a server away for longer reconciles the whole list. */
const STREAM_MAXLEN = 100_000;
/** How long a removal is remembered, in ms. */
export const TOMBSTONE_MS = 30 * 86_400_000;

// The merge of store.ts's UPSERT_SQL: an expired entry that comes back is new; an automatic write never
// changes a manual entry's reason, expiry or source; hits add up.
const UPSERT = `
local addr, reason, source = ARGV[1], ARGV[2], ARGV[3]
local expires = tonumber(ARGV[4])
local hits, at, origin, maxlen = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], ARGV[8]
local old = redis.call('HGET', KEYS[1], addr)
local e
if old then
  e = cjson.decode(old)
  local expired = e.expiresMs ~= cjson.null and e.expiresMs <= at
  local keep = e.source == 'manual' and source == 'auto' and not expired
  if expired then e.addedMs = at; e.hits = hits else e.hits = e.hits + hits end
  if at > e.updatedMs then e.updatedMs = at end
  if not keep then
    e.reason = reason; e.source = source
    if expires then e.expiresMs = expires else e.expiresMs = cjson.null end
  end
else
  e = {address = addr, reason = reason, addedMs = at, updatedMs = at, hits = hits, source = source}
  if expires then e.expiresMs = expires else e.expiresMs = cjson.null end
end
local j = cjson.encode(e)
redis.call('HSET', KEYS[1], addr, j)
redis.call('HDEL', KEYS[2], addr)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', maxlen, '*', 'op', 'upsert', 'address', addr, 'entry', j, 'origin', origin)
return j`;

// An entry as a server holds it, written only if Redis has none and no removal newer than it: what a server
// that was away (or a Redis that lost its data) gets back. Returns the entry Redis now has, or false when a
// removal wins.
const SEED = `
local addr, j, updated, origin, maxlen = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local cur = redis.call('HGET', KEYS[1], addr)
if cur then return cur end
local gone = tonumber(redis.call('HGET', KEYS[2], addr))
if gone and gone >= updated then return false end
redis.call('HSET', KEYS[1], addr, j)
redis.call('HDEL', KEYS[2], addr)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', maxlen, '*', 'op', 'upsert', 'address', addr, 'entry', j, 'origin', origin)
return j`;

const REMOVE = `
local addr, at, origin, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local had = redis.call('HDEL', KEYS[1], addr)
redis.call('HSET', KEYS[2], addr, at)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', maxlen, '*', 'op', 'remove', 'address', addr, 'origin', origin)
return had`;

// Hit counts are not streamed: no other server needs them to block, and they come with every packet.
const HITS = `
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return 0 end
local e = cjson.decode(old)
e.hits = e.hits + tonumber(ARGV[2])
local at = tonumber(ARGV[3])
if at > e.updatedMs then e.updatedMs = at end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(e))
return 1`;

const PRUNE = `
local n = 0
local all = redis.call('HGETALL', KEYS[1])
local now = tonumber(ARGV[1])
for i = 1, #all, 2 do
  local e = cjson.decode(all[i + 1])
  if e.expiresMs ~= cjson.null and e.expiresMs <= now then
    redis.call('HDEL', KEYS[1], all[i]); n = n + 1
  end
end
local gone = redis.call('HGETALL', KEYS[2])
for i = 1, #gone, 2 do
  if tonumber(gone[i + 1]) <= now - tonumber(ARGV[2]) then redis.call('HDEL', KEYS[2], gone[i]) end
end
return n`;

/** One record of the changes stream. */
export interface RedisChange {
  id: string;
  op: "upsert" | "remove";
  address: string;
  entry: BlocklistEntry | undefined;
  origin: string;
}

/** What a Redis reply should have been and was not: a Redis that is not ours, or keys written by hand. */
export class RedisDataError extends Error {
  override readonly name = "RedisDataError";
}

function num(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isFinite(v)) throw new RedisDataError(`bad ${what} in a shared entry`);
  return v;
}

/** The JSON of P:entries back to an entry; throws RedisDataError when it is not one of ours. */
export function entryFromJson(json: string): BlocklistEntry {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    throw new RedisDataError(`a shared entry is not JSON: ${json.slice(0, 80)}`);
  }
  const source = o.source;
  if (source !== "auto" && source !== "manual") throw new RedisDataError("bad source in a shared entry");
  return {
    address: String(o.address),
    reason: String(o.reason ?? ""),
    addedMs: num(o.addedMs, "addedMs"),
    updatedMs: num(o.updatedMs, "updatedMs"),
    expiresMs: o.expiresMs === null || o.expiresMs === undefined ? null : num(o.expiresMs, "expiresMs"),
    hits: num(o.hits, "hits"),
    source: source as BlocklistSource,
  };
}

/** An entry as P:entries holds it (the seed script writes it exactly). */
export function entryToJson(e: BlocklistEntry): string {
  return JSON.stringify({
    address: e.address,
    reason: e.reason,
    addedMs: e.addedMs,
    updatedMs: e.updatedMs,
    expiresMs: e.expiresMs,
    hits: e.hits,
    source: e.source,
  });
}

const isLive = (e: BlocklistEntry, now: number) => e.expiresMs === null || e.expiresMs > now;
const byAge = (a: BlocklistEntry, b: BlocklistEntry) =>
  a.addedMs - b.addedMs || (a.address < b.address ? -1 : a.address > b.address ? 1 : 0);

/**
 * The shared list in Redis: the writes, reads and prune of BlocklistStore, asynchronous (every call is a
 * round trip), and the changes stream the servers follow.
 */
export class RedisBlocklist {
  readonly #client: RedisClient;
  readonly #keys: [entries: string, removed: string, changes: string];
  readonly #epochKey: string;
  readonly #now: () => number;
  /** Who writes, in the stream: lets a log or an operator reading the stream tell the servers apart. */
  readonly origin: string;

  constructor(client: RedisClient, options: { key?: string; origin?: string; now?: () => number } = {}) {
    this.#client = client;
    const p = options.key ?? DEFAULT_REDIS_KEY;
    this.#keys = [`${p}:entries`, `${p}:removed`, `${p}:changes`];
    this.#epochKey = `${p}:epoch`;
    this.#now = options.now ?? Date.now;
    this.origin = options.origin ?? randomBytes(6).toString("hex");
  }

  #eval(script: string, args: readonly (string | number)[]): Promise<RespValue> {
    return this.#client.command(["EVAL", script, 3, ...this.#keys, ...args]);
  }

  /** The script's arguments for a write (validated and canonical as the SQLite store takes it). */
  #upsertArgs(w: BlocklistWrite): (string | number)[] {
    const hits = w.hits ?? 0;
    if (!Number.isInteger(hits) || hits < 0)
      throw new RangeError(`hits must be a whole number >= 0, got ${hits}`);
    if (w.source !== "auto" && w.source !== "manual")
      throw new RangeError(`source must be "auto" or "manual", got ${String(w.source)}`);
    const expires = w.expiresMs === undefined || w.expiresMs === null ? "" : Math.floor(w.expiresMs);
    const at = Math.floor(w.atMs ?? this.#now());
    return [
      canonicalEntry(w.address),
      String(w.reason),
      w.source,
      expires,
      hits,
      at,
      this.origin,
      STREAM_MAXLEN,
    ];
  }

  /** Adds or updates an entry (the merge of store.ts); returns the entry as Redis now holds it. */
  async add(write: BlocklistWrite): Promise<BlocklistEntry> {
    const j = await this.#eval(UPSERT, this.#upsertArgs(write));
    return entryFromJson(String(j));
  }

  /** The same as add(), for pipelining: the command alone. */
  addCommand(write: BlocklistWrite): (string | number)[] {
    return ["EVAL", UPSERT, 3, ...this.#keys, ...this.#upsertArgs(write)];
  }

  /** Removes an entry (and remembers the removal); whether it was there. */
  async remove(address: string, atMs?: number): Promise<boolean> {
    const r = await this.#client.command(this.removeCommand(address, atMs));
    return r === 1;
  }

  removeCommand(address: string, atMs?: number): (string | number)[] {
    const at = Math.floor(atMs ?? this.#now());
    return ["EVAL", REMOVE, 3, ...this.#keys, canonicalEntry(address), at, this.origin, STREAM_MAXLEN];
  }

  /** Adds `count` hits to an entry if it is there; whether it was. */
  async addHits(address: string, count: number, atMs?: number): Promise<boolean> {
    return (await this.#client.command(this.hitsCommand(address, count, atMs))) === 1;
  }

  hitsCommand(address: string, count: number, atMs?: number): (string | number)[] {
    const at = Math.floor(atMs ?? this.#now());
    return ["EVAL", HITS, 3, ...this.#keys, canonicalEntry(address), Math.max(0, Math.floor(count)), at];
  }

  /** Puts an entry back as it was unless Redis has it or removed it later; the entry Redis keeps, or null. */
  async seed(e: BlocklistEntry): Promise<BlocklistEntry | null> {
    const r = await this.#eval(SEED, [e.address, entryToJson(e), e.updatedMs, this.origin, STREAM_MAXLEN]);
    return r === null ? null : entryFromJson(String(r));
  }

  /** The entry for an address (expired or not), or undefined. */
  async get(address: string): Promise<BlocklistEntry | undefined> {
    const r = await this.#client.command(["HGET", this.#keys[0], canonicalEntry(address)]);
    return r === null ? undefined : entryFromJson(String(r));
  }

  /** Every entry, expired ones too, by address. */
  async all(): Promise<Map<string, BlocklistEntry>> {
    const r = await this.#client.command(["HGETALL", this.#keys[0]]);
    const out = new Map<string, BlocklistEntry>();
    if (!Array.isArray(r)) return out;
    for (let i = 0; i + 1 < r.length; i += 2) out.set(String(r[i]), entryFromJson(String(r[i + 1])));
    return out;
  }

  /** Removals remembered: address -> ms. */
  async removals(): Promise<Map<string, number>> {
    const r = await this.#client.command(["HGETALL", this.#keys[1]]);
    const out = new Map<string, number>();
    if (!Array.isArray(r)) return out;
    for (let i = 0; i + 1 < r.length; i += 2) out.set(String(r[i]), Number(r[i + 1]));
    return out;
  }

  /** Entries not expired at `nowMs` (default now), oldest first; all of them with includeExpired. */
  async list(options: { nowMs?: number; includeExpired?: boolean } = {}): Promise<BlocklistEntry[]> {
    const now = options.nowMs ?? this.#now();
    const all = [...(await this.all()).values()];
    return (options.includeExpired ? all : all.filter((e) => isLive(e, now))).sort(byAge);
  }

  /** How many entries are live at `nowMs`. */
  async count(nowMs?: number): Promise<number> {
    return (await this.list(nowMs === undefined ? {} : { nowMs })).length;
  }

  /** Deletes entries expired at `nowMs` and removals older than TOMBSTONE_MS; how many entries went. */
  async prune(nowMs?: number): Promise<number> {
    const now = Math.floor(nowMs ?? this.#now());
    return Number(await this.#eval(PRUNE, [now, TOMBSTONE_MS]));
  }

  /**
   * The fleet's epoch: set to a new random value when missing. A different value than last time means
   * the data went away (a Redis restarted without persistence, or flushed, or another one).
   */
  async epoch(): Promise<string> {
    const fresh = randomBytes(8).toString("hex");
    const r = await this.#client.pipeline([
      ["SET", this.#epochKey, fresh, "NX"],
      ["GET", this.#epochKey],
    ]);
    return String(r[1]);
  }

  /**
   * The stream's last ID ("0-0" when empty or missing) and the highest ID trimmed away ("0-0" when none),
   * from which a reader knows whether it missed records.
   */
  async streamState(): Promise<{ last: string; maxDeleted: string }> {
    const r = await this.#client.pipeline([
      ["EXISTS", this.#keys[2]],
      ["XINFO", "STREAM", this.#keys[2]],
    ]);
    if (r[0] !== 1 || !Array.isArray(r[1])) return { last: "0-0", maxDeleted: "0-0" };
    const info = r[1];
    let last = "0-0";
    let maxDeleted = "0-0";
    for (let i = 0; i + 1 < info.length; i += 2) {
      if (info[i] === "last-generated-id") last = String(info[i + 1]);
      if (info[i] === "max-deleted-entry-id") maxDeleted = String(info[i + 1]);
    }
    return { last, maxDeleted };
  }

  /** Stream records after `afterId`, at most `count`, oldest first. */
  async changesSince(afterId: string, count = 1000): Promise<RedisChange[]> {
    const r = await this.#client.command(["XRANGE", this.#keys[2], `(${afterId}`, "+", "COUNT", count]);
    const out: RedisChange[] = [];
    if (!Array.isArray(r)) return out;
    for (const rec of r) {
      if (!Array.isArray(rec) || !Array.isArray(rec[1])) continue;
      const f = new Map<string, string>();
      const fields = rec[1];
      for (let i = 0; i + 1 < fields.length; i += 2) f.set(String(fields[i]), String(fields[i + 1]));
      const op = f.get("op");
      if (op !== "upsert" && op !== "remove") continue;
      const entryJson = f.get("entry");
      out.push({
        id: String(rec[0]),
        op,
        address: f.get("address") ?? "",
        entry: op === "upsert" && entryJson !== undefined ? entryFromJson(entryJson) : undefined,
        origin: f.get("origin") ?? "",
      });
    }
    return out;
  }
}

/** Stream IDs ("ms-seq") compared as the pairs of numbers they are. */
export function compareStreamIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split("-").map(Number);
  const [bm = 0, bs = 0] = b.split("-").map(Number);
  return am - bm || as - bs;
}
