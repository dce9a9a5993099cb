// A known synthetic traffic for the end-to-end survey test: mice (ntpd polling every 1024 s, one-shot SNTP
// clients, scripts), a client exactly at the 5 s boundary, and seven bursters covering every rate and
// duration bin, spread at random over three servers by a balancer (paper §5: "this assumes the load
// balancer distributes incoming packets at random"), each server recording its share in a real MruList.
// The ground truth (who bursts, how many packets) comes from the traffic itself, not from the survey code.

import { addressKey } from "../../src/defence/address-key.ts";
import { MruList } from "../../src/defence/mru.ts";
import { createRng } from "../../src/defence/random.ts";
import { snapshotFromMru } from "../../src/survey/from-mru.ts";
import type { Snapshot } from "../../src/survey/snapshot.ts";

/** The servers started at START and were surveyed at END (a) , END + 0.15 (b) and END + 0.3 (c). */
export const START = 1_700_000_000;
export const UPTIME = 26 * 3600;
export const END = START + UPTIME;
/** Datagrams each server received that never reached its MRU list (malformed, say). */
export const JUNK_PER_SERVER = 1000;

export interface Sender {
  address: string;
  /** Packet times, increasing. */
  times: number[];
  kind: "mouse" | "boundary" | "burster";
}

/** A deterministic PRNG in [0, 1) (mulberry32), so the traffic is the same on every run. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

function train(address: string, first: number, spacing: number, count: number, kind: Sender["kind"]): Sender {
  return { address, times: Array.from({ length: count }, (_, i) => first + i * spacing), kind };
}

export function traffic(): Sender[] {
  const rnd = random(20_050_501);
  const senders: Sender[] = [];
  // 300 ntpd clients polling every 1024 s from a random phase, for the whole day.
  for (let i = 0; i < 300; i++) {
    const first = START + 1 + Math.floor(rnd() * 1024);
    const count = Math.floor((END - 2 - first) / 1024) + 1;
    senders.push(train(`10.1.${i >> 8}.${i & 255}`, first, 1024, count, "mouse"));
  }
  // 100 SNTP clients run once, and 20 scripts asking four times a minute apart.
  for (let i = 0; i < 100; i++)
    senders.push(train(`10.2.0.${i}`, START + 10 + Math.floor(rnd() * (UPTIME - 20)), 1, 1, "mouse"));
  for (let i = 0; i < 20; i++)
    senders.push(train(`10.3.0.${i}`, START + 10 + Math.floor(rnd() * (UPTIME - 400)), 64, 4, "mouse"));
  // Exactly 5 s apart: not under 5 s, so not a burster.
  senders.push(train("10.4.0.1", START + 5000, 5, 10, "boundary"));
  // Bursters: [address, first (s after start), spacing, count].
  const bursters: [string, number, number, number][] = [
    ["198.18.0.1", 40_000, 0.125, 241], // 8 PPS for 30 s: 5 PPS or more, under a minute
    ["198.18.0.2", 50_000, 0.25, 4801], // 4 PPS for 20 min: 2-5 PPS, under an hour
    ["198.18.0.3", 20_000, 0.75, 14_401], // 1.33 PPS for 3 h: 1-2 PPS, under a day
    ["198.18.0.4", 2_000, 4, 22_501], // 0.25 PPS for 25 h: under 1 PPS, a day or more
    ["198.18.0.5", 60_000, 4.5, 134], // 0.22 PPS for 10 min: under 1 PPS, under an hour
    ["2001:db8::6", 70_000, 1, 51], // 1 PPS for 50 s: 1-2 PPS, under a minute
    ["198.18.0.7", 0.5, 2, 46_799], // 0.5 PPS since the servers started (the limit of observation)
  ];
  for (const [address, first, spacing, count] of bursters)
    senders.push(train(address, START + first, spacing, count, "burster"));
  for (const s of senders)
    if (s.times.at(-1)! >= END - 1) throw new Error(`${s.address} runs past the survey`);
  return senders;
}

/** The traffic spread at random over three MRU lists, and each list's snapshot. */
export function surveyedServers(senders: readonly Sender[]): Snapshot[] {
  const rnd = random(7);
  const events: [number, string][] = [];
  for (const s of senders) for (const t of s.times) events.push([t, s.address]);
  events.sort((x, y) => x[0] - y[0]);
  const lists = [0, 1, 2].map(() =>
    MruList.create({ maxEntries: 2000, maxAge: 1e9, hashSeed: 5 }, createRng(11)),
  );
  const received = [0, 0, 0];
  const keys = new Map<string, Uint32Array>();
  for (const [t, address] of events) {
    let key = keys.get(address);
    if (key === undefined) {
      key = addressKey(address)!;
      keys.set(address, key);
    }
    const server = Math.floor(rnd() * 3);
    received[server]!++;
    lists[server]!.touch(key, t, 3, 4, 123);
  }
  return lists.map((list, i) =>
    snapshotFromMru(list, {
      server: `ntp-${"abc"[i]}`,
      takenAt: END + 0.15 * i,
      startedAt: START,
      counters: {
        received: received[i]! + JUNK_PER_SERVER,
        served: received[i]!,
        kissed: 0,
        dropped: JUNK_PER_SERVER,
      },
    }),
  );
}
