// Access-list lookups (src/defence/acl.ts) with N random rules: build time, trie size, and lookups per
// second for IPv4 (mapped) and IPv6 keys, half of them inside some rule. Heap bytes per lookup are measured
// as the heap growth between two forced collections (0 means the lookup allocates nothing).
//
//   npx node --expose-gc bench/acl-lookup.ts [--rules 1000] [--lookups 5000000] [--seed 1]
import { parseArgs } from "node:util";
import { type AclRuleInput, parseAclRules } from "../src/defence/acl.ts";

const { values } = parseArgs({
  options: {
    rules: { type: "string", default: "1000" },
    lookups: { type: "string", default: "5000000" },
    seed: { type: "string", default: "1" },
  },
});
const ruleCount = Number(values.rules);
const lookups = Number(values.lookups);
const gc = (globalThis as { gc?: () => void }).gc;

// A small deterministic generator (xorshift32), so runs compare.
let s = Number(values.seed) >>> 0 || 1;
function rand(): number {
  s ^= s << 13;
  s >>>= 0;
  s ^= s >>> 17;
  s ^= s << 5;
  s >>>= 0;
  return s;
}
const below = (n: number) => rand() % n;

const mask = (w: number, bits: number) =>
  bits <= 0 ? 0 : bits >= 32 ? w : (w & (0xffffffff << (32 - bits))) >>> 0;
const hex = (w: number) => `${(w >>> 16).toString(16)}:${(w & 0xffff).toString(16)}`;

// Rules like an operator's: 60% IPv4 (/8 to /32), 40% IPv6 (mostly /32 to /64, some hosts).
const rules: AclRuleInput[] = [];
const prefixes: { w: number[]; len: number }[] = [];
const seen = new Set<string>();
while (rules.length < ruleCount) {
  let w: number[];
  let len: number;
  let address: string;
  if (below(10) < 6) {
    const n = 8 + below(25);
    w = [0, 0, 0xffff, mask(rand(), n)];
    len = 96 + n;
    const v = w[3]!;
    address = `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}/${n}`;
  } else {
    len = below(10) < 8 ? 32 + below(33) : 128;
    w = [0x20000000 | (rand() & 0x0fffffff), rand(), rand(), rand()];
    w = w.map((x, i) => mask(x, len - 32 * i));
    address = `${w.map(hex).join(":")}/${len}`;
  }
  if (seen.has(address)) continue;
  seen.add(address);
  rules.push({ address, flags: below(2) === 0 ? ["ignore"] : ["limited", "kod"] });
  prefixes.push({ w, len });
}

const t0 = process.hrtime.bigint();
const acl = parseAclRules(rules, ["limited"]);
const buildMs = Number(process.hrtime.bigint() - t0) / 1e6;

// Keys: half inside a random rule (host bits randomised), half anywhere.
function makeKeys(v4: boolean, n: number): Uint32Array[] {
  const out: Uint32Array[] = [];
  const pool = prefixes.filter((p) => (p.w[2] === 0xffff) === v4);
  for (let i = 0; i < n; i++) {
    const k = v4
      ? new Uint32Array([0, 0, 0xffff, rand()])
      : new Uint32Array([rand(), rand(), rand(), rand()]);
    const p = pool[below(pool.length)];
    if (i % 2 === 0 && p) {
      for (let j = 0; j < 4; j++) {
        const keep = Math.min(32, Math.max(0, p.len - 32 * j));
        const m = keep === 0 ? 0 : (0xffffffff << (32 - keep)) >>> 0;
        k[j] = ((p.w[j]! & m) | (k[j]! & ~m)) >>> 0;
      }
    }
    out.push(k);
  }
  return out;
}

function run(keys: Uint32Array[], count: number): number {
  let acc = 0;
  const n = keys.length;
  for (let i = 0; i < count; i++) acc += acl.lookup(keys[i % n]!);
  return acc;
}

function measure(keys: Uint32Array[]) {
  run(keys, 500_000); // let the JIT optimise first
  gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const start = process.hrtime.bigint();
  const acc = run(keys, lookups);
  const ns = Number(process.hrtime.bigint() - start);
  const heapAfter = process.memoryUsage().heapUsed;
  return {
    lookupsPerSecond: Math.round(lookups / (ns / 1e9)),
    nsPerLookup: +(ns / lookups).toFixed(1),
    heapBytesPerLookup: gc ? +((heapAfter - heapBefore) / lookups).toFixed(3) : null,
    checksum: acc,
  };
}

const result = {
  rules: ruleCount,
  buildMs: +buildMs.toFixed(1),
  trieNodes: acl.nodeCount,
  trieBytes: acl.byteLength,
  ipv4: measure(makeKeys(true, 4096)),
  ipv6: measure(makeKeys(false, 4096)),
};
process.stdout.write(`${JSON.stringify(result)}\n`);
if (!gc) process.stderr.write("(heap per lookup needs: npx node --expose-gc bench/acl-lookup.ts)\n");
