// The decision core's hot path alone, without sockets: decide + writeReply + stampTransmit on a request
// buffer, N times. Prints nanoseconds per packet and heap bytes allocated per packet (measured as the heap
// growth between two forced collections with no collection in between; 0 means the path allocates nothing).
//
//   npx node --expose-gc bench/core-hotpath.ts [--packets N]
import { parseArgs } from "node:util";
import { decide, stampTransmit, writeReply } from "../src/core/decide.ts";
import { isServed } from "../src/core/reasons.ts";
import type { ServeState } from "../src/core/serve-state.ts";

const { values } = parseArgs({ options: { packets: { type: "string", default: "2000000" } } });
const n = Number(values.packets);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  process.stderr.write("run with: npx node --expose-gc bench/core-hotpath.ts\n");
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
const request = Buffer.alloc(48);
const buf = Buffer.alloc(48);
request[0] = 0x23;
request[2] = 6;

function run(count: number, t0: number): number {
  let served = 0;
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < 48; j++) buf[j] = request[j]!;
    buf[47] = i & 0xff;
    const r = decide(buf, 48, state);
    if (isServed(r)) {
      writeReply(buf, r, t0 + i * 0.001, state);
      stampTransmit(buf, t0 + i * 0.001 + 0.0005);
      served++;
    }
  }
  return served;
}

run(200_000, Date.now()); // warm up: let the JIT optimise before measuring
gc();
const heapBefore = process.memoryUsage().heapUsed;
const start = process.hrtime.bigint();
const served = run(n, Date.now());
const elapsedNs = Number(process.hrtime.bigint() - start);
const heapAfter = process.memoryUsage().heapUsed;
const result = {
  packets: n,
  served,
  nsPerPacket: +(elapsedNs / n).toFixed(1),
  packetsPerSecond: Math.round(n / (elapsedNs / 1e9)),
  heapBytesPerPacket: +((heapAfter - heapBefore) / n).toFixed(3),
};
process.stdout.write(`${JSON.stringify(result)}\n`);
