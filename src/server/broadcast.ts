// The broadcast server's I/O (RFC 5905 mode 5, paper §9): one socket per [[broadcast.destination]], set up
// with its TTL or hop limit and the interface to send from, and a timer that asks the pure core
// (src/core/broadcast.ts) every [broadcast] interval whether to send and what. It runs on the main thread:
// one packet per destination per interval is nothing beside the workers' load, and the main thread holds
// the clock source's state.
//
// Each socket is bound to port 0 of the interface address: binding the NTP port would put it in the
// workers' SO_REUSEPORT group, where it would take a share of the requests. A client that calibrates (§9)
// asks the broadcasting address on the NTP port, where the workers answer.

import dgram from "node:dgram";
import {
  B_SEND_ERROR,
  B_SENT,
  BROADCAST_REASON_COUNT,
  BROADCAST_REASON_NAMES,
  decideBroadcast,
  pollExponent,
  writeBroadcast,
} from "../core/broadcast.ts";
import { stampTransmit } from "../core/decide.ts";
import type { ServeState } from "../core/serve-state.ts";
import { NTP_HEADER_LENGTH } from "../protocol/index.ts";
import type { Logger } from "./log.ts";

export interface BroadcastDestination {
  readonly address: string;
  readonly kind: "multicast" | "broadcast";
  readonly port: number;
  readonly ttl: number;
  readonly interface: string;
}

export interface BroadcastSettings {
  readonly interval: number;
  readonly destination: readonly BroadcastDestination[];
}

export interface BroadcasterDeps {
  settings: BroadcastSettings;
  /** The state served now (the clock source's). */
  state: () => ServeState | undefined;
  /** Unix ms, the server's wall clock (uncorrected; state.offsetMs is added here). */
  now: () => number;
  log: Logger;
}

interface Open {
  socket: dgram.Socket;
  dest: BroadcastDestination;
  label: string;
}

/** Per-reason counts of the broadcasts that were due; read by /metrics. */
export function broadcastCounts(counts: Float64Array): Record<string, number> {
  const out: Record<string, number> = {};
  for (let r = 0; r < BROADCAST_REASON_COUNT; r++) out[BROADCAST_REASON_NAMES[r]!] = counts[r] ?? 0;
  return out;
}

export class Broadcaster {
  private readonly deps: BroadcasterDeps;
  private open: Open[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly buf = new Uint8Array(NTP_HEADER_LENGTH);
  readonly counts = new Float64Array(BROADCAST_REASON_COUNT);
  /** Send errors already logged, by destination: one line per destination and error code. */
  private readonly logged = new Set<string>();

  constructor(deps: BroadcasterDeps) {
    this.deps = deps;
  }

  /** Opens the sockets (throws on a bad interface or address), sends at once, then every interval. */
  async start(): Promise<void> {
    for (const dest of this.deps.settings.destination) this.open.push(await openSocket(dest));
    if (this.open.length === 0) return;
    this.deps.log.info("broadcasting", {
      destinations: this.open.map((o) => o.label),
      interval: this.deps.settings.interval,
    });
    this.tick();
    this.timer = setInterval(() => this.tick(), this.deps.settings.interval * 1000);
    this.timer.unref();
  }

  /** One round: the core decides once for all destinations (one state), each destination counts once. */
  tick(): void {
    const state = this.deps.state();
    if (state === undefined) return;
    const verdict = decideBroadcast(state);
    const poll = pollExponent(this.deps.settings.interval);
    for (const o of this.open) {
      if (verdict !== B_SENT) {
        this.counts[verdict]!++;
        continue;
      }
      writeBroadcast(this.buf, this.deps.now() + state.offsetMs, state, poll);
      // The transmit timestamp last, as for a reply (RFC 5905 §8): a listening client has no other.
      stampTransmit(this.buf, this.deps.now() + state.offsetMs);
      o.socket.send(this.buf, 0, NTP_HEADER_LENGTH, o.dest.port, o.dest.address, (err) => {
        if (err) this.sendError(o, err as NodeJS.ErrnoException);
      });
      this.counts[B_SENT]!++;
    }
  }

  private sendError(o: Open, err: NodeJS.ErrnoException): void {
    // Counted as an error instead of sent: the packet did not leave.
    this.counts[B_SENT]!--;
    this.counts[B_SEND_ERROR]!++;
    const key = `${o.label} ${err.code}`;
    if (this.logged.has(key)) return;
    this.logged.add(key);
    this.deps.log.warn("broadcast: send failed", {
      destination: o.label,
      code: err.code,
      error: err.message,
    });
  }

  stop(): void {
    clearInterval(this.timer);
    for (const o of this.open) {
      try {
        o.socket.close();
      } catch {
        // already closed
      }
    }
    this.open = [];
  }
}

async function openSocket(dest: BroadcastDestination): Promise<Open> {
  const v6 = dest.address.includes(":");
  const label = v6 ? `[${dest.address}]:${dest.port}` : `${dest.address}:${dest.port}`;
  const socket = dgram.createSocket({ type: v6 ? "udp6" : "udp4" });
  // The interface address without its zone (the zone names the interface for IP_MULTICAST_IF only).
  const bindTo = dest.interface === "" ? undefined : dest.interface.replace(/%.*$/, "");
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind({ address: bindTo, port: 0 }, () => {
      socket.off("error", reject);
      resolve();
    });
  }).catch((err: Error) => {
    socket.close();
    throw new Error(`broadcast to ${label}: cannot bind ${bindTo ?? "the wildcard address"}: ${err.message}`);
  });
  try {
    if (dest.kind === "broadcast") {
      socket.setBroadcast(true);
      socket.setTTL(dest.ttl);
    } else {
      socket.setMulticastTTL(dest.ttl);
      if (dest.interface !== "") socket.setMulticastInterface(dest.interface);
      // A client on this host hears it too (and so do the tests, on loopback).
      socket.setMulticastLoopback(true);
    }
  } catch (err) {
    socket.close();
    throw new Error(`broadcast to ${label}: ${(err as Error).message}`);
  }
  // Errors after start (a route gone, an interface down) are counted by send's callback; this keeps an
  // asynchronous one from being thrown.
  socket.on("error", () => {});
  return { socket, dest, label };
}
