// A worker thread: its own UDP sockets (SO_REUSEPORT, so the kernel spreads clients over the workers and
// keeps each client on one of them), the receive -> decide -> reply loop, and nothing else.
//
// Every packet goes through the defences (src/core/defences.ts) with the source address as a 16-byte key.
//
// Two ways to move packets, chosen by the main thread ([server] io):
// - native: the project's addon (src/server/native-udp.ts) reads up to 64 datagrams per system call into
//   preallocated slots, with the kernel's receive timestamps and the source addresses already as keys; the
//   replies are written in place and leave in one sendmmsg. Nothing is allocated per packet, by us or by
//   Node. The loop blocks in the addon for at most WAIT_MS at a time and yields to the event loop at least
//   every SLICE_MS, so messages from the main thread (reload, stop, blocklist) are never held up long.
// - dgram: node:dgram, portable; Node allocates the datagram's Buffer and its rinfo object per packet (our
//   code adds nothing: the address is parsed into a scratch key, the reply written over the request).

import dgram from "node:dgram";
import { parentPort, receiveMessageOnPort, workerData } from "node:worker_threads";
import { VERSION } from "../base/version.ts";
import {
  C_FLEET_FORWARDED,
  C_FLEET_REDIRECTED,
  C_FLEET_REFUSED,
  C_FLEET_TAKEN,
  C_KERNEL_DROPS,
  C_SEND_ERRORS,
  C_SOCKET_ERRORS,
} from "../core/counters.ts";
import { stampTransmit, stampTransmitAt } from "../core/decide.ts";
import { Defences } from "../core/defences.ts";
import { decideManycast } from "../core/manycast.ts";
import { NtsResponder } from "../core/nts.ts";
import {
  R_DROP_INTERNAL_ERROR,
  R_DROP_MODE_CONTROL,
  R_DROP_OVERLOAD,
  R_MALFORMED_TOO_LONG,
  REASON_COUNT,
  REASON_REPLY,
  REASON_RESPONSE,
  REPLY_NONE,
  REPLY_STAMPED,
  RESPONSE_DROPPED,
} from "../core/reasons.ts";
import type { ServeState } from "../core/serve-state.ts";
import { warmDecisionPath } from "../core/warmup.ts";
import { formatAddressKey, formatPrefixKey, isIPv4Key, parseAddressKey } from "../defence/address-key.ts";
import { CLASS_MOUSE, nextAutoRedline, type WorkerSecond } from "../defence/overload.ts";
import { NTS_NONE } from "../nts/extensions.ts";
import { NTP_HEADER_LENGTH } from "../protocol/index.ts";
import { hasRedirectRoom, REDIRECT_PACKET_LENGTH, writeRedirectField } from "../protocol/redirect.ts";
import { ControlService } from "./control.ts";
import { Fleet, FORWARD_HEADER_LENGTH } from "./fleet.ts";
import { closeManycast, type ManycastSocket, openManycast } from "./manycast.ts";
import {
  type BlockedItem,
  type BlockHits,
  type FromWorker,
  formatAddress,
  type ToWorker,
  type WorkerInit,
} from "./messages.ts";
import { NameResolver } from "./name-resolver.ts";
import {
  COUNTER_KERNEL_DROPS,
  type NativeUdp,
  type NativeUdpGroup,
  type NativeUdpSocket,
  tryLoadNativeUdp,
} from "./native-udp.ts";
import { WallClock } from "./wallclock.ts";

const init = workerData as WorkerInit;
const port = parentPort!;
const counters = init.counters;
const clock = new WallClock(init.sharedOffset);
let state: ServeState = init.state;
const sockets: dgram.Socket[] = [];
const defences = Defences.fromConfig(init.config, { shared: init.shared, slot: init.index });
const key = new Uint32Array(4);
// Active redirection (paper §8, fleet.ts): on the node:dgram path only (the server chooses it when [fleet]
// peers are set): forwarding sends to an address other than the request's source.
let fleet = new Fleet(init.config.fleet);
// NTS-authenticated requests (RFC 8915 §5.7, src/core/nts.ts), only when [nts] is on: then datagrams longer
// than the header are looked at for NTS fields; 48-octet requests never are. Its transmit time comes from the
// clock of the I/O in use, as the plain replies' does.
const nts =
  init.ntsKeys !== undefined
    ? new NtsResponder(
        (cell) => {
          if (native) native.realtime(cell);
          else cell[0] = clock.now();
          cell[0]! += state.offsetMs;
        },
        init.ntsKeys,
        init.ntsActivationMs ?? 0,
      )
    : undefined;
// The blocklist as it stood when this worker was started: in force before the first packet. Changes since
// then arrive as messages.
if (init.blocklist) defences.blocklist.apply(init.blocklist);
// Reverse-DNS lookups the name rules queued (paper §10), off the hot path, limited by the shared gate.
const names = new NameResolver(defences.names, {
  servers: init.config.names.resolver,
  timeout: init.config.names.timeout,
  now: () => clock.now() + state.offsetMs,
});
const control = new ControlService({
  config: init.config,
  defences,
  nonceSecret: init.nonceSecret,
  counters: init.allCounters,
  startedMs: init.startedMs,
  version: VERSION,
  state: () => state,
});

/** Addresses blocked here go to the main thread (which persists them and tells the other workers). */
const BLOCK_REPORT_MS = 200;
function reportBlocks(): void {
  const hits: BlockHits[] = [];
  defences.blocklist.drainHits((k, count, bits) => hits.push({ address: formatPrefixKey(k, bits), count }));
  if (defences.newBlockCount === 0 && defences.newBlocksLost === 0 && hits.length === 0) return;
  const items: BlockedItem[] = [];
  defences.drainNewBlocks((k, expiresMs, kods, bits) =>
    items.push({
      address: formatPrefixKey(k, bits),
      expiresMs: Number.isFinite(expiresMs) ? expiresMs : null,
      kods,
    }),
  );
  const lost = defences.newBlocksLost;
  defences.newBlocksLost = 0;
  post({ type: "blocked", index: init.index, items, lost, hits });
}
const blockTimer = setInterval(() => {
  reportBlocks();
  if (native) native.syncCounters();
}, BLOCK_REPORT_MS);

// The automatic redline ([overload] redline = 0, src/defence/overload.ts): once a second this worker tells the
// pure rule what it took from its sockets, what it answered, what the kernel dropped meanwhile and how full
// its receive batches came back, and takes the redline it returns. A configured redline is left alone.
let overloadSettings = init.config.overload;
const REDLINE_EVERY_MS = 100; // a flood's first drops are answered within a tenth of a second
/** Per measurement, the remembered mice demand falls to this share of itself (a half-life of 8 s). */
const FLOOR_DECAY = 0.9914;
let miceFloor = 0;
/** The most this worker answered per second in a saturated measurement lately: where the redline climbs back to. */
let ceiling = 0;
/** When (performance.now()) the kernel last dropped requests of this worker. */
let lastDropAt = Number.NEGATIVE_INFINITY;
const lastSecond = { at: performance.now(), processed: 0, answered: 0, drops: 0 };
/** The shortest window the timer measures: one just after a measurement made at the first drops is noise. */
const MIN_TIMER_WINDOW_MS = 20;
/** `minMs`: measure only if the window is at least this long (the timer's ticks); 0 measures at once. */
function measureSecond(minMs = 0): void {
  const now = performance.now();
  // A few milliseconds after a measurement that the first drops made, the rates of a window that short
  // (a handful of batches) swing by half: a cut taken from them went ten times too deep in a trace. The
  // window then runs on to the next tick.
  if (now - lastSecond.at < minMs) return;
  let processed = 0;
  let answered = 0;
  for (let r = 0; r < REASON_COUNT; r++) {
    const n = counters[r]!;
    processed += n;
    if (REASON_RESPONSE[r] !== RESPONSE_DROPPED) answered += n;
  }
  const drops = native ? native.kernelDrops() : 0;
  const full = native ? native.takeBatchFill() : 0;
  const seconds = (now - lastSecond.at) / 1000;
  const second: WorkerSecond = {
    processed: (processed - lastSecond.processed) / seconds,
    answered: (answered - lastSecond.answered) / seconds,
    kernelDrops: (drops - lastSecond.drops) / seconds,
    fullBatches: full,
    seconds,
    sinceDrops: drops > lastSecond.drops ? 0 : (now - lastDropAt) / 1000,
    ceiling,
  };
  if (drops > lastSecond.drops) {
    lastDropAt = now;
    if (seconds >= 0.05) ceiling = Math.max(ceiling * FLOOR_DECAY, second.answered);
  }
  lastSecond.at = now;
  lastSecond.processed = processed;
  lastSecond.answered = answered;
  lastSecond.drops = drops;
  if (!overloadSettings.enabled || overloadSettings.redline > 0 || seconds <= 0) return;
  const o = defences.overload;
  // The floor: this worker's share of what the mice asked (every worker sees the whole server's demand),
  // the most of recent measurements, decaying slowly: while the kernel drops requests, the mice that reach
  // the count are fewer than the mice that ask, and the floor must not follow them down.
  miceFloor = Math.max(o.demandOf(CLASS_MOUSE) / o.workers, miceFloor * FLOOR_DECAY);
  const next = nextAutoRedline(o.redline, second, o.overloaded, miceFloor);
  if (next !== o.redline) o.setRedline(next);
}
const redlineTimer = setInterval(() => measureSecond(MIN_TIMER_WINDOW_MS), REDLINE_EVERY_MS);

function post(msg: FromWorker): void {
  port.postMessage(msg);
}

function attach(socket: dgram.Socket, label: string): void {
  // Sending to a third party can fail in ways that third party controls (ICMP unreachable reported as
  // ECONNREFUSED on the next call, full buffers, ...). Count it, tell the main thread (which rate-limits
  // the log), never stop serving.
  socket.on("error", (err: NodeJS.ErrnoException) => {
    const isSend = err.syscall === "send" || err.syscall === "sendto";
    counters[isSend ? C_SEND_ERRORS : C_SOCKET_ERRORS]!++;
    post({
      type: "socket-error",
      index: init.index,
      address: label,
      code: err.code ?? "",
      message: err.message,
    });
  });
  socket.on("message", (msg: Buffer, rinfo: dgram.RemoteInfo) => {
    const received = clock.now();
    let reason: number;
    try {
      const s = state;
      if (!parseAddressKey(rinfo.address, key)) throw new Error("unparsable source address");
      if (fleet.active) {
        if (Fleet.isForwarded(msg, msg.length)) {
          takeForwarded(socket, msg, rinfo, received);
          return;
        }
        // Shed by configuration (§8): forwarded before anything is decided here; the peer decides.
        if (fleet.forwardShare > 0 && Math.random() < fleet.forwardShare && forward(socket, msg, rinfo))
          return;
      }
      const ntsKind =
        nts !== undefined && msg.length > NTP_HEADER_LENGTH ? nts.inspect(msg, msg.length) : NTS_NONE;
      reason = defences.decide(msg, msg.length, key, rinfo.port, received + s.offsetMs, s);
      if (ntsKind !== NTS_NONE) reason = nts!.respond(msg, reason, s);
      if (reason === R_DROP_MODE_CONTROL) {
        reason = control.handle(msg, msg.length, key, rinfo.port, received + s.offsetMs);
        for (const d of control.out) socket.send(d, 0, d.length, rinfo.port, rinfo.address);
      }
      // Withheld by overload control (§12), the request is still as it came: a peer may answer it instead.
      if (reason === R_DROP_OVERLOAD && fleet.forwardWithheld) forward(socket, msg, rinfo);
      const reply = REASON_REPLY[reason];
      if (reply !== REPLY_NONE) {
        if (reply === REPLY_STAMPED) stampTransmit(msg, clock.now() + s.offsetMs);
        const length = ntsKind !== NTS_NONE ? nts!.replyLength : replyLength(msg, msg.length, reply!);
        socket.send(msg, 0, length, rinfo.port, rinfo.address);
      }
    } catch {
      reason = R_DROP_INTERNAL_ERROR;
    }
    counters[reason]!++;
    names.kick();
  });
}

// Manycast (paper §9): worker 0 alone joins the [manycast] groups (src/server/manycast.ts says why). Requests
// to a group are few, and go through node:dgram whatever [server] io says.
let manycast: ManycastSocket[] = [];

function attachManycast(m: ManycastSocket): void {
  const onError = (err: NodeJS.ErrnoException) => {
    const isSend = err.syscall === "send" || err.syscall === "sendto";
    counters[isSend ? C_SEND_ERRORS : C_SOCKET_ERRORS]!++;
    post({
      type: "socket-error",
      index: init.index,
      address: m.label,
      code: err.code ?? "",
      message: err.message,
    });
  };
  m.socket.on("error", onError);
  m.reply.on("error", onError);
  m.socket.on("message", (msg: Buffer, rinfo: dgram.RemoteInfo) => {
    const received = clock.now();
    let reason: number;
    try {
      const s = state;
      if (!parseAddressKey(rinfo.address, key)) throw new Error("unparsable source address");
      defences.time[0] = received + s.offsetMs;
      reason = decideManycast(defences, msg, msg.length, key, rinfo.port, s);
      const reply = REASON_REPLY[reason];
      if (reply !== REPLY_NONE) {
        if (reply === REPLY_STAMPED) stampTransmit(msg, clock.now() + s.offsetMs);
        m.reply.send(msg, 0, NTP_HEADER_LENGTH, rinfo.port, rinfo.address);
      }
    } catch {
      reason = R_DROP_INTERNAL_ERROR;
    }
    counters[reason]!++;
    names.kick();
  });
}

/**
 * How much of a reply to send: the header, or the header and the redirection field naming a peer where the
 * request brought room for it (never more than the request) and the share says so (§8).
 */
function replyLength(buf: Uint8Array, length: number, reply: number): number {
  if (
    reply === REPLY_STAMPED &&
    fleet.redirectShare > 0 &&
    hasRedirectRoom(buf, length) &&
    Math.random() < fleet.redirectShare
  ) {
    const peer = fleet.peerFor(key, isIPv4Key(key));
    if (peer === undefined) return NTP_HEADER_LENGTH;
    writeRedirectField(buf, peer.target);
    counters[C_FLEET_REDIRECTED]!++;
    return REDIRECT_PACKET_LENGTH;
  }
  return NTP_HEADER_LENGTH;
}

/**
 * Sends the request (as it came) to the client's peer, wrapped with the client's address and port; false
 * when the fleet has no peer of the client's family (the caller then decides the request here).
 */
function forward(socket: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): boolean {
  const v4 = isIPv4Key(key);
  const peer = fleet.peerFor(key, v4);
  if (peer === undefined) return false;
  const wrapped = fleet.wrap(msg, msg.length, key, rinfo.port, v4 ? 4 : 6);
  socket.send(wrapped, 0, wrapped.length, peer.port, peer.host);
  counters[C_FLEET_FORWARDED]!++;
  return true;
}

/**
 * A request a fleet peer forwarded: decided here as if it came from the client it names (the call-gap and
 * the MRU list see the real client), answered from this socket straight to that client. Only from the
 * fleet's own addresses; never forwarded again (no loops).
 */
function takeForwarded(socket: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo, received: number): void {
  if (!fleet.acceptsFrom(rinfo.address)) {
    counters[C_FLEET_REFUSED]!++;
    return;
  }
  const clientPort = fleet.unwrap(msg, key);
  if (clientPort === 0) {
    counters[C_FLEET_REFUSED]!++;
    return;
  }
  const s = state;
  const inner = msg.subarray(FORWARD_HEADER_LENGTH);
  // ntpq's mode 6 (R_DROP_MODE_CONTROL here) is for whoever asks directly, not through a peer: no reply.
  const reason = defences.decide(inner, inner.length, key, clientPort, received + s.offsetMs, s);
  counters[C_FLEET_TAKEN]!++;
  counters[reason]!++;
  names.kick(); // the name rules may have queued a lookup of the client
  const reply = REASON_REPLY[reason];
  if (reply === REPLY_NONE) return;
  if (reply === REPLY_STAMPED) stampTransmit(inner, clock.now() + s.offsetMs);
  // A forwarded request is never redirected again: the header alone. The address text is made here, once
  // per forwarded request (a socket sends only to text); IPv4 in dotted form, for a udp4 socket.
  socket.send(inner, 0, NTP_HEADER_LENGTH, clientPort, formatAddressKey(key));
}

async function bindAll(): Promise<void> {
  for (const a of init.listen) {
    const label = formatAddress(a.host, a.port);
    const socket = dgram.createSocket({
      type: a.family === 6 ? "udp6" : "udp4",
      reuseAddr: false,
      reusePort: true,
      ipv6Only: a.family === 6,
      recvBufferSize: init.recvBuffer,
    });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => reject(Object.assign(err, { label }));
      socket.once("error", onError);
      socket.bind({ address: a.host, port: a.port, exclusive: true }, () => {
        socket.off("error", onError);
        resolve();
      });
    });
    attach(socket, label);
    sockets.push(socket);
  }
}

port.on("message", onMessage);

/**
 * Takes the main thread's messages that are waiting, now, without the event loop: the native loop calls it
 * before each batch, so a reload or a blocklist change applies to the very next packet even when the thread
 * was blocked in the addon when it came.
 */
function drainMessages(): void {
  for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
    onMessage(m.message as ToWorker);
  }
}

function onMessage(msg: ToWorker): void {
  switch (msg.type) {
    case "state":
      state = msg.state;
      break;
    case "offset":
      clock.setSharedOffset(msg.sharedOffset);
      break;
    case "config":
      overloadSettings = msg.config.overload;
      fleet = new Fleet(msg.config.fleet);
      defences.reconfigure(msg.config);
      control.reconfigure(msg.config);
      names.reconfigure({ servers: msg.config.names.resolver, timeout: msg.config.names.timeout });
      break;
    case "blocklist":
      defences.blocklist.apply(msg.update);
      break;
    case "nts-keys":
      nts?.setKeys(msg.keys, msg.activationMs);
      break;
    case "stop": {
      closeManycast(manycast);
      clearInterval(blockTimer);
      clearInterval(redlineTimer);
      reportBlocks();
      names.close();
      if (native) {
        native.stop();
        post({ type: "stopped", index: init.index });
        port.close();
        break;
      }
      let open = sockets.length;
      if (open === 0) post({ type: "stopped", index: init.index });
      for (const s of sockets)
        s.close(() => {
          if (--open === 0) {
            post({ type: "stopped", index: init.index });
            port.close();
          }
        });
      break;
    }
  }
}

// ---- native I/O -------------------------------------------------------------------------------------------

/** Longest block in the addon while idle, and longest run before yielding to the event loop, in ms. */
const WAIT_MS = 100;
const SLICE_MS = 20;
/** Longest block while reverse-DNS lookups are out. */
const BUSY_WAIT_MS = 2;

class NativeLoop {
  private readonly udp: NativeUdp;
  private readonly socks: NativeUdpSocket[] = [];
  private keyViews: Uint32Array[][] = [];
  private served: Uint8Array[] = [];
  private group: NativeUdpGroup | undefined;
  private readonly tx = new Float64Array(1);
  private readonly sliceEnd = new Float64Array(1);
  private running = false;
  private sentErrors = 0;
  /** Receive batches since takeBatchFill(), and how many of them came back full (the worker is behind). */
  private batches = 0;
  private fullBatches = 0;
  /** Each socket's kernel drop count as last looked at (a rise wakes the automatic redline at once). */
  private dropsSeen = new Float64Array(0);
  /** The loop's continuation, made once (not a closure per turn). */
  private readonly again = () => this.pump();

  constructor(udp: NativeUdp) {
    this.udp = udp;
  }

  bind(): void {
    for (const a of init.listen) {
      try {
        this.socks.push(
          this.udp.open(a.host, a.port, a.family, { reusePort: true, recvBufferBytes: init.recvBuffer }),
        );
      } catch (err) {
        for (const s of this.socks) s.close();
        throw Object.assign(err as Error, { label: formatAddress(a.host, a.port) });
      }
    }
    // Views made once: slot i's key, and whether slot i's reply needs its transmit timestamp.
    this.keyViews = this.socks.map((s) =>
      Array.from({ length: s.batch }, (_, i) => s.keys.subarray(i * 4, i * 4 + 4)),
    );
    this.served = this.socks.map((s) => new Uint8Array(s.batch));
    // -1: the first batch takes the drop branch below (one measurement, harmless), so that it is no longer
    // a never-taken branch when the first real drops come.
    this.dropsSeen = new Float64Array(this.socks.length).fill(-1);
    this.group = this.udp.group(this.socks);
    this.running = true;
    setImmediate(this.again);
  }

  private pump(): void {
    const group = this.group;
    if (!this.running || !group) return;
    this.udp.realtime(this.sliceEnd);
    this.sliceEnd[0]! += SLICE_MS;
    for (;;) {
      // While name lookups are out, their answers arrive through the event loop: block only briefly.
      const mask = group.wait(names.busy ? BUSY_WAIT_MS : WAIT_MS);
      if (mask === 0) break;
      drainMessages();
      if (!this.running) return; // stopped by a message just taken
      for (let j = 0; j < this.socks.length; j++) {
        if ((mask & (1 << j)) !== 0) this.batch(j, this.socks[j]!, this.keyViews[j]!, this.served[j]!);
      }
      if (names.busy) break; // start the lookups this batch queued, and take their answers
      this.udp.realtime(this.tx);
      if (this.tx[0]! >= this.sliceEnd[0]!) break;
    }
    // Let the event loop run (messages, timers), then carry on.
    setImmediate(this.again);
  }

  /** One batch: receive, decide every packet, stamp the served replies, send them all. */
  private batch(j: number, sock: NativeUdpSocket, keys: Uint32Array[], served: Uint8Array): void {
    const n = sock.recv(0);
    if (n === 0) return;
    this.batches++;
    // Branch-free: a branch first taken when the flood arrives would throw the optimised loop back to the
    // interpreter at that very moment (src/core/warmup.ts).
    this.fullBatches += +(n === sock.batch);
    // The kernel dropped requests since the last measurement while no redline is known: measure now rather
    // than at the next tick, so a flood's onset is met within a batch (overload control, automatic redline).
    const drops = sock.counterArray[COUNTER_KERNEL_DROPS]!;
    if (drops > this.dropsSeen[j]!) {
      this.dropsSeen[j] = drops;
      if (defences.overload.redline === 0) measureSecond();
    }
    const s = state;
    const lengths = sock.lengths;
    const stamps = sock.stamps;
    const ports = sock.ports;
    const replies = sock.replyLengths;
    for (let i = 0; i < n; i++) {
      const length = lengths[i]!;
      let reason: number;
      served[i] = 0;
      if (length < 0) {
        reason = R_MALFORMED_TOO_LONG; // longer than a slot: cut by the kernel, never an NTP request
      } else {
        try {
          const ntsKind =
            nts !== undefined && length > NTP_HEADER_LENGTH ? nts.inspect(sock.slots[i]!, length) : NTS_NONE;
          defences.time[0] = stamps[i]! + s.offsetMs;
          reason = defences.decideNow(sock.slots[i]!, length, keys[i]!, ports[i]!, s);
          if (ntsKind !== NTS_NONE) reason = nts!.respond(sock.slots[i]!, reason, s);
          if (reason === R_DROP_MODE_CONTROL) {
            // ntpq: answered at once, in datagrams of their own; nothing in place.
            reason = control.handle(sock.slots[i]!, length, keys[i]!, ports[i]!, defences.time[0]!);
            for (const d of control.out) sock.reply(i, d);
          }
          const reply = REASON_REPLY[reason]!;
          if (reply !== REPLY_NONE) replies[i] = ntsKind !== NTS_NONE ? nts!.replyLength : NTP_HEADER_LENGTH;
          served[i] = reply === REPLY_STAMPED ? 1 : 0;
        } catch {
          reason = R_DROP_INTERNAL_ERROR;
          replies[i] = 0;
        }
      }
      counters[reason]!++;
    }
    // The transmit timestamp, as late as we can: one clock read for the batch, just before sendmmsg, from the
    // clock of the kernel's receive stamps.
    this.udp.realtime(this.tx);
    this.tx[0]! += s.offsetMs;
    for (let i = 0; i < n; i++) if (served[i] === 1) stampTransmitAt(sock.slots[i]!, this.tx);
    sock.send(n);
    names.kick();
  }

  /** The clock of the kernel's receive stamps, Unix ms, into cell 0 (NTS replies are stamped from it). */
  realtime(cell: Float64Array): void {
    this.udp.realtime(cell);
  }

  /** Share of the receive batches since the last call that came back full (0 when there were none). */
  takeBatchFill(): number {
    const share = this.batches > 0 ? this.fullBatches / this.batches : 0;
    this.batches = 0;
    this.fullBatches = 0;
    return share;
  }

  /** Datagrams the kernel dropped from this worker's sockets' queues since they were opened. */
  kernelDrops(): number {
    let drops = 0;
    for (const s of this.socks) drops += s.counterArray[COUNTER_KERNEL_DROPS]!;
    return drops;
  }

  /** Copies the addon's error and kernel-drop counts into the shared counters (every BLOCK_REPORT_MS). */
  syncCounters(): void {
    let sendErrors = 0;
    let drops = 0;
    for (const s of this.socks) {
      const c = s.counters();
      sendErrors += c.sendErrors;
      drops += c.kernelDrops;
    }
    counters[C_SEND_ERRORS]! += sendErrors - this.sentErrors;
    this.sentErrors = sendErrors;
    counters[C_KERNEL_DROPS] = drops;
  }

  stop(): void {
    this.running = false;
    this.syncCounters();
    for (const s of this.socks) s.close();
  }
}

let native: NativeLoop | undefined;

async function start(): Promise<void> {
  // Before the first real request: teach the JIT every branch of the decision (src/core/warmup.ts), so that
  // a flood's first second is not also the optimiser's.
  warmDecisionPath(init.config, state);
  if (init.index === 0 && init.config.manycast.group.length > 0) {
    manycast = await openManycast(init.config.manycast, init.listen);
    for (const m of manycast) attachManycast(m);
  }
  if (init.io === "native") {
    const loaded = tryLoadNativeUdp();
    if (!loaded.ok) throw Object.assign(new Error(loaded.reason), { code: "ERR_NATIVE_UDP", label: "" });
    native = new NativeLoop(loaded.udp);
    native.bind();
    return;
  }
  await bindAll();
}

start().then(
  () => post({ type: "bound", index: init.index }),
  (err: NodeJS.ErrnoException & { label?: string }) => {
    closeManycast(manycast);
    for (const s of sockets) s.close();
    post({
      type: "bind-error",
      index: init.index,
      address: err.label ?? "",
      code: err.code ?? "",
      message: err.message,
    });
  },
);
