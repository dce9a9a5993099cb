// The batched UDP addon (native/udpio.c), loaded and typed: a socket that receives up to N datagrams per
// call into typed arrays shared with C, and answers them in place with one call, so that the server's hot
// path allocates nothing per packet (node:dgram allocates a Buffer and an rinfo object per datagram and a
// send request per reply). This is what lets one core keep answering a flood (paper §2-§4, the overload
// this server exists for) instead of spending itself on per-packet objects.
//
// The addon is optional: it is built by scripts/build-native.ts where a C compiler and Node's headers
// exist, on Linux only. loadNativeUdp() says whether it is there and, if not, why; the server then serves
// through node:dgram. NTPSHIELD_NATIVE_UDP=off (or 0, false) turns it off; NTPSHIELD_NATIVE_UDP=/path/udpio.node
// loads another build.
//
// One batch, as the worker would run it:
//
//   const n = socket.recv(timeoutMs);             // fills slots 0..n-1
//   for (let i = 0; i < n; i++) {
//     const length = socket.lengths[i]!;          // -1: larger than a slot (malformed)
//     const msg = socket.slots[i]!;               // 2048-byte view; the request, then the reply
//     // socket.keys[4i..4i+4) is the source's address key (src/defence/address-key.ts), socket.ports[i]
//     // its port, socket.stamps[i] the kernel's receive time in Unix ms
//     socket.replyLengths[i] = ...;               // bytes of msg to send back; 0 (the default) = none
//   }
//   socket.send(n);                               // every reply back to its own source, one sendmmsg
//
// recv() blocks the thread for at most timeoutMs: a worker that also takes messages from its parent reads
// them between batches (worker_threads.receiveMessageOnPort) or uses timeoutMs 0 and yields to its event
// loop now and then. A thread with several sockets (one per listen address) waits on all of them with
// udp.group(sockets).wait(timeoutMs), then calls recv(0) on each readable one.

import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { KEY_WORDS } from "../defence/address-key.ts";

/** The ABI version this wrapper speaks (UDPIO_ABI in native/udpio.c). */
const ABI_VERSION = 3;

/** Where scripts/build-native.ts puts the addon, from src/server/ or dist/server/ alike. */
export const DEFAULT_ADDON_PATH = fileURLToPath(new URL("../../native/build/udpio.node", import.meta.url));

export interface NativeUdpOptions {
  /** SO_REUSEPORT, so several sockets (one per worker) share the port. Default false. */
  reusePort?: boolean;
  /** SO_RCVBUF in bytes (SO_RCVBUFFORCE first, which passes net.core.rmem_max with CAP_NET_ADMIN);
   *  0 or absent: the kernel default. */
  recvBufferBytes?: number;
  /** SO_SNDBUF likewise. */
  sendBufferBytes?: number;
  /** Slots per batch, 1..maxBatch (default 64). */
  batch?: number;
  /** IP_RECVERR: read ICMP errors about earlier replies and count them (icmpErrors). Default false: Linux
   *  then reports none to an unconnected socket, as with node:dgram. */
  icmpErrors?: boolean;
  /** IPv4 replies with DF set and no path-MTU state (IP_PMTUDISC_PROBE), which spares the kernel the IP
   *  ID computation per reply. Default true. */
  dontFragment?: boolean;
}

/** The socket's counters since open; see native/udpio.c for the exact meaning of each. */
export interface NativeUdpCounters {
  received: number;
  truncated: number;
  noTimestamp: number;
  recvCalls: number;
  recvBatches: number;
  recvErrors: number;
  icmpErrors: number;
  sent: number;
  sendErrors: number;
  sendBlocked: number;
  /**
   * Datagrams the kernel dropped at this socket (receive buffer full), cumulative, as last reported: by the
   * newest datagram received (the count when it was queued) or, after a full batch, by the socket itself.
   */
  kernelDrops: number;
  lastRecvErrno: number;
  lastSendErrno: number;
}

export interface NativeUdpStats extends NativeUdpCounters {
  /** Bytes waiting in the receive queue now; -1 if the kernel would not say (SO_MEMINFO). */
  queuedBytes: number;
  /** The receive buffer's size in bytes as the kernel accounts it. */
  recvBufferBytes: number;
}

const COUNTER_NAMES: readonly (keyof NativeUdpCounters)[] = [
  "received",
  "truncated",
  "noTimestamp",
  "recvCalls",
  "recvBatches",
  "recvErrors",
  "icmpErrors",
  "sent",
  "sendErrors",
  "sendBlocked",
  "kernelDrops",
  "lastRecvErrno",
  "lastSendErrno",
];

/** Where the kernel's drop count sits in NativeUdpSocket#counterArray (read per batch, without allocating). */
export const COUNTER_KERNEL_DROPS = COUNTER_NAMES.indexOf("kernelDrops");

/** The handle object native open() returns (see js_open in native/udpio.c). */
interface RawHandle {
  readonly buffer: ArrayBuffer;
  readonly layout: {
    data: number;
    stamps: number;
    counters: number;
    keys: number;
    lengths: number;
    replyLengths: number;
    ports: number;
  };
  readonly batch: number;
  readonly slotBytes: number;
  readonly port: number;
  readonly family: 4 | 6;
  readonly recvBufferBytes: number;
  readonly sendBufferBytes: number;
  readonly recvBufferForced: boolean;
  readonly sendBufferForced: boolean;
  readonly kernelTimestamps: boolean;
  readonly kernelDropCounts: boolean;
  readonly replyFromDestination: boolean;
}

/** The addon's exports. */
interface RawAddon {
  abiVersion: number;
  slotBytes: number;
  defaultBatch: number;
  maxBatch: number;
  maxTimeoutMs: number;
  maxWait: number;
  counterNames: string[];
  open(host: string, port: number, family: 4 | 6, options?: NativeUdpOptions): RawHandle;
  recv(handle: RawHandle, timeoutMs: number): number;
  send(handle: RawHandle, count: number): number;
  close(handle: RawHandle): void;
  wait(handles: RawHandle[], timeoutMs: number): number;
  stats(handle: RawHandle): { kernelDrops: number; queuedBytes: number; recvBufferBytes: number };
  realtime(cell: Float64Array): void;
  reply(handle: RawHandle, slot: number, data: Uint8Array, length: number): boolean;
}

/** Each socket's native handle, for NativeUdpGroup (kept off the socket's public surface). */
const handles = new WeakMap<NativeUdpSocket, RawHandle>();

/**
 * One bound UDP socket and its shared batch arrays. The arrays are views of memory the addon writes: read
 * them between recv() and the next recv(), and copy what must outlive the batch.
 */
export class NativeUdpSocket {
  /** Slots per batch (N). */
  readonly batch: number;
  /** Bytes per slot (2048): the largest datagram received whole and the largest reply. */
  readonly slotBytes: number;
  /** The bound port (the kernel's choice when opened with port 0). */
  readonly port: number;
  readonly family: 4 | 6;
  /** SO_RCVBUF and SO_SNDBUF as granted (Linux reports twice the bytes asked, its bookkeeping share). */
  readonly recvBufferBytes: number;
  readonly sendBufferBytes: number;
  /** Whether SO_TIMESTAMPNS is on: stamps are then the kernel's receive times. */
  readonly kernelTimestamps: boolean;
  /** Bound to a wildcard address: each reply leaves from the address its request was sent to. */
  readonly replyFromDestination: boolean;

  /** All slots' bytes; slot i is data[i * slotBytes, (i + 1) * slotBytes). */
  readonly data: Uint8Array;
  /** slots[i]: a view of slot i, made once here so the hot path makes none. */
  readonly slots: readonly Uint8Array[];
  /** Datagram length per slot; -1 when it was longer than a slot and cut (count it as malformed). */
  readonly lengths: Int32Array;
  /** Source address keys, KEY_WORDS (4) words per slot, as parseAddressKey writes them. */
  readonly keys: Uint32Array;
  /** Source ports. */
  readonly ports: Int32Array;
  /** Receive times, Unix milliseconds with the fraction (kernel SO_TIMESTAMPNS, CLOCK_REALTIME). */
  readonly stamps: Float64Array;
  /** Bytes to send back per slot; recv() sets 0 for each slot it fills. */
  readonly replyLengths: Int32Array;
  /** Raw counters, in the order of NativeUdp.counterNames; counters() names them. */
  readonly counterArray: Float64Array;

  #addon: RawAddon;
  #handle: RawHandle;
  #closed = false;

  constructor(addon: RawAddon, handle: RawHandle) {
    this.#addon = addon;
    this.#handle = handle;
    handles.set(this, handle);
    const { buffer, layout, batch } = handle;
    this.batch = batch;
    this.slotBytes = handle.slotBytes;
    this.port = handle.port;
    this.family = handle.family;
    this.recvBufferBytes = handle.recvBufferBytes;
    this.sendBufferBytes = handle.sendBufferBytes;
    this.kernelTimestamps = handle.kernelTimestamps;
    this.replyFromDestination = handle.replyFromDestination;
    this.data = new Uint8Array(buffer, layout.data, batch * handle.slotBytes);
    const slots: Uint8Array[] = [];
    for (let i = 0; i < batch; i++)
      slots.push(this.data.subarray(i * this.slotBytes, (i + 1) * this.slotBytes));
    this.slots = slots;
    this.lengths = new Int32Array(buffer, layout.lengths, batch);
    this.keys = new Uint32Array(buffer, layout.keys, batch * KEY_WORDS);
    this.ports = new Int32Array(buffer, layout.ports, batch);
    this.stamps = new Float64Array(buffer, layout.stamps, batch);
    this.replyLengths = new Int32Array(buffer, layout.replyLengths, batch);
    this.counterArray = new Float64Array(buffer, layout.counters, COUNTER_NAMES.length);
  }

  /**
   * Waits at most timeoutMs (whole milliseconds, 0..60000; 0 = do not wait) for datagrams and returns how
   * many slots it filled (0 on timeout). Blocks the calling thread meanwhile. Errors the network can cause
   * are counted, not thrown; throws only when the socket is closed.
   */
  recv(timeoutMs: number): number {
    return this.#addon.recv(this.#handle, timeoutMs);
  }

  /**
   * Sends, for each slot in [0, count) with replyLengths[i] > 0, its first replyLengths[i] bytes back to
   * the address and port the slot's datagram came from; returns how many the kernel accepted. count may
   * not exceed the last recv()'s, and a batch is sent once. Failed replies are counted (sendErrors).
   */
  send(count: number): number {
    return this.#addon.send(this.#handle, count);
  }

  /**
   * Sends `data[0..length)` at once to the source of slot `slot` of the current batch (after recv(), before
   * send()), from the address the request came to: for answers that are not one datagram written in place
   * (ntpq's mode 6 fragments). Returns false when the kernel refused it (counted in sendErrors).
   */
  reply(slot: number, data: Uint8Array, length: number = data.length): boolean {
    return this.#addon.reply(this.#handle, slot, data, length);
  }

  /** Closes the socket; idempotent. The arrays stay readable. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#addon.close(this.#handle);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The counters by name. Allocates: for reports. */
  counters(): NativeUdpCounters {
    const out = {} as NativeUdpCounters;
    for (const [i, name] of COUNTER_NAMES.entries()) out[name] = this.counterArray[i]!;
    return out;
  }

  /** The counters plus the socket's kernel drop count and queue now (one getsockopt). Allocates. */
  stats(): NativeUdpStats {
    const now = this.#addon.stats(this.#handle);
    return { ...this.counters(), ...now };
  }
}

/**
 * Several sockets served by one thread (one per listen address): wait() blocks until any has datagrams.
 * Built once; its wait allocates nothing.
 */
export class NativeUdpGroup {
  readonly sockets: readonly NativeUdpSocket[];
  #addon: RawAddon;
  #handles: RawHandle[];

  constructor(addon: RawAddon, sockets: readonly NativeUdpSocket[]) {
    this.#addon = addon;
    this.sockets = [...sockets];
    this.#handles = this.sockets.map((s) => handles.get(s)!);
  }

  /**
   * Waits at most timeoutMs (0..60000) until some socket has datagrams queued; returns a bit mask, bit i
   * for sockets[i] (0 on timeout). Then recv(0) each readable socket. ICMP errors (icmpErrors) are read
   * and counted here, never reported as readable. Throws if a socket is closed.
   */
  wait(timeoutMs: number): number {
    return this.#addon.wait(this.#handles, timeoutMs);
  }
}

/** The loaded addon: opens sockets. */
export class NativeUdp {
  /** The file it was loaded from. */
  readonly path: string;
  readonly slotBytes: number;
  readonly defaultBatch: number;
  readonly maxBatch: number;
  readonly maxTimeoutMs: number;
  /** Sockets one group may hold. */
  readonly maxWait: number;
  #addon: RawAddon;

  constructor(addon: RawAddon, path: string) {
    this.#addon = addon;
    this.path = path;
    this.slotBytes = addon.slotBytes;
    this.defaultBatch = addon.defaultBatch;
    this.maxBatch = addon.maxBatch;
    this.maxTimeoutMs = addon.maxTimeoutMs;
    this.maxWait = addon.maxWait;
  }

  /**
   * Creates a UDP socket bound to host:port (an address literal of `family`; IPv6 sockets are IPv6-only)
   * with kernel receive timestamps and drop counts on. Throws Node-like errors: `code` EADDRINUSE,
   * EACCES, EADDRNOTAVAIL, ... with `syscall`, `errno`, `address`, `port`; ERR_INVALID_IP_ADDRESS for a
   * host that is not a literal.
   */
  open(host: string, port: number, family: 4 | 6, options: NativeUdpOptions = {}): NativeUdpSocket {
    return new NativeUdpSocket(this.#addon, this.#addon.open(host, port, family, options));
  }

  /**
   * Writes the system clock (CLOCK_REALTIME, the clock of the kernel's receive stamps) into cell[0], Unix ms
   * with the fraction. Into an array rather than returned, so that the hot path makes no number object.
   */
  realtime(cell: Float64Array): void {
    this.#addon.realtime(cell);
  }

  /** A group of 1..maxWait (30) of this addon's sockets, to wait on together. */
  group(sockets: readonly NativeUdpSocket[]): NativeUdpGroup {
    if (sockets.length < 1 || sockets.length > this.maxWait || sockets.some((s) => !handles.has(s))) {
      throw new RangeError(`a group holds 1 to ${this.maxWait} sockets opened by this addon`);
    }
    return new NativeUdpGroup(this.#addon, sockets);
  }
}

export type NativeUdpLoad = { ok: true; udp: NativeUdp } | { ok: false; reason: string };

const cache = new Map<string, NativeUdpLoad>();

function isFunction(x: unknown): boolean {
  return typeof x === "function";
}

function load(path: string): NativeUdpLoad {
  if (process.platform !== "linux")
    return { ok: false, reason: `the UDP addon is Linux only (${process.platform})` };
  if (!existsSync(path)) {
    return { ok: false, reason: `${path} does not exist (build it: npx node scripts/build-native.ts)` };
  }
  let addon: RawAddon;
  try {
    addon = createRequire(import.meta.url)(path) as RawAddon;
  } catch (err) {
    return { ok: false, reason: `cannot load ${path}: ${(err as Error).message}` };
  }
  if (addon?.abiVersion !== ABI_VERSION) {
    return {
      ok: false,
      reason: `${path} speaks ABI ${String(addon?.abiVersion)}, this code ${ABI_VERSION}: rebuild it (npx node scripts/build-native.ts)`,
    };
  }
  const names = addon.counterNames;
  if (
    !["open", "recv", "send", "close", "stats", "wait", "realtime", "reply"].every((f) =>
      isFunction((addon as unknown as Record<string, unknown>)[f]),
    ) ||
    !Array.isArray(names) ||
    names.length !== COUNTER_NAMES.length ||
    names.some((n, i) => n !== COUNTER_NAMES[i])
  ) {
    return { ok: false, reason: `${path} does not export what ABI ${ABI_VERSION} promises: rebuild it` };
  }
  return { ok: true, udp: new NativeUdp(addon, path) };
}

/**
 * Loads the addon (once per thread and path) and says why not when it cannot: not Linux, not built,
 * built for another ABI, or turned off with NTPSHIELD_NATIVE_UDP=off.
 */
export function tryLoadNativeUdp(path?: string): NativeUdpLoad {
  const env = process.env["NTPSHIELD_NATIVE_UDP"];
  if (path === undefined && (env === "off" || env === "0" || env === "false")) {
    return { ok: false, reason: `turned off by NTPSHIELD_NATIVE_UDP=${env}` };
  }
  // A value naming a file loads that build; "on", "1" or nothing loads the default one.
  const file = path ?? (env && (env.includes("/") || env.endsWith(".node")) ? env : DEFAULT_ADDON_PATH);
  let result = cache.get(file);
  if (!result) {
    result = load(file);
    cache.set(file, result);
  }
  return result;
}

/** The addon, or undefined when unavailable (tryLoadNativeUdp says why). */
export function loadNativeUdp(path?: string): NativeUdp | undefined {
  const r = tryLoadNativeUdp(path);
  return r.ok ? r.udp : undefined;
}
