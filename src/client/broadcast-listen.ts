// The broadcast client's I/O (paper §9): a socket that joins the group (or listens on a subnet broadcast
// address), the brief unicast exchanges that calibrate each server, and the events. What each datagram means
// is decided by the pure BroadcastListener (broadcast.ts); the exchanges are the client's ordinary ones
// (random transmit fraction, reply matched by its origin timestamp: match.ts, measure.ts).

import dgram from "node:dgram";
import { unmapAddress } from "./address.ts";
import {
  type BroadcastIgnoreReason,
  BroadcastListener,
  type BroadcastListenerOptions,
  type BroadcastSample,
} from "./broadcast.ts";
import { ClientError } from "./errors.ts";
import { matchReply } from "./match.ts";
import { buildRequest, evaluateReply, type Sample } from "./measure.ts";
import { cryptoRandom, type Random } from "./random.ts";
import { udpExchange } from "./udp.ts";

export interface BroadcastClientOptions extends Partial<BroadcastListenerOptions> {
  /** The group to join ("224.0.1.1", "ff02::101%eth0"), or a subnet broadcast address to listen on. */
  group: string;
  /** The port broadcasts arrive on (123). */
  port?: number;
  /** The local address whose interface joins the group; default: the kernel's choice. */
  interface?: string;
  /** Source-specific multicast (232/8): the only source listened to, joined as (S,G) with IGMPv3. */
  source?: string;
  /** The port the servers answer unicast requests on (123). */
  calibratePort?: number;
  /** Seconds to wait for each unicast reply (default 2). */
  timeout?: number;
  onEvent: (e: BroadcastEvent) => void;
  random?: Random;
  /** Wall clock, Unix ms. */
  wallMs?: () => number;
}

export type BroadcastEvent =
  | { kind: "listening"; group: string; port: number }
  | {
      kind: "calibrating";
      server: string;
      reason: "new-server" | "drift" | "next-pair";
      driftMs?: number | undefined;
    }
  /** One pair measured; `delayMs` is set once the calibration is complete (then the server is listened to). */
  | {
      kind: "calibrated";
      server: string;
      delayMs: number | undefined;
      offsetMs: number;
      unicastDelayMs: number;
    }
  | { kind: "calibration-failed"; server: string; reason: string }
  | { kind: "sample"; sample: BroadcastSample }
  | { kind: "ignored"; server: string; reason: BroadcastIgnoreReason };

function isMulticast(address: string): boolean {
  if (address.includes(":")) return /^ff/i.test(address);
  const first = Number(address.split(".")[0]);
  return first >= 224 && first <= 239;
}

export class BroadcastClient {
  readonly listener: BroadcastListener;
  private readonly o: BroadcastClientOptions;
  private socket: dgram.Socket | undefined;
  private readonly wallMs: () => number;
  private readonly random: Random;
  private stopped = false;

  constructor(o: BroadcastClientOptions) {
    this.o = o;
    this.listener = new BroadcastListener(o);
    this.wallMs = o.wallMs ?? (() => performance.timeOrigin + performance.now());
    this.random = o.random ?? cryptoRandom();
    const pairs = o.pairs ?? 3;
    if (!Number.isInteger(pairs) || pairs < 1 || pairs > 8)
      throw new ClientError("ERR_CLIENT_INVALID_OPTION", `pairs must be 1-8, got ${pairs}`);
  }

  /** Binds and joins; resolves once listening (throws ClientError when the group cannot be joined). */
  async start(): Promise<void> {
    const group = this.o.group;
    const port = this.o.port ?? 123;
    const v6 = group.includes(":");
    const socket = dgram.createSocket({ type: v6 ? "udp6" : "udp4", reuseAddr: true });
    this.socket = socket;
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once("error", reject);
        // Bound to the group itself: only datagrams sent to it arrive (and the port stays free elsewhere).
        socket.bind({ address: group, port }, () => {
          socket.off("error", reject);
          resolve();
        });
      });
      const bare = group.replace(/%.*$/, "");
      if (isMulticast(bare)) {
        if (this.o.source !== undefined)
          socket.addSourceSpecificMembership(this.o.source, bare, this.o.interface);
        else socket.addMembership(bare, this.o.interface);
      } else socket.setBroadcast(true);
    } catch (err) {
      socket.close();
      this.socket = undefined;
      throw new ClientError(
        "ERR_CLIENT_INVALID_OPTION",
        `cannot listen on ${group}:${port}: ${(err as Error).message}`,
      );
    }
    socket.on("error", () => {});
    socket.on("message", (data, rinfo) => this.onDatagram(data, rinfo.address, this.wallMs()));
    this.o.onEvent({ kind: "listening", group, port });
  }

  private onDatagram(data: Uint8Array, from: string, t4: number): void {
    if (this.stopped) return;
    if (this.o.source !== undefined && unmapAddress(from) !== this.o.source) return;
    const v = this.listener.onBroadcast(data, from, t4);
    if (v.kind === "sample") this.o.onEvent({ kind: "sample", sample: v.sample });
    else if (v.kind === "ignored") this.o.onEvent(v);
    else {
      this.o.onEvent({ kind: "calibrating", server: v.server, reason: v.reason, driftMs: v.driftMs });
      void this.calibrate(v.server);
    }
  }

  /** The brief unicast exchange (§9): one request, its reply matched by origin timestamp, for one pair. */
  private async calibrate(server: string): Promise<void> {
    const r = await this.exchange(server);
    if (this.stopped) return;
    if (!r.ok) {
      this.listener.calibrationFailed(server, this.wallMs());
      this.o.onEvent({ kind: "calibration-failed", server, reason: r.reason });
      return;
    }
    const delayMs = this.listener.calibratedWith(server, r.sample);
    if (delayMs !== undefined && Number.isNaN(delayMs)) return;
    this.o.onEvent({
      kind: "calibrated",
      server,
      delayMs,
      offsetMs: r.sample.offsetMs,
      unicastDelayMs: r.sample.delayMs,
    });
  }

  private async exchange(
    server: string,
  ): Promise<{ ok: true; sample: Sample } | { ok: false; reason: string }> {
    const port = this.o.calibratePort ?? 123;
    const request = buildRequest(this.wallMs(), this.random, 6);
    let t1 = this.wallMs();
    let result: { ok: true; sample: Sample } | { ok: false; reason: string } = {
      ok: false,
      reason: "no reply",
    };
    const x = udpExchange({
      family: server.includes(":") ? 6 : 4,
      address: server,
      port,
      packet: request.packet,
      timeoutMs: (this.o.timeout ?? 2) * 1000,
      wallMs: this.wallMs,
      onSent: (t) => {
        t1 = t;
      },
      onDatagram: (data, from, t4) => {
        // The reply is ours only with our exact origin timestamp, from the server asked.
        if (!matchReply({ address: server, port, transmit: request.transmit }, data, from, false).ok)
          return false;
        const verdict = evaluateReply(data, request.transmit, t1, t4);
        if (verdict.ok) result = { ok: true, sample: verdict.sample };
        else result = { ok: false, reason: verdict.reason };
        return true;
      },
    });
    const outcome = await x.done;
    if (outcome.kind === "error") return { ok: false, reason: outcome.error.message };
    return result;
  }

  stop(): void {
    this.stopped = true;
    try {
      this.socket?.close();
    } catch {
      // already closed
    }
    this.socket = undefined;
  }
}
