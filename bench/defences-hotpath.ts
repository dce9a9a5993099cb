// The whole decision pipeline (src/core/defences.ts) without sockets, in the cases that cost differently:
//
//   core        decide + writeReply alone (no defences): the floor
//   new-client  every packet from a new address, defaults: the MRU list fills, then recycles or samples on
//               every packet (the benchmark's and a spoofed flood's shape: the worst case for the list)
//   repeat      10,000 clients polling every 64 s: MRU hits, call-gap passes
//   elephants   1,000 clients asking 10 times a second: call-gap, KoD limiter, drops
//   acl-1000    new-client with 1,000 access rules (IPv4 /24s and IPv6 /48s) on top
//   ipv6-roam   10,000 IPv6 hosts polling every 64 s, each from a new address of its /64 every time: the
//               source masked to its /64 ([mru] ipv6-prefix) on every packet, MRU hits
//
// Prints one JSON line per case: nanoseconds per packet, heap growth per packet over the measured run, and
// the garbage collections that happened during it (none: the path allocated too little to fill even the
// young generation, i.e. nothing per packet).
//
//   npx node --expose-gc bench/defences-hotpath.ts [--packets N]

import { PerformanceObserver } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { parseConfig } from "../src/config/index.ts";
import { decide, stampTransmitAt, writeReplyAt } from "../src/core/decide.ts";
import { Defences } from "../src/core/defences.ts";
import { REASON_NAMES, REASON_RESPONSE, RESPONSE_SERVED } from "../src/core/reasons.ts";
import type { ServeState } from "../src/core/serve-state.ts";
import { createRng } from "../src/defence/random.ts";

const { values } = parseArgs({ options: { packets: { type: "string", default: "2000000" } } });
const n = Number(values.packets);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  process.stderr.write("run with: npx node --expose-gc bench/defences-hotpath.ts\n");
  process.exit(2);
}

const state: ServeState = {
  leap: 0,
  stratum: 2,
  precision: -20,
  rootDelay: 0.01,
  rootDispersion: 0.02,
  dispersionRate: 15e-6,
  refId: 0x7f000001,
  refTimeMs: Date.now() - 1000,
  offsetMs: 0,
  answerSymmetric: true,
};
const request = new Uint8Array(48);
request[0] = 0x23;
request[2] = 6;
const buf = new Uint8Array(48);
const key = new Uint32Array(4);
const tx = new Float64Array(1);
key[2] = 0xffff;

/** `rules` access rules that the sources below (10.0.0.0 and up) never match: IPv4 /24s and IPv6 /48s. */
function aclToml(rules: number): string {
  const lines = ["[acl]", 'default = ["limited", "kod"]'];
  for (let i = 0; i < rules; i++) {
    const v6 = ((i * 7919) % 65536).toString(16);
    const addr =
      i % 2 === 0
        ? `${20 + ((i * 37) % 100)}.${(i * 101) % 256}.${(i * 13) % 256}.0/24`
        : `2001:db8:${v6}::/48`;
    lines.push("[[acl.rule]]", `address = "${addr}"`, 'flags = ["limited"]');
  }
  return `${lines.join("\n")}\n`;
}

type Source = (i: number) => void; // sets the source address (key[3], or all four words) of packet i

interface Case {
  name: string;
  toml: string;
  source: Source;
  /** Packets per simulated second. */
  rate: number;
  plain?: boolean;
}

const T0 = Date.now();
const cases: Case[] = [
  {
    name: "core",
    toml: "",
    rate: 100_000,
    plain: true,
    source: (i) => {
      key[3] = 0x0a000000 + i;
    },
  },
  {
    name: "new-client",
    toml: "",
    rate: 100_000,
    source: (i) => {
      key[3] = 0x0a000000 + i;
    },
  },
  // The same without overload control: its cost on the path every answered request takes.
  {
    name: "new-client-no-overload",
    toml: "[overload]\nenabled = false\n",
    rate: 100_000,
    source: (i) => {
      key[3] = 0x0a000000 + i;
    },
  },
  // Past a redline of 10,000/s: a flood of newcomers, most of it withheld by pool.
  {
    name: "overload-withholding",
    toml: "[overload]\nredline = 10000\n",
    rate: 100_000,
    source: (i) => {
      key[3] = 0x0a000000 + i;
    },
  },
  // 10,000 clients, each once per 64 s: 156 packets per simulated second.
  {
    name: "repeat",
    toml: "",
    rate: 10_000 / 64,
    source: (i) => {
      key[3] = 0x0b000000 + (i % 10_000);
    },
  },
  {
    name: "elephants",
    toml: "",
    rate: 10_000,
    source: (i) => {
      key[3] = 0x0c000000 + (i % 1000);
    },
  },
  {
    name: "acl-1000",
    toml: aclToml(1000),
    rate: 100_000,
    source: (i) => {
      key[3] = 0x0a000000 + i;
    },
  },
  // Last: it writes all four words. 2001:db8:0:N::/64 for N < 10,000, the low 64 bits new every packet.
  {
    name: "ipv6-roam",
    toml: "",
    rate: 10_000 / 64,
    source: (i) => {
      key[0] = 0x20010db8;
      key[1] = i % 10_000;
      key[2] = i ^ 0x5a5a5a5a;
      key[3] = i;
    },
  },
];

function runCase(c: Case, d: Defences, count: number, offset: number): Map<number, number> {
  const reasons = new Float64Array(REASON_NAMES.length);
  for (let i = 0; i < count; i++) {
    const p = offset + i;
    for (let j = 0; j < 48; j++) buf[j] = request[j]!;
    buf[47] = p & 0xff;
    c.source(p);
    // Times travel in typed arrays, as in the server (see Defences#decideNow).
    d.time[0] = T0 + (p / c.rate) * 1000;
    let r: number;
    if (c.plain) {
      r = decide(buf, 48, state);
      if (REASON_RESPONSE[r] === RESPONSE_SERVED) writeReplyAt(buf, d.time, state);
    } else {
      r = d.decideNow(buf, 48, key, 123, state);
    }
    if (REASON_RESPONSE[r] === RESPONSE_SERVED) {
      tx[0] = d.time[0]! + 0.01;
      stampTransmitAt(buf, tx);
    }
    reasons[r]!++;
  }
  const out = new Map<number, number>();
  reasons.forEach((v, r) => {
    if (v > 0) out.set(r, v);
  });
  return out;
}

// Garbage collections during the measured run: a path that allocates nothing triggers none.
let collections = 0;
new PerformanceObserver((list) => {
  collections += list.getEntries().length;
}).observe({ entryTypes: ["gc"] });
const settle = () => new Promise((r) => setImmediate(r));

for (const c of cases) {
  const d = Defences.fromConfig(parseConfig(c.toml), { rng: createRng(1) });
  runCase(c, d, 300_000, 0); // warm up: let the JIT optimise before measuring
  gc();
  await settle();
  collections = 0;
  const heapBefore = process.memoryUsage().heapUsed;
  const start = process.hrtime.bigint();
  const reasons = runCase(c, d, n, 300_000);
  const elapsedNs = Number(process.hrtime.bigint() - start);
  const heapAfter = process.memoryUsage().heapUsed;
  await settle();
  const gcs = collections;
  const mix = Object.fromEntries([...reasons].map(([r, v]) => [REASON_NAMES[r], +(v / n).toFixed(4)]));
  process.stdout.write(
    `${JSON.stringify({
      case: c.name,
      packets: n,
      nsPerPacket: +(elapsedNs / n).toFixed(1),
      packetsPerSecond: Math.round(n / (elapsedNs / 1e9)),
      heapBytesPerPacket: +((heapAfter - heapBefore) / n).toFixed(3),
      gcDuringRun: gcs,
      mru: c.plain ? undefined : d.mru.stats().size,
      reasons: mix,
    })}\n`,
  );
}
