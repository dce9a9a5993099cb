// The server's main thread: checks and resolves the listen addresses, starts the worker threads (one socket
// per address each, SO_REUSEPORT), runs the clock source and the wall-clock calibration, and hands state
// changes to the workers. It never touches a packet.

import dgram from "node:dgram";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { availableParallelism } from "node:os";
import { dirname, isAbsolute, resolve } from "node:path";
import { Worker } from "node:worker_threads";
import { type Config, changedKeys, NTP_PORT, parseHostPort } from "../config/index.ts";
import { createNonceSecret } from "../control/nonce.ts";
import { BROADCAST_REASON_COUNT } from "../core/broadcast.ts";
import {
  type CounterSnapshot,
  createCounters,
  type FleetCounts,
  summarise,
  summariseFleet,
} from "../core/counters.ts";
import { Defences } from "../core/defences.ts";
import { type KePeer, keRedirectPeer } from "../core/nts-ke-redirect.ts";
import type { ServeState } from "../core/serve-state.ts";
import { formatPrefixKey, parseAddressKey } from "../defence/address-key.ts";
import { Blocklist, type BlocklistUpdate, canonicalEntry } from "../defence/blocklist.ts";
import {
  type BlocklistEntry,
  BlocklistStore,
  BlocklistStoreError,
  type BlocklistWrite,
  resolveBlocklistPath,
  updatesOf,
} from "./blocklist/index.ts";
import { BlocklistSharing } from "./blocklist/sharing.ts";
import { Broadcaster, broadcastCounts } from "./broadcast.ts";
import { type ClockConfig, type ClockSource, createClockSource } from "./clock-source.ts";
import { ServeError } from "./errors.ts";
import type { Logger } from "./log.ts";
import {
  type BlockedItem,
  type FromWorker,
  formatAddress,
  type ListenAddress,
  type ToWorker,
  type WorkerInit,
} from "./messages.ts";
import { tryLoadNativeUdp } from "./native-udp.ts";
import { type KeOutcome, NtsKeServer } from "./nts-ke.ts";
import { NtsKeyManager } from "./nts-keys.ts";
import { measurePrecision, measureSharedOffset, WallClock } from "./wallclock.ts";

export interface ServerSettings {
  listen: readonly ListenAddress[];
  /** 0 = one per core. */
  threads: number;
  user: string;
  answerSymmetric: boolean;
  precision: number;
  clock: ClockConfig;
  /** The whole validated configuration: the defences are built from it. */
  config: Config;
  /** The file it came from (relative blocklist paths are taken from its directory). */
  configFile?: string | undefined;
}

/** How often the main thread looks at overload control's state (for the log). */
const OVERLOAD_WATCH_MS = 1000;
const CALIBRATE_EVERY_MS = 16_000;
const WORKER_URL = new URL(import.meta.url.endsWith(".ts") ? "./worker.ts" : "./worker.js", import.meta.url);

/** Explains a bind failure in words an operator can act on. */
export function explainBindError(address: string, port: number, code: string, message: string): ServeError {
  switch (code) {
    case "EACCES":
    case "EPERM":
      return new ServeError(
        "ERR_BIND_PRIVILEGED",
        `cannot bind ${address}: port ${port} is privileged. Run as root and set [server] user to drop ` +
          "privileges after binding, or grant the capability CAP_NET_BIND_SERVICE (systemd: " +
          "AmbientCapabilities=CAP_NET_BIND_SERVICE; or setcap cap_net_bind_service=+ep on the node binary)",
      );
    case "EADDRINUSE":
      return new ServeError(
        "ERR_BIND_IN_USE",
        `cannot bind ${address}: the address is in use. Is another NTP server (chronyd, ntpd, ntpshield) running?`,
      );
    case "EADDRNOTAVAIL":
      return new ServeError("ERR_BIND_NOT_AVAILABLE", `cannot bind ${address}: not an address of this host`);
    default:
      return new ServeError("ERR_BIND", `cannot bind ${address}: ${message}`);
  }
}

/**
 * Binds each address once without SO_REUSEPORT: an address held by anyone (even another ntpshield, whose
 * sockets would otherwise silently share the port with ours) fails here, and port 0 gets its real port.
 */
async function probe(listen: readonly ListenAddress[]): Promise<ListenAddress[]> {
  const resolved: ListenAddress[] = [];
  for (const a of listen) {
    const socket = dgram.createSocket({ type: a.family === 6 ? "udp6" : "udp4", ipv6Only: a.family === 6 });
    const port = await new Promise<number>((resolve, reject) => {
      socket.once("error", (err: NodeJS.ErrnoException) => {
        socket.close();
        reject(explainBindError(formatAddress(a.host, a.port), a.port, err.code ?? "", err.message));
      });
      socket.bind({ address: a.host, port: a.port, exclusive: true }, () => resolve(socket.address().port));
    });
    await new Promise<void>((r) => socket.close(() => r()));
    resolved.push({ ...a, port });
  }
  return resolved;
}

function lookupUser(name: string): { uid: number; gid: number } {
  for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
    const f = line.split(":");
    if (f[0] === name && f.length >= 4) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  throw new ServeError("ERR_USER", `[server] user: no such user "${name}" in /etc/passwd`);
}

interface WorkerSlot {
  worker: Worker;
  counters: Float64Array;
  restarts: number;
  /** Its sockets are bound; until then it has served nothing, and a stop terminates it at once. */
  ready: boolean;
}

const MIB = 1024 * 1024;

/**
 * `next` with the running value of every key that needs a restart ([server] io, [mru] sizes, ...), whose
 * names are added to `needRestart` when they changed. The [http] keys are left to the caller, which owns
 * the endpoint.
 */
function keepRunning(running: Config, next: Config, needRestart: string[]): Config {
  const out = structuredClone(next) as unknown as Record<string, Record<string, unknown>>;
  const old = running as unknown as Record<string, Record<string, unknown>>;
  for (const change of changedKeys(running, next)) {
    if (!change.restart || change.key.startsWith("http.")) continue;
    const dot = change.key.indexOf(".");
    const section = change.key.slice(0, dot);
    const name = change.key.slice(dot + 1).replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    out[section]![name] = old[section]![name];
    if (!needRestart.includes(change.key)) needRestart.push(change.key);
  }
  return out as unknown as Config;
}

export class NtpServer {
  private settings: ServerSettings;
  private readonly log: Logger;
  private readonly wall = new WallClock();
  private slots: WorkerSlot[] = [];
  private clock: ClockSource | undefined;
  private calibrateTimer: NodeJS.Timeout | undefined;
  /** Watches overload control's shared state, to log each entry into overload and each exit. */
  private overloadTimer: NodeJS.Timeout | undefined;
  private overloadSeen = { entered: 0, left: 0 };
  private sharedOffset = measureSharedOffset();
  private precision = 0;
  /** Set by stop(), which start() looks at after each wait: a signal may come at any point of start-up. */
  private stopping = false;
  private stopped: Promise<void> | undefined;
  private errorLog = new Map<string, { last: number; suppressed: number }>();
  /** The addresses actually bound (port 0 resolved). */
  addresses: ListenAddress[] = [];
  private readonly nonceSecret = createNonceSecret();
  private readonly startedMs = Date.now();
  /** How the workers move packets, and why (for the start-up log). */
  io: "native" | "dgram" = "dgram";
  ioReason = "";
  /** The main thread's view of the shared defences (MRU list, KoD limiter): for monitoring. */
  defences: Defences | undefined;
  /** The blocklist database, open while [blocklist] is enabled. */
  blocklistStore: BlocklistStore | undefined;
  private stopWatch: (() => void) | undefined;
  /** Checks every 2 s that the blocklist's path still names the open file (checkBlocklistFile). */
  private fileTimer: NodeJS.Timeout | undefined;
  /** Why the blocklist file could not be recreated; writes are refused (503) while it is set. */
  private blocklistLost: BlocklistStoreError | undefined;
  /** The current blocklist, as every worker holds it, for workers started later. */
  private readonly blocklistMirror = new Blocklist();
  /** Mode 5 to the [broadcast] destinations (paper §9), while any is configured. */
  private broadcaster: Broadcaster | undefined;
  /** Its counts, kept across reloads that replace it. */
  private readonly broadcastTotals = new Float64Array(BROADCAST_REASON_COUNT);
  /** Bumped by each start and stop, so that a start overtaken while opening its sockets gives up. */
  private broadcastGeneration = 0;
  /** The fleet's shared list ([blocklist] redis; docs/fleet.md), when configured. */
  blocklistSharing: BlocklistSharing | undefined;
  /** NTS ([nts] enabled): the cookie keys every worker holds, and the NTS-KE server. */
  private ntsKeys: NtsKeyManager | undefined;
  ntsKe: NtsKeServer | undefined;

  constructor(settings: ServerSettings, log: Logger) {
    this.settings = settings;
    this.log = log;
  }

  get threads(): number {
    return this.settings.threads > 0 ? this.settings.threads : availableParallelism();
  }

  get state(): ServeState | undefined {
    return this.clock?.state;
  }

  /**
   * Binds, spawns the workers and starts the clock source. A stop() at any point of it (a signal during
   * start-up) ends it with ServeError ERR_STOPPED once whatever was started is stopped again.
   */
  async start(): Promise<void> {
    this.precision = this.settings.precision !== 0 ? this.settings.precision : measurePrecision();
    this.addresses = await probe(this.settings.listen);
    if (this.stopping) await this.abandonStart();
    this.chooseIo();
    // One overload-control slot per worker thread (src/defence/overload.ts): each measures its own load.
    this.defences = Defences.fromConfig(this.settings.config, { workers: this.threads });
    if (this.settings.config.blocklist.enabled) this.openBlocklist();
    if (this.settings.config.nts.enabled) this.prepareNts();
    this.clock = this.makeClock();
    const state = this.clock.state;
    const threads = this.threads;
    for (let i = 0; i < threads; i++) {
      const counters = createCounters();
      this.slots.push({ worker: undefined as unknown as Worker, counters, restarts: 0, ready: false });
    }
    // Spawned once every slot has its counters: each worker sees all of them (ntpq's ss_* variables).
    const cores = availableParallelism();
    try {
      let first = 0;
      if (threads > cores) {
        // More workers than cores only share the cores, and each is a whole V8 instance: one is started
        // alone to measure what it costs, so that the warning says it before the others are started.
        const rss = process.memoryUsage.rss();
        await this.spawn(0, this.slots[0]!, state);
        if (this.stopping) await this.abandonStart();
        this.warnThreads(threads, cores, process.memoryUsage.rss() - rss);
        first = 1;
      }
      await Promise.all(this.slots.slice(first).map((slot, i) => this.spawn(first + i, slot, state)));
    } catch (err) {
      // A stop() during the wait terminated the workers still loading: that is why they failed.
      if (this.stopping) await this.abandonStart();
      await this.stop();
      throw err;
    }
    if (this.stopping) await this.abandonStart();
    if (this.ntsKe) {
      try {
        await this.ntsKe.listen();
      } catch (err) {
        await this.stop();
        throw err;
      }
      this.log.info("nts-ke listening", { address: this.ntsKe.address, alpn: "ntske/1" });
    }
    this.clock.start();
    try {
      await this.startBroadcaster();
    } catch (err) {
      await this.stop();
      throw err;
    }
    if (this.stopping) await this.abandonStart();
    this.calibrateTimer = setInterval(() => this.calibrate(), CALIBRATE_EVERY_MS);
    this.calibrateTimer.unref();
    this.overloadTimer = setInterval(() => this.watchOverload(), OVERLOAD_WATCH_MS);
    this.overloadTimer.unref();
    if (this.settings.user && process.getuid?.() === 0) {
      const { uid, gid } = lookupUser(this.settings.user);
      process.setgroups?.([gid]);
      process.setgid?.(gid);
      process.setuid?.(uid);
      this.log.info("dropped privileges", { user: this.settings.user, uid, gid });
    }
  }

  /** Starts broadcasting to the configured destinations (none: nothing); a socket that cannot be set up stops start(). */
  private async startBroadcaster(): Promise<void> {
    const settings = this.settings.config.broadcast;
    if (settings.destination.length === 0) return;
    const generation = ++this.broadcastGeneration;
    const b = new Broadcaster({
      settings,
      state: () => this.clock?.state,
      now: () => this.wall.now(),
      log: this.log,
    });
    try {
      await b.start();
    } catch (err) {
      b.stop();
      throw new ServeError("ERR_BROADCAST", (err as Error).message);
    }
    // A stop, or a later reload, came while the sockets were opening: this one is already out of date.
    if (this.stopping || generation !== this.broadcastGeneration) {
      b.stop();
      return;
    }
    this.broadcaster = b;
  }

  private stopBroadcaster(): void {
    this.broadcastGeneration++;
    const b = this.broadcaster;
    if (b === undefined) return;
    b.stop();
    for (let i = 0; i < b.counts.length; i++) this.broadcastTotals[i]! += b.counts[i]!;
    this.broadcaster = undefined;
  }

  /** Broadcasts that were due since start, by what became of them (src/core/broadcast.ts). */
  broadcastStats(): Record<string, number> {
    const sum = Float64Array.from(this.broadcastTotals);
    const b = this.broadcaster;
    if (b !== undefined) for (let i = 0; i < sum.length; i++) sum[i]! += b.counts[i]!;
    return broadcastCounts(sum);
  }

  /** Ends a start() that stop() overtook, once the stop is done: what its caller sees in place of a server. */
  private async abandonStart(): Promise<never> {
    await this.stop();
    throw new ServeError("ERR_STOPPED", "stopped during start-up");
  }

  /**
   * server.threads above os.availableParallelism(): legal (a test runs 4 workers on 2 cores) but rarely
   * useful, since a worker only adds throughput while it has a core of its own; said with its memory cost.
   */
  private warnThreads(threads: number, cores: number, oneWorkerBytes: number): void {
    const each = Math.max(1, Math.round(oneWorkerBytes / MIB));
    this.log.warn("more worker threads than cores: they share the cores, and each costs memory", {
      threads,
      cores,
      memory: `about ${each} MiB each, about ${each * threads} MiB for ${threads}`,
      advice: "server.threads = 0 starts one per core",
    });
  }

  /** [server] io: the native addon when asked for or when `auto` finds it loadable, else node:dgram. */
  private chooseIo(): void {
    const want = this.settings.config.server.io;
    if (this.settings.config.fleet.peers.length > 0) {
      // Forwarding (fleet.ts) sends to addresses other than the request's source: node:dgram does that.
      this.io = "dgram";
      this.ioReason = "[fleet] peers set: forwarding runs on node:dgram";
      return;
    }
    if (want === "dgram") {
      this.io = "dgram";
      this.ioReason = "[server] io = dgram";
      return;
    }
    const loaded = tryLoadNativeUdp();
    if (loaded.ok) {
      this.io = "native";
      this.ioReason = loaded.udp.path;
      return;
    }
    if (want === "native") {
      throw new ServeError(
        "ERR_NATIVE_UDP",
        `[server] io = "native", but the UDP addon is unavailable: ${loaded.reason}`,
      );
    }
    this.io = "dgram";
    this.ioReason = `native I/O unavailable: ${loaded.reason}`;
  }

  /** A path of the configuration, relative to the configuration file's directory. */
  private configPath(path: string): string {
    if (path === "" || isAbsolute(path)) return path;
    const file = this.settings.configFile;
    return file === undefined ? resolve(path) : resolve(dirname(resolve(file)), path);
  }

  /**
   * NTS (RFC 8915): the cookie keys (made, or read from the key file) before the workers start, since each
   * starts with them; the NTS-KE server with its certificate, so that a bad one stops the start here.
   */
  private prepareNts(): void {
    const n = this.settings.config.nts;
    this.ntsKeys = new NtsKeyManager(
      { keyFile: this.configPath(n.keyFile), rotate: n.rotate, keep: n.keep },
      this.log,
      (keys, activationMs) => this.broadcast({ type: "nts-keys", keys, activationMs }),
    );
    this.ntsKeys.start();
    const ntp = this.addresses[0]?.port ?? 123;
    this.ntsKe = new NtsKeServer({
      listen: n.listen,
      certificatePath: this.configPath(n.certificate),
      keyPath: this.configPath(n.key),
      settings: n,
      currentKey: () => this.ntsKeys!.current(),
      // Port Negotiation by default only where clients would otherwise get it wrong (RFC 8915 §4.1.8).
      ntpPort: ntp === 123 ? 0 : ntp,
      log: this.log,
      redirect: (remote) => this.ntsRedirect(remote),
    });
  }

  /** The fleet's peers as NTS-KE names them ([fleet] peers, fixed at start). */
  private ntsPeers: KePeer[] | undefined;
  private readonly ntsClientKey = new Uint32Array(4);

  /**
   * The server NTS-KE names to a client while overload control withholds requests here ([nts] shed-to-fleet,
   * src/core/nts-ke-redirect.ts), or undefined for the configured one.
   */
  private ntsRedirect(remote: string): KePeer | undefined {
    const config = this.settings.config;
    if (!config.nts.shedToFleet || this.defences === undefined) return undefined;
    this.ntsPeers ??= config.fleet.peers.map((p) => {
      const hp = parseHostPort(p, NTP_PORT);
      return { host: hp.host, port: hp.port, v4: isIP(hp.host) === 4 };
    });
    if (!parseAddressKey(remote, this.ntsClientKey)) return undefined;
    const nowS = (Date.now() + (this.clock?.state.offsetMs ?? 0)) / 1000;
    return keRedirectPeer(true, this.defences.overload.overloadedAt(nowS), this.ntsPeers, this.ntsClientKey);
  }

  /** NTS-KE's outcomes since start, for /metrics; undefined while NTS is off. */
  ntsStats(): Record<KeOutcome, number> | undefined {
    return this.ntsKe?.stats();
  }

  /** Opens the blocklist database and keeps every worker's copy in step with it (paper §11). */
  private openBlocklist(): void {
    const path = resolveBlocklistPath(this.settings.config.blocklist.path, this.settings.configFile);
    try {
      this.blocklistStore = this.openStoreAt(path);
      this.watchStore(this.blocklistStore, true);
    } catch (err) {
      if (err instanceof BlocklistStoreError) {
        throw new ServeError(err.code, `blocklist.path: ${err.message}`);
      }
      throw err;
    }
    this.fileTimer ??= setInterval(() => this.checkBlocklistFileLogged(), 2000);
    this.fileTimer.unref();
    this.log.info("blocklist", { path, entries: this.blocklistStore.count() });
    const { redis, redisKey: key } = this.settings.config.blocklist;
    if (redis !== "" && this.blocklistSharing === undefined) {
      this.blocklistSharing = new BlocklistSharing(
        {
          local: () => this.blocklistStore,
          // Made elsewhere in the fleet: already in the local copy; the workers are told here.
          apply: (upserts, removed) => {
            for (const update of updatesOf({ full: false, upserts, removed })) this.shareBlocklist(update);
          },
          log: this.log,
        },
        { url: redis, key },
      );
      const at = this.blocklistSharing;
      this.log.info("blocklist: shared with the fleet through Redis", {
        redis: redisHostPort(redis),
        key,
        up: at.stats().up,
      });
    }
  }

  private openStoreAt(path: string): BlocklistStore {
    return BlocklistStore.open(path, {
      onError: (err) => this.log.error("blocklist database", { path, code: err.code, error: err.message }),
      // Hit counts only: queued entries are kept however long the database fails (write-queue.ts).
      onQueueFull: (dropped, queued) =>
        this.log.warn("blocklist database: write queue full, dropping hit counts until a batch commits", {
          path,
          dropped,
          queued,
        }),
    });
  }

  private watchStore(store: BlocklistStore, initial: boolean): void {
    this.stopWatch = store.watch(
      (change) => {
        for (const update of updatesOf(change)) {
          this.shareBlocklist(update);
        }
        if (!change.full) {
          for (const e of change.upserts)
            this.blocklistSharing?.pushWrite(
              { address: e.address, reason: e.reason, source: e.source, expiresMs: e.expiresMs },
              e.updatedMs,
            );
          for (const a of change.removed) this.blocklistSharing?.pushRemove(a);
        }
      },
      { initial, intervalMs: 1000 },
    );
  }

  private checkBlocklistFileLogged(): void {
    try {
      this.checkBlocklistFile();
    } catch {
      // Logged once where it was found; writes answer 503 until the file can be made again.
    }
  }

  /**
   * Makes sure the blocklist's path still names the file the store has open (before each direct write and
   * every 2 s). Deleted or replaced under a running server, the store would go on writing into a file
   * nobody sees, lost at the next start, while the CLI made a new one the server never reads. So: log it,
   * recreate the file at the path from the open one (an unlinked file stays readable through its open
   * descriptor; the main thread's copy of the list is the fallback), and go on with it. Throws
   * BlocklistStoreError ERR_BLOCKLIST_GONE (503 over HTTP) while that is impossible, so no write is
   * acknowledged that would be lost.
   */
  private checkBlocklistFile(): void {
    const store = this.blocklistStore;
    if (store === undefined) return;
    const problem = store.fileProblem();
    if (problem === undefined && this.blocklistLost === undefined) return;
    if (problem !== undefined && this.blocklistLost === undefined)
      this.log.error("blocklist database: the file in use is no longer at its path; recreating it", {
        path: store.path,
        problem,
      });
    let entries: BlocklistEntry[];
    try {
      store.flush();
      entries = store.dump();
    } catch {
      // What every worker holds: addresses and expiries, without reasons or hits.
      const now = Date.now();
      const snap = this.blocklistMirror.snapshot(now);
      entries = [];
      for (let i = 0; i < snap.bits.length; i++) {
        const expires = snap.expiresMs[i]!;
        entries.push({
          address: formatPrefixKey(snap.words, snap.bits[i]!, i * 4),
          reason: "restored after the database file was lost",
          addedMs: now,
          updatedMs: now,
          expiresMs: Number.isFinite(expires) ? expires : null,
          hits: 0,
          source: "manual",
        });
      }
    }
    let next: BlocklistStore | undefined;
    try {
      next = this.openStoreAt(store.path);
      next.restore(entries);
    } catch (err) {
      try {
        next?.close();
      } catch {
        // Already failing: the first error is the one to report.
      }
      const why = err instanceof Error ? err.message : String(err);
      if (this.blocklistLost === undefined)
        this.log.error("blocklist database: cannot recreate the file; refusing writes until it can", {
          path: store.path,
          error: why,
        });
      this.blocklistLost = new BlocklistStoreError(
        "ERR_BLOCKLIST_GONE",
        store.path,
        `blocklist database ${store.path} was deleted or replaced and cannot be recreated (${why}); ` +
          "writes are refused until it can",
        err,
      );
      throw this.blocklistLost;
    }
    this.stopWatch?.();
    try {
      store.close();
    } catch {
      // Its entries are in the new file already.
    }
    this.blocklistStore = next;
    this.watchStore(next, false);
    this.blocklistLost = undefined;
    this.log.warn("blocklist database: recreated at its path", { path: next.path, entries: entries.length });
  }

  /**
   * Sends a blocklist change to every worker, and keeps the main thread's copy in step: a worker started
   * later (a restart after a crash) begins from that copy, so it misses no change made since start.
   */
  private shareBlocklist(update: BlocklistUpdate): void {
    this.blocklistMirror.apply(update);
    this.broadcast({ type: "blocklist", update });
  }

  /** Addresses a worker blocked: persist them (batched, off the hot path) and tell the other workers. */
  private blocked(items: BlockedItem[], lost: number): void {
    if (lost > 0) this.log.warn("blocklist: more addresses blocked at once than could be reported", { lost });
    if (items.length === 0) return;
    this.shareBlocklist({
      type: "blocklist-add",
      items: items.map((i) => ({ address: i.address, expiresMs: i.expiresMs })),
    });
    for (const i of items) {
      const write: BlocklistWrite = {
        address: i.address,
        reason: `kept asking after ${i.kods} kiss-o'-death packets`,
        source: "auto",
        expiresMs: i.expiresMs,
        hits: i.kods,
      };
      this.blocklistStore?.enqueue(write);
      this.blocklistSharing?.pushWrite(write);
    }
    this.log.info("blocklist: addresses blocked", {
      addresses: items.map((i) => i.address).slice(0, 20),
      count: items.length,
    });
  }

  private makeClock(): ClockSource {
    return createClockSource({
      cfg: this.settings.clock,
      precision: this.precision,
      answerSymmetric: this.settings.answerSymmetric,
      now: () => this.wall.now(),
      onChange: (s) => this.broadcast({ type: "state", state: s }),
      log: this.log,
    });
  }

  private spawn(index: number, slot: WorkerSlot, state: ServeState): Promise<void> {
    const init: WorkerInit = {
      index,
      listen: this.addresses,
      counters: slot.counters,
      state,
      sharedOffset: this.sharedOffset,
      config: this.settings.config,
      shared: this.defences!.shared(),
      io: this.io,
      recvBuffer: this.settings.config.server.recvBuffer,
      blocklist: { type: "blocklist-replace", snapshot: this.blocklistMirror.snapshot(Date.now()) },
      allCounters: this.slots.map((s) => s.counters),
      nonceSecret: this.nonceSecret,
      startedMs: this.startedMs,
      ntsKeys: this.ntsKeys?.keys,
      ntsActivationMs: this.ntsKeys?.activationMs,
    };
    const worker = new Worker(WORKER_URL, { workerData: init, name: `ntpshield-worker-${index}` });
    slot.worker = worker;
    slot.ready = false;
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      worker.on("message", (msg: FromWorker) => {
        switch (msg.type) {
          case "bound":
            ready = true;
            slot.ready = true;
            resolve();
            break;
          case "blocked":
            this.blocked(msg.items, msg.lost);
            // Packets discarded from blocked addresses: the entries' hit counts, batched into the database.
            for (const h of msg.hits) {
              this.blocklistStore?.enqueueHits(h.address, h.count);
              this.blocklistSharing?.pushHits(h.address, h.count);
            }
            break;
          case "bind-error": {
            const port = Number(/:(\d+)$/.exec(msg.address)?.[1] ?? 0);
            reject(explainBindError(msg.address, port, msg.code, msg.message));
            break;
          }
          case "socket-error":
            this.socketError(msg.address, msg.code, msg.message);
            break;
          case "stopped":
            break;
        }
      });
      worker.on("error", (err) => {
        this.log.error("worker failed", { worker: index, error: err });
        if (!ready) reject(err);
      });
      worker.on("exit", (code) => {
        // Before its sockets were bound: start() must not wait for it (stopped, or failed without an error).
        if (!ready)
          reject(new ServeError("ERR_WORKER", `worker ${index} exited (code ${code}) before binding`));
        if (this.stopping || !ready) return;
        // A worker should never die; if one does, serve on with a new one (its counters live on).
        slot.restarts++;
        this.log.error("worker exited; restarting it", { worker: index, code, restarts: slot.restarts });
        if (slot.restarts <= 10 && this.clock) void this.spawn(index, slot, this.clock.state).catch(() => {});
      });
    });
  }

  private socketError(address: string, code: string, message: string): void {
    // Third parties can provoke these at will: log each kind at most once a minute.
    const key = `${address} ${code}`;
    const now = Date.now();
    const entry = this.errorLog.get(key);
    if (entry && now - entry.last < 60_000) {
      entry.suppressed++;
      return;
    }
    this.log.warn("socket error", { address, code, message, suppressed: entry?.suppressed ?? 0 });
    this.errorLog.set(key, { last: now, suppressed: 0 });
  }

  private broadcast(msg: ToWorker): void {
    for (const s of this.slots) s.worker.postMessage(msg);
  }

  /**
   * Logs entering and leaving overload (paper §12) with the figures that explain it. The workers decide; this
   * only reads the shared state once a second, so a log line never waits on the packet path.
   */
  private watchOverload(): void {
    const d = this.defences;
    if (!d) return;
    const s = d.overload.stats();
    if (s.entered === this.overloadSeen.entered && s.left === this.overloadSeen.left) return;
    this.overloadSeen = { entered: s.entered, left: s.left };
    const figures = {
      capacity: Math.round(s.capacity),
      demand: { mice: s.demand[0], known: s.demand[1], new: s.demand[2] },
      withheldPools: { mice: s.withheldPools[0], known: s.withheldPools[1], new: s.withheldPools[2] },
      withheld: { mice: s.withheld[0], known: s.withheld[1], new: s.withheld[2] },
    };
    if (s.overloaded) this.log.warn("overload: past the redline, withholding by class and pool", figures);
    else this.log.info("overload: back under the redline", figures);
  }

  private calibrate(): void {
    this.sharedOffset = measureSharedOffset();
    // The main thread stamps too (the broadcasts, the upstream polls): its clock follows the same measurement.
    this.wall.setSharedOffset(this.sharedOffset);
    this.broadcast({ type: "offset", sharedOffset: this.sharedOffset });
  }

  /**
   * Applies a new configuration without a restart. Clock and policy settings take effect at once; listen
   * addresses, threads and user need a restart, which is said in the returned list.
   */
  reload(next: ServerSettings): string[] {
    const needRestart: string[] = [];
    const same = (a: readonly ListenAddress[], b: readonly ListenAddress[]) =>
      a.length === b.length && a.every((x, i) => x.host === b[i]!.host && x.port === b[i]!.port);
    if (!same(next.listen, this.settings.listen)) needRestart.push("server.listen");
    if (next.threads !== this.settings.threads) needRestart.push("server.threads");
    if (next.user !== this.settings.user) needRestart.push("server.user");
    const clockChanged =
      JSON.stringify(next.clock) !== JSON.stringify(this.settings.clock) ||
      next.answerSymmetric !== this.settings.answerSymmetric ||
      (next.precision !== this.settings.precision && next.precision !== 0);
    // Every key the schema marks "restart" (sockets, threads, shared-memory sizes, the database file...) keeps
    // its running value; the caller logs which ones changed.
    const config = keepRunning(this.settings.config, next.config, needRestart);
    const broadcastBefore = this.settings.config.broadcast;
    this.settings = {
      ...next,
      config,
      configFile: this.settings.configFile,
      listen: this.settings.listen,
      threads: this.settings.threads,
      user: this.settings.user,
    };
    this.defences?.reconfigure(config);
    this.broadcast({ type: "config", config });
    if (JSON.stringify(config.broadcast) !== JSON.stringify(broadcastBefore)) {
      this.stopBroadcaster();
      void this.startBroadcaster().catch((err) =>
        this.log.error("broadcast: cannot start with the new settings", { error: err }),
      );
    }
    this.ntsKe?.reconfigure(config.nts);
    this.ntsKeys?.reconfigure({ keyFile: "", rotate: config.nts.rotate, keep: config.nts.keep });
    if (config.blocklist.enabled && !this.blocklistStore) this.openBlocklist();
    if (clockChanged) {
      if (next.precision !== 0) this.precision = next.precision;
      this.clock?.stop();
      this.clock = this.makeClock();
      this.broadcast({ type: "state", state: this.clock.state });
      this.clock.start();
    }
    return needRestart;
  }

  stats(): CounterSnapshot {
    return summarise(this.slots.map((s) => s.counters));
  }

  fleetCounts(): FleetCounts | undefined {
    if (this.settings.config.fleet.peers.length === 0) return undefined;
    return summariseFleet(this.slots.map((s) => s.counters));
  }

  describeClock(): Record<string, unknown> {
    return this.clock?.describe() ?? {};
  }

  /**
   * Stops the workers (each closes its sockets and reports its last blocked addresses), the clock source and
   * the database. Safe at any point of start(), which it ends, and more than once: every call waits for the
   * one stop.
   */
  stop(): Promise<void> {
    this.stopped ??= this.stopNow();
    return this.stopped;
  }

  private async stopNow(): Promise<void> {
    this.stopping = true;
    this.stopBroadcaster();
    clearInterval(this.calibrateTimer);
    clearInterval(this.overloadTimer);
    clearInterval(this.fileTimer);
    this.ntsKeys?.stop();
    await this.ntsKe?.close();
    this.clock?.stop();
    this.stopWatch?.();
    // Slots start() has yet to fill are left empty: it looks at `stopping` before it spawns again.
    await Promise.all(
      this.slots.map(
        (s) =>
          new Promise<void>((resolve) => {
            if (!s.worker) return resolve();
            // Not yet bound: it has served nothing and has nothing to report, and a worker still loading
            // would read the message only once bound.
            if (!s.ready) return void s.worker.terminate().then(() => resolve());
            const timer = setTimeout(() => void s.worker.terminate().then(() => resolve()), 2000);
            s.worker.once("exit", () => {
              clearTimeout(timer);
              resolve();
            });
            s.worker.postMessage({ type: "stop" } satisfies ToWorker);
          }),
      ),
    );
    this.blocklistSharing?.close();
    // After the workers: their last blocked addresses are committed before the file closes.
    try {
      this.blocklistStore?.close();
    } catch (err) {
      this.log.error("blocklist database: closing failed", { error: err });
    }
  }

  /**
   * Blocks an address by hand (the HTTP API): written to the database at once (durable when this returns)
   * and sent to every worker, since the store's watch() reports only other processes' writes. Throws
   * ServeError ERR_BLOCKLIST_DISABLED when [blocklist] is off, BlocklistError for a bad address and
   * BlocklistStoreError when the database fails.
   */
  blockAddress(write: BlocklistWrite): BlocklistEntry {
    const store = this.openStore();
    const entry = store.add(write);
    this.blocklistSharing?.pushWrite(write, entry.updatedMs);
    for (const update of updatesOf({ full: false, upserts: [entry], removed: [] })) {
      this.shareBlocklist(update);
    }
    this.log.info("blocklist: address added", { address: entry.address, source: entry.source });
    return entry;
  }

  /**
   * Unblocks an address, or a prefix the server blocked (the HTTP API); false if it was not on the list.
   * Throws as blockAddress.
   */
  unblockAddress(address: string): boolean {
    const store = this.openStore();
    const canonical = canonicalEntry(address);
    const removed = store.remove(canonical);
    this.blocklistSharing?.pushRemove(canonical);
    // Sent even when the database had no row: a worker may still hold an address blocked a moment ago.
    this.shareBlocklist({ type: "blocklist-remove", addresses: [canonical] });
    if (removed) this.log.info("blocklist: address removed", { address: canonical });
    return removed;
  }

  private openStore(): BlocklistStore {
    if (!this.settings.config.blocklist.enabled || this.blocklistStore === undefined) {
      throw new ServeError(
        "ERR_BLOCKLIST_DISABLED",
        "the blocklist is disabled ([blocklist] enabled = false)",
      );
    }
    // An acknowledged write must land in the file at the path, the one the CLI and the next start read.
    this.checkBlocklistFile();
    return this.blocklistStore;
  }
}

/** host:port of a redis:// URL, for logs: never the password it may carry. */
function redisHostPort(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || "6379"}`;
  } catch {
    return "?";
  }
}
