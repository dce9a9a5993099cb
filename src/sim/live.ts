// The live load generator (issue 6, `ntpshield load`): the simulator's populations sent to a real server,
// in real time, over loopback. Each client gets its own UDP socket bound to its own 127.x.y.z address, so
// the server's per-address defences (MRU list, call-gap, KoD limiter, blocklist) see as many distinct
// clients as the population has; what comes back is classified per population as answered, kissed (by
// kiss code) or nothing, and fed to the same population code (population.ts) that the virtual-time engine
// drives, so that a client obeys or ignores kisses and backs off the same way in both.
//
// Safety: the target must be in 127.0.0.0/8 (refused otherwise, before any socket is opened); the run is
// bounded in time (at most an hour), in packets (a cap, default 200,000) and in sockets (one per client,
// capped). Nothing here listens on a well-known port: client sockets bind port 0.
//
// `simulateLive` runs the same plan through the engine (one simulated server, the same configuration) so
// that the live figures can be put beside the simulated ones.

import { createSocket, type Socket } from "node:dgram";
import { CodedError } from "../base/errors.ts";
import type { Config } from "../config/index.ts";
import { Simulation } from "./engine.ts";
import { OUT_ANSWERED, OUT_KISSED, OUT_NOTHING, OUT_SKIPPED, type Population } from "./population.ts";
import { EventQueue } from "./queue.ts";
import { Random } from "./random.ts";
import type { LivePlan } from "./scenarios/common.ts";

export type LoadErrorCode = "ERR_LOAD_TARGET" | "ERR_LOAD_NOT_LOOPBACK" | "ERR_LOAD_LIMIT";

export class LoadError extends CodedError<LoadErrorCode> {}

export interface LiveTarget {
  host: string;
  port: number;
  /** The host as an unsigned 32-bit IPv4 number. */
  address: number;
}

/** Hard bounds of a live run, whatever the options say. */
export const LIVE_LIMITS = Object.freeze({ maxDuration: 3600, maxPackets: 1_000_000, maxSockets: 16_384 });

/** Where the clients' addresses start: 127.1.0.0 (127.0.0.0/16 is left to the servers under test). */
export const LIVE_ADDRESS_BASE = 0x7f010000;
const LIVE_ADDRESS_END = 0x7fffffff;

function parseIPv4(text: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p, i) => p > 255 || (m[i + 1]!.length > 1 && m[i + 1]!.startsWith("0")))) return undefined;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

export function formatIPv4(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

/**
 * Parses "A.B.C.D:PORT" and checks it is on IPv4 loopback (127.0.0.0/8). Throws LoadError: ERR_LOAD_TARGET
 * for text that is not an address and port, ERR_LOAD_NOT_LOOPBACK for any other address (IPv6 ::1 too:
 * the clients need distinct source addresses, and IPv6 loopback is a single one).
 */
export function parseTarget(text: string): LiveTarget {
  const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(String(text).trim());
  if (!m)
    throw new LoadError(
      "ERR_LOAD_TARGET",
      `--target must be ADDRESS:PORT (e.g. 127.0.0.1:11123), got ${JSON.stringify(text)}`,
    );
  const port = Number(m[2]);
  if (!(port >= 1 && port <= 65535))
    throw new LoadError("ERR_LOAD_TARGET", `port must be 1 to 65535, got ${m[2]}`);
  const host = m[1]!;
  const address = parseIPv4(host);
  if (address === undefined) {
    if (host === "::1" || host.toLowerCase() === "localhost") {
      throw new LoadError(
        "ERR_LOAD_NOT_LOOPBACK",
        `${host}: the load generator sends from many distinct addresses, which only IPv4 loopback (127.0.0.0/8) has; use 127.0.0.1`,
      );
    }
    throw new LoadError("ERR_LOAD_TARGET", `not an IPv4 address: ${JSON.stringify(host)} (use 127.x.y.z)`);
  }
  if (address >>> 24 !== 127) {
    throw new LoadError(
      "ERR_LOAD_NOT_LOOPBACK",
      `refusing to send load to ${host}: only loopback targets (127.0.0.0/8) are allowed`,
    );
  }
  return { host, port, address };
}

export interface LiveOptions {
  target: LiveTarget;
  plan: LivePlan;
  /** Seconds to send for (at most an hour). */
  duration: number;
  seed: number;
  /** Stop sending after this many requests (default 200,000; at most 1,000,000). */
  maxPackets?: number;
  /** Most client sockets (default 4,096; at most 16,384). */
  maxSockets?: number;
  /** The longest wait for a reply before calling it nothing, ms (default 1,000; a client may wait less). */
  timeoutMs?: number;
  /** Called with the share of the duration done. */
  onProgress?: (done: number) => void;
}

export interface LivePopulationResult {
  name: string;
  description: string;
  elephant: boolean;
  /** Distinct source addresses its clients used. */
  addresses: number;
  sent: number;
  answered: number;
  kissed: number;
  kisses: Record<string, number>;
  nothing: number;
  /** Replies that came back but the clients' own firewall threw away (plan.replyBlocked). */
  discarded: number;
  /** Requests the socket refused to send. */
  sendErrors: number;
}

export interface LiveResult {
  target: string;
  duration: number;
  seed: number;
  /** Wall-clock Unix ms of the run's t = 0 (scripts run "on the hour" of this clock). */
  startMs: number;
  packets: number;
  /** Client sockets opened in all (one per client address). */
  sockets: number;
  stoppedBy: "duration" | "max-packets";
  wallMs: number;
  populations: LivePopulationResult[];
}

interface Pending {
  pi: number;
  slot: number;
  t: number;
  timer: NodeJS.Timeout;
}

/** Assigns each population its block of 127/8 addresses (as the engine does in 16/8). */
function assignAddresses(pops: Population[], target: LiveTarget): void {
  let next = LIVE_ADDRESS_BASE;
  for (const p of pops) {
    p.addrBase = next;
    next += Math.ceil(Math.max(1, p.addresses) / 65536) * 65536;
    if (next > LIVE_ADDRESS_END)
      throw new LoadError("ERR_LOAD_LIMIT", "the plan needs more addresses than 127.1.0.0/8 has");
  }
  if (target.address >= LIVE_ADDRESS_BASE && target.address < next) {
    throw new LoadError(
      "ERR_LOAD_TARGET",
      `the target ${target.host} is inside the clients' addresses (${formatIPv4(LIVE_ADDRESS_BASE)} to ${formatIPv4(next - 1)}); use 127.0.x.y`,
    );
  }
}

const NTP_UNIX_OFFSET = 2208988800;

/** Runs a live plan against a real server. Resolves when every request has been answered or timed out. */
export async function runLive(o: LiveOptions): Promise<LiveResult> {
  const duration = o.duration;
  if (!(duration > 0 && duration <= LIVE_LIMITS.maxDuration)) {
    throw new LoadError(
      "ERR_LOAD_LIMIT",
      `duration must be above 0 and at most ${LIVE_LIMITS.maxDuration} s, got ${duration}`,
    );
  }
  const maxPackets = o.maxPackets ?? 200_000;
  if (!(Number.isInteger(maxPackets) && maxPackets >= 1 && maxPackets <= LIVE_LIMITS.maxPackets)) {
    throw new LoadError(
      "ERR_LOAD_LIMIT",
      `max-packets must be an integer from 1 to ${LIVE_LIMITS.maxPackets}`,
    );
  }
  const maxSockets = o.maxSockets ?? 4096;
  if (!(Number.isInteger(maxSockets) && maxSockets >= 1 && maxSockets <= LIVE_LIMITS.maxSockets)) {
    throw new LoadError(
      "ERR_LOAD_LIMIT",
      `max-sockets must be an integer from 1 to ${LIVE_LIMITS.maxSockets}`,
    );
  }
  const pops = o.plan.populations;
  const clients = pops.reduce((a, p) => a + p.slots, 0);
  if (clients > maxSockets) {
    throw new LoadError(
      "ERR_LOAD_LIMIT",
      `the plan has ${clients} clients, more than the ${maxSockets} sockets allowed (--scale down)`,
    );
  }
  assignAddresses(pops, o.target);
  const timeoutMs = o.timeoutMs ?? 1000;
  const blocked = new Set(o.plan.replyBlocked);
  const rnd = new Random(o.seed);
  const queues = pops.map((p) => new EventQueue(Math.max(16, p.slots)));
  const startMs = Date.now();
  const t0 = performance.now();
  const now = () => (performance.now() - t0) / 1000;
  pops.forEach((p, i) => {
    p.open({
      rnd: rnd.derive(`population:${p.name}`),
      duration,
      startMs,
      schedule: (slot, t) => {
        if (t < duration) queues[i]!.push(t, slot);
      },
    });
  });
  const results: LivePopulationResult[] = pops.map((p) => ({
    name: p.name,
    description: p.description,
    elephant: p.elephant,
    addresses: 0,
    sent: 0,
    answered: 0,
    kissed: 0,
    kisses: {},
    nothing: 0,
    discarded: 0,
    sendErrors: 0,
  }));
  const seenAddresses = pops.map(() => new Set<number>());
  // One socket per client slot, bound to the slot's current address (a burstmaker that is replaced by a
  // new client gets a new address, hence a new socket).
  const sockets = new Map<number, { addr: number; socket: Socket; ready: Promise<void> }>();
  const pending = new Map<number, Pending>();
  let counter = 0;
  let packets = 0;
  let opened = 0;
  let stoppedBy: LiveResult["stoppedBy"] = "duration";
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let immediate: NodeJS.Immediate | undefined;
  let finish: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });

  const slotKey = (pi: number, slot: number) => pi * 16_777_216 + slot;

  const onReply = (msg: Buffer) => {
    if (msg.length < 48) return;
    const mode = msg[0]! & 7;
    if (mode !== 4) return;
    // The origin timestamp echoes our transmit timestamp; its fraction carries the request's number.
    const id = msg.readUInt32BE(28);
    const p = pending.get(id);
    if (!p) return;
    if (blocked.has(pops[p.pi]!.name)) {
      results[p.pi]!.discarded++;
      return; // thrown away by the client's own firewall: it will time out
    }
    pending.delete(id);
    clearTimeout(p.timer);
    if (msg[1] === 0) {
      pops[p.pi]!.kiss = msg.readUInt32BE(12);
      complete(p, OUT_KISSED);
    } else complete(p, OUT_ANSWERED);
  };

  const socketFor = (pi: number, slot: number, addr: number) => {
    const key = slotKey(pi, slot);
    const cur = sockets.get(key);
    if (cur && cur.addr === addr) return cur;
    if (cur)
      cur.ready.then(
        () => cur.socket.close(),
        () => {},
      );
    const socket = createSocket("udp4");
    socket.on("message", onReply);
    socket.on("error", () => {});
    const ready = new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind({ address: formatIPv4(addr), port: 0, exclusive: true }, () => {
        socket.off("error", reject);
        resolve();
      });
    });
    const entry = { addr, socket, ready };
    sockets.set(key, entry);
    opened++;
    seenAddresses[pi]!.add(addr);
    return entry;
  };

  const complete = (p: Pending, outcome: number) => {
    const pop = pops[p.pi]!;
    const r = results[p.pi]!;
    pop.record(outcome);
    if (outcome === OUT_ANSWERED) r.answered++;
    else if (outcome === OUT_KISSED) {
      r.kissed++;
      const code = Buffer.alloc(4);
      code.writeUInt32BE(pop.kiss >>> 0);
      const text = code.toString("latin1").replace(/[^\x20-\x7e]/g, "?");
      r.kisses[text] = (r.kisses[text] ?? 0) + 1;
    } else r.nothing++;
    const next = pop.react(p.slot, p.t, outcome);
    if (next !== Number.POSITIVE_INFINITY && next < duration)
      queues[p.pi]!.push(Math.max(next, now()), p.slot);
    kick();
  };

  const send = (pi: number, slot: number, t: number) => {
    const pop = pops[pi]!;
    const entry = socketFor(pi, slot, pop.outAddr);
    const id = counter;
    counter = (counter + 1) >>> 0;
    const buf = Buffer.alloc(48);
    buf[0] = (4 << 3) | 3;
    buf[2] = 6;
    buf.writeUInt32BE((Math.floor(Date.now() / 1000) + NTP_UNIX_OFFSET) >>> 0, 40);
    buf.writeUInt32BE(id, 44);
    packets++;
    results[pi]!.sent++;
    const p: Pending = {
      pi,
      slot,
      t,
      timer: setTimeout(
        () => {
          if (pending.delete(id)) complete(p, OUT_NOTHING);
        },
        Math.min(timeoutMs, 1000 * pop.replyWait(slot)),
      ),
    };
    pending.set(id, p);
    entry.ready.then(
      () =>
        entry.socket.send(buf, o.target.port, o.target.host, (err) => {
          if (err) results[pi]!.sendErrors++;
        }),
      () => {
        results[pi]!.sendErrors++;
      },
    );
  };

  const pump = () => {
    timer = undefined;
    for (;;) {
      if (stopped) break;
      let pi = -1;
      let t = Number.POSITIVE_INFINITY;
      for (let i = 0; i < queues.length; i++) {
        const qt = queues[i]!.topTime();
        if (qt < t) {
          t = qt;
          pi = i;
        }
      }
      const tn = now();
      if (tn >= duration) {
        stopped = true;
        break;
      }
      if (pi < 0) break; // nothing scheduled: waiting for replies that will schedule more
      if (t > tn) {
        timer = setTimeout(pump, Math.min(1000, Math.max(1, (t - tn) * 1000)));
        o.onProgress?.(tn / duration);
        return;
      }
      const q = queues[pi]!;
      const slot = q.topId();
      q.pop();
      const pop = pops[pi]!;
      if (!pop.emit(slot, t)) {
        const next = pop.react(slot, t, OUT_SKIPPED);
        if (next !== Number.POSITIVE_INFINITY && next < duration) q.push(Math.max(next, t + 1e-6), slot);
        continue;
      }
      if (packets >= maxPackets) {
        stoppedBy = "max-packets";
        stopped = true;
        break;
      }
      send(pi, slot, t);
    }
    if (stopped && pending.size === 0) finish();
    else if (!stopped && timer === undefined)
      timer = setTimeout(pump, Math.max(1, (duration - now()) * 1000));
  };

  // An outcome may have scheduled a slot earlier than the timer pump is waiting for: run pump soon.
  const kick = () => {
    if (stopped) {
      if (pending.size === 0) finish();
      return;
    }
    if (immediate !== undefined) return;
    immediate = setImmediate(() => {
      immediate = undefined;
      if (timer !== undefined) clearTimeout(timer);
      pump();
    });
  };

  pump();
  await done;
  if (timer !== undefined) clearTimeout(timer);
  if (immediate !== undefined) clearImmediate(immediate);
  await Promise.all(
    [...sockets.values()].map(
      (s) =>
        new Promise<void>((resolve) => {
          s.ready.then(
            () => s.socket.close(() => resolve()),
            () => resolve(),
          );
        }),
    ),
  );
  o.onProgress?.(1);
  results.forEach((r, i) => {
    r.addresses = seenAddresses[i]!.size;
  });
  return {
    target: `${o.target.host}:${o.target.port}`,
    duration,
    seed: o.seed,
    startMs,
    packets,
    sockets: opened,
    stoppedBy,
    wallMs: performance.now() - t0,
    populations: results,
  };
}

/**
 * The same plan through the engine: one simulated server with `config`, replies blocked as in the plan.
 * Give the live run's startMs so that clock-driven clients (hourly scripts) fire at the same moments.
 */
export function simulateLive(
  plan: LivePlan,
  seed: number,
  duration: number,
  config: Config,
  startMs?: number,
) {
  const sim = new Simulation({
    seed,
    duration,
    startMs,
    servers: 1,
    config,
    binSeconds: 1,
    outages:
      plan.replyBlocked.length > 0
        ? [{ from: 0, to: duration, populations: plan.replyBlocked, direction: "reply" }]
        : [],
  });
  for (const p of plan.populations) {
    // A live plan has no hard-coded server index beyond 0: one server.
    p.server = -1;
    sim.add(p);
  }
  return sim.run();
}
