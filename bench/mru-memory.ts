// Memory and speed of the MRU list (src/defence/mru.ts) at one million records.
//
//   npx node bench/mru-memory.ts [records]
//
// Prints the shared buffer's size and bytes per record, the process's memory before and after filling it,
// the cost per packet (address parsed from its string as the server gets it, masked to the client's prefix
// as the decision core does with the default [mru] prefixes (IPv4 /32: no copy; IPv6 /64), touch, the last
// source noted in the record, call-gap, under the lock), and the minor garbage collections during the hits.
// The list, the parser, the mask and the call-gap allocate
// nothing; what remains is V8 boxing the double `now` passed to touchLocked (16 bytes a packet), which
// `--max-semi-space-size=1` makes visible as a few minor GCs per 200,000 packets.

import { constants, type PerformanceEntry, PerformanceObserver } from "node:perf_hooks";
import { isIPv4Key, KEY_BITS, maskKey, parseAddressKey } from "../src/defence/address-key.ts";
import { callGap, createCallGap } from "../src/defence/callgap.ts";
import { MRU_RECORD_BYTES, MruList, mruBufferBytes } from "../src/defence/mru.ts";
import { createRng } from "../src/defence/random.ts";

const records = Number(process.argv[2] ?? 1_000_000);
const MB = 1024 * 1024;
const fmt = (bytes: number) => `${(bytes / MB).toFixed(1)} MiB`;

// Addresses as Node hands them in rinfo.address: flat strings, here half IPv4, half IPv6 (each in a /64 of
// its own, so that every address is a client).
const addresses: string[] = [];
for (let i = 0; i < records; i++) {
  const text =
    i % 2 === 0
      ? `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`
      : `2001:db8:${(i >>> 16).toString(16)}:${(i & 0xffff).toString(16)}::1`;
  addresses.push(Buffer.from(text, "latin1").toString("latin1"));
}

const before = process.memoryUsage();
const list = MruList.create({ maxEntries: records, maxMemory: 1024 * MB, maxAge: 1e9 }, createRng(1));
const filledAt = process.memoryUsage();
const key = new Uint32Array(4);
const client = new Uint32Array(4);
const cfg = createCallGap();
const rng = createRng(2);

/** One packet from every address, `spacing` seconds apart; returns ns per packet. */
function pass(t0: number, withCallGap: boolean): number {
  const start = performance.now();
  for (let i = 0; i < records; i++) {
    parseAddressKey(addresses[i]!, key);
    const bits = isIPv4Key(key) ? KEY_BITS : 64;
    let k = key;
    if (bits < KEY_BITS) {
      maskKey(key, bits, client);
      k = client;
    }
    list.lock();
    const r = list.touchLocked(k, t0 + i * 1e-6, 3, 4, 123);
    if (r >= 0) list.noteSourceLocked(r, key, bits);
    if (withCallGap) callGap(cfg, list, r, rng);
    list.unlock();
  }
  return ((performance.now() - start) * 1e6) / records;
}

const MINOR_GC = constants.NODE_PERFORMANCE_GC_MINOR;
let minorGcs = 0;
const observer = new PerformanceObserver((items) => {
  for (const e of items.getEntries()) {
    if ((e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === MINOR_GC) minorGcs++;
  }
});
observer.observe({ entryTypes: ["gc"] });

const row = (label: string, ns: number) => console.log(`${label.padEnd(40)} ${ns.toFixed(0)} ns per packet`);
row("fill (new records): parse + mask + touch", pass(1000, false));
const filled = process.memoryUsage();
pass(2000, false); // warm
row("hits: parse + mask + touch", pass(3000, false));
pass(4000, true); // warm
await new Promise((r) => setTimeout(r, 10));
minorGcs = 0;
row("hits: parse + mask + touch + call-gap", pass(5000, true));
await new Promise((r) => setTimeout(r, 10));
observer.disconnect();

const s = list.stats();
console.log();
console.log(`records                  ${s.size} (capacity ${s.capacity})`);
console.log(`record fields            ${MRU_RECORD_BYTES} bytes`);
console.log(`shared buffer            ${s.bufferBytes} bytes = ${fmt(s.bufferBytes)}`);
console.log(
  `bytes per record         ${(s.bufferBytes / s.capacity).toFixed(1)} (fields + hash buckets + header)`,
);
console.log(`1,000,000 records        ${fmt(mruBufferBytes(1_000_000))}`);
console.log(`process arrayBuffers     +${fmt(filledAt.arrayBuffers - before.arrayBuffers)} on creation`);
console.log(`process rss              +${fmt(filled.rss - before.rss)} after filling`);
console.log(`minor GCs in ${records} hits with call-gap: ${minorGcs}`);
