// The reverse-DNS access lists (paper §10) against a real DNS server: dnsmasq, started here on loopback with
// PTR, A and AAAA records for test addresses (scripts/install-peers.sh installs it; without it these tests
// fail, they never skip). The addresses are documentation ranges used only as DNS data: no packet is sent
// to them.

import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { after, before, describe, test } from "node:test";
import { addressKey } from "../../src/defence/address-key.ts";
import {
  NAME_PENDING,
  NAME_UNKNOWN,
  NameGate,
  NC_REFUSED_BUSY,
  NC_REFUSED_RATE,
} from "../../src/defence/names-cache.ts";
import { NAME_ALLOW, NAME_DENY, type NameGateOptions } from "../../src/defence/names-rules.ts";
import {
  type NameLookupResult,
  NameResolver,
  type NameResolverOptions,
  reverseDnsName,
} from "../../src/server/name-resolver.ts";
import { type Dnsmasq, freeUdpPort, killAllPeers, reverseName, startDnsmasq } from "../helpers/peers.ts";

const RULES = [
  { suffix: "bad.mil", action: "deny" },
  { suffix: ".mil", action: "allow" },
];

let dns: Dnsmasq;

before(async () => {
  dns = await startDnsmasq({
    localDomains: ["in-addr.arpa", "ip6.arpa", "mil"],
    hostRecords: [
      { name: "good.mil", addresses: ["192.0.2.1"] },
      { name: "host.bad.mil", addresses: ["192.0.2.4"] },
      { name: "good6.mil", addresses: ["2001:db8::1"] },
    ],
    ptrRecords: [
      { address: "192.0.2.2", name: "x.mil" }, // claims x.mil, whose A record is another address
      { address: "192.0.2.5", name: "y.example" }, // a name the server cannot resolve (REFUSED)
      { address: "192.0.2.6", name: "fake.bad.mil" }, // two names: one forged,
      { address: "192.0.2.6", name: "real.mil" }, // one that points back
      { address: "2001:db8::2", name: "forged6.mil" },
    ],
    addressRecords: [
      { name: "x.mil", address: "192.0.2.99" },
      { name: "fake.bad.mil", address: "192.0.2.98" },
      { name: "real.mil", address: "192.0.2.6" },
      { name: "forged6.mil", address: "2001:db8::99" },
    ],
  });
});

after(async () => {
  await killAllPeers();
});

interface Rig {
  gate: NameGate;
  resolver: NameResolver;
  results: NameLookupResult[];
}

function rig(gateOptions: NameGateOptions = {}, resolverOptions: NameResolverOptions = {}): Rig {
  const gate = NameGate.create({
    rules: RULES,
    default: "deny",
    maxRate: 1000,
    cacheSize: 4096,
    ...gateOptions,
  });
  const results: NameLookupResult[] = [];
  const resolver = new NameResolver(gate, {
    servers: [dns.server],
    timeout: 2,
    onLookup: (r) => results.push(r),
    ...resolverOptions,
  });
  return { gate, resolver, results };
}

/** First packet, lookup, verdict: what check() says once the lookup has settled. */
async function verdictOf(r: Rig, address: string): Promise<number> {
  const key = addressKey(address)!;
  assert.equal(r.gate.check(key, Date.now()), NAME_PENDING, `${address}: first sight is pending`);
  r.resolver.kick();
  await r.resolver.idle();
  return r.gate.check(key, Date.now());
}

function resultFor(r: Rig, address: string): NameLookupResult {
  const found = r.results.find((x) => x.address === address);
  assert.ok(found, `a lookup of ${address} was made`);
  return found;
}

describe("verdicts from a real DNS server", () => {
  test("PTR names: in-addr.arpa for IPv4 and IPv4-mapped, nibbles under ip6.arpa for IPv6", () => {
    assert.equal(reverseDnsName(addressKey("192.0.2.1")!), "1.2.0.192.in-addr.arpa");
    assert.equal(reverseDnsName(addressKey("::ffff:198.51.100.200")!), "200.100.51.198.in-addr.arpa");
    assert.equal(
      reverseDnsName(addressKey("2001:db8::1")!),
      "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
    );
    // The test helper builds dnsmasq's records independently: both must agree.
    for (const a of ["192.0.2.6", "10.1.2.3", "2001:db8::2", "2001:db8:0:1:a:b:c:d", "fe80::1"]) {
      assert.equal(reverseDnsName(addressKey(a)!), reverseName(a), a);
    }
    assert.match(dns.output(), /started, version/);
  });

  test("a PTR name that points back is confirmed and judged by the first matching rule", async () => {
    const r = rig();
    assert.equal(await verdictOf(r, "192.0.2.1"), NAME_ALLOW);
    assert.equal(await verdictOf(r, "192.0.2.4"), NAME_DENY);
    assert.deepEqual(
      [resultFor(r, "192.0.2.1").outcome, resultFor(r, "192.0.2.1").name],
      ["confirmed", "good.mil"],
    );
    assert.deepEqual(
      [resultFor(r, "192.0.2.4").outcome, resultFor(r, "192.0.2.4").name],
      ["confirmed", "host.bad.mil"],
    );
    // The forward confirmation really asked the server.
    await dns.quiet();
    const a = dns.queries("A").map((q) => q.name);
    assert.ok(a.includes("good.mil") && a.includes("host.bad.mil"), a.join(" "));
    const s = r.resolver.stats();
    assert.equal(s.started, 2);
    assert.equal(s.confirmed, 2);
  });

  test("a forged PTR (its name's A record is another address) counts as no name", async () => {
    const r = rig();
    assert.equal(await verdictOf(r, "192.0.2.2"), NAME_DENY); // default deny, although x.mil is allowed
    const x = resultFor(r, "192.0.2.2");
    assert.equal(x.outcome, "forged");
    assert.equal(x.name, null);
    assert.deepEqual(x.ptr, ["x.mil"]);
    assert.equal(r.resolver.stats().forged, 1);
    await dns.quiet();
    assert.ok(dns.queries("A").some((q) => q.name === "x.mil"));
    // With default allow the forged address is allowed, by the default, not by the .mil rule.
    const open = rig({ default: "allow" });
    assert.equal(await verdictOf(open, "192.0.2.2"), NAME_ALLOW);
    assert.equal(resultFor(open, "192.0.2.2").outcome, "forged");
  });

  test("of two PTR names, the one that points back decides", async () => {
    const r = rig();
    assert.equal(await verdictOf(r, "192.0.2.6"), NAME_ALLOW);
    const x = resultFor(r, "192.0.2.6");
    assert.equal(x.name, "real.mil");
    assert.deepEqual([...x.ptr].sort(), ["fake.bad.mil", "real.mil"]);
  });

  test("no PTR record: the default action, for negative-ttl", async () => {
    const deny = rig({ negativeTtl: 60, ttl: 3600 });
    const before = Date.now();
    assert.equal(await verdictOf(deny, "192.0.2.3"), NAME_DENY);
    assert.equal(resultFor(deny, "192.0.2.3").outcome, "no-name");
    await dns.quiet();
    assert.ok(!dns.queries("A").some((q) => q.name.includes("192.0.2.3")));
    const allow = rig({ default: "allow" });
    assert.equal(await verdictOf(allow, "192.0.2.3"), NAME_ALLOW);
    // The negative TTL applies: still the verdict just before it runs out; a refresh is asked just after.
    const key = addressKey("192.0.2.3")!;
    assert.equal(deny.gate.check(key, before + 59_000), NAME_DENY);
    assert.equal(deny.gate.queued, 0);
    assert.equal(deny.gate.check(key, Date.now() + 60_001), NAME_DENY);
    assert.equal(deny.gate.queued, 1);
    await dns.quiet();
    const ptrBefore = dns.queries("PTR").filter((q) => q.name === reverseName("192.0.2.3")).length;
    deny.resolver.kick();
    await deny.resolver.idle();
    await dns.quiet();
    const ptrAfter = dns.queries("PTR").filter((q) => q.name === reverseName("192.0.2.3")).length;
    assert.equal(ptrAfter, ptrBefore + 1);
    assert.equal(deny.resolver.stats().started, 2);
  });

  test("a name the server refuses to resolve is a failure, not a forgery", async () => {
    const r = rig();
    assert.equal(await verdictOf(r, "192.0.2.5"), NAME_DENY);
    const x = resultFor(r, "192.0.2.5");
    assert.equal(x.outcome, "failed");
    assert.equal(x.error, "EREFUSED");
    assert.equal(r.resolver.stats().failed, 1);
  });

  test("IPv6: confirmed by AAAA, forged likewise", async () => {
    const r = rig();
    assert.equal(await verdictOf(r, "2001:db8::1"), NAME_ALLOW);
    assert.equal(resultFor(r, "2001:db8::1").name, "good6.mil");
    assert.equal(await verdictOf(r, "2001:db8::2"), NAME_DENY);
    assert.equal(resultFor(r, "2001:db8::2").outcome, "forged");
    await dns.quiet();
    assert.ok(dns.queries("AAAA").some((q) => q.name === "good6.mil"));
  });

  test("an IPv4-mapped IPv6 source is looked up as the IPv4 address", async () => {
    const r = rig();
    assert.equal(await verdictOf(r, "::ffff:192.0.2.1"), NAME_ALLOW);
    assert.equal(resultFor(r, "192.0.2.1").name, "good.mil");
  });
});

describe("limits", () => {
  /** n distinct random addresses of 10.0.0.0/8 (no PTR records: NXDOMAIN). */
  function randomSources(n: number): Uint32Array[] {
    const seen = new Set<number>();
    const out: Uint32Array[] = [];
    while (out.length < n) {
      const v = Math.floor(Math.random() * 0xffffff);
      if (seen.has(v)) continue;
      seen.add(v);
      out.push(addressKey(`10.${v >>> 16}.${(v >>> 8) & 255}.${v & 255}`)!);
    }
    return out;
  }

  function ptrQueriesUnder10(): number {
    return dns.queries("PTR").filter((q) => q.name.endsWith(".10.in-addr.arpa")).length;
  }

  test("rate: a burst of 1000 random sources makes max-rate lookups, no more", async () => {
    const r = rig({ maxRate: 5, maxConcurrent: 256 });
    await dns.quiet();
    const q0 = ptrQueriesUnder10();
    const now = Date.now();
    for (const k of randomSources(1000)) assert.equal(r.gate.check(k, now), NAME_PENDING);
    r.resolver.kick();
    await r.resolver.idle();
    await dns.quiet();
    const s = r.resolver.stats();
    assert.equal(s.started, 5);
    assert.equal(s.noName, 5);
    assert.equal(ptrQueriesUnder10() - q0, 5, "dnsmasq received 5 PTR queries");
    assert.equal(r.gate.counters[NC_REFUSED_RATE], 995);
    assert.equal(r.gate.size, 5);
  });

  test("concurrency: never more than max-concurrent lookups in flight, and every source is served in turn", async () => {
    const r = rig({ maxRate: 100_000, maxConcurrent: 3 });
    const sources = randomSources(200);
    await dns.quiet();
    const q0 = ptrQueriesUnder10();
    const deadline = Date.now() + 10_000;
    let unresolved = sources.length;
    while (unresolved > 0 && Date.now() < deadline) {
      unresolved = 0;
      for (const k of sources) if (r.gate.check(k, Date.now()) === NAME_PENDING) unresolved++;
      r.resolver.kick();
      await new Promise((res) => setTimeout(res, 1));
    }
    await r.resolver.idle();
    await dns.quiet();
    const s = r.resolver.stats();
    assert.equal(unresolved, 0, "every source got a verdict");
    assert.equal(s.maxInFlight, 3);
    assert.equal(s.started, 200);
    assert.equal(ptrQueriesUnder10() - q0, 200);
    assert.ok(r.gate.counters[NC_REFUSED_BUSY]! > 0);
  });

  test("timeout: a resolver that never answers costs at most `timeout`, and gives the default", async () => {
    const silent = createSocket("udp4");
    let received = 0;
    silent.on("message", () => received++);
    await new Promise<void>((res) => silent.bind(0, "127.0.0.1", () => res()));
    try {
      const r = rig({ default: "allow" }, { servers: [`127.0.0.1:${silent.address().port}`], timeout: 0.3 });
      const t0 = Date.now();
      assert.equal(await verdictOf(r, "192.0.2.1"), NAME_ALLOW);
      const elapsed = Date.now() - t0;
      const x = resultFor(r, "192.0.2.1");
      assert.equal(x.outcome, "timeout");
      assert.ok(elapsed >= 290 && elapsed < 1500, `took ${elapsed} ms`);
      assert.ok(received >= 1, "the query went to the configured address");
      assert.equal(r.resolver.stats().timedOut, 1);
      assert.equal(r.resolver.stats().inFlight, 0);
    } finally {
      silent.close();
    }
  });

  test("nothing listening at the resolver's address: a quick failure, the default verdict", async () => {
    const port = await freeUdpPort();
    const r = rig({}, { servers: [`127.0.0.1:${port}`], timeout: 2 });
    const t0 = Date.now();
    assert.equal(await verdictOf(r, "192.0.2.1"), NAME_DENY);
    const x = resultFor(r, "192.0.2.1");
    assert.equal(x.outcome, "failed");
    assert.equal(x.error, "ECONNREFUSED");
    assert.equal(r.resolver.stats().failed, 1);
    assert.ok(Date.now() - t0 < 2500);
    assert.equal(r.gate.pending, 0);
  });

  test("no rules: the gate is inactive and the resolver never asks", async () => {
    const gate = NameGate.create({});
    const resolver = new NameResolver(gate, { servers: [dns.server] });
    assert.equal(gate.active, false);
    resolver.kick();
    await resolver.idle();
    assert.equal(resolver.stats().started, 0);
  });

  test("close releases queued lookups and ignores late answers", async () => {
    const r = rig();
    const key = addressKey("192.0.2.1")!;
    const late = addressKey("192.0.2.4")!;
    r.gate.check(late, Date.now());
    r.resolver.pump(); // in flight
    r.gate.check(key, Date.now()); // queued, not started
    r.resolver.close();
    await r.resolver.idle();
    assert.equal(r.gate.peek(key), NAME_UNKNOWN);
    assert.equal(r.gate.peek(late), NAME_UNKNOWN);
    assert.equal(r.gate.pending, 0);
    assert.equal(r.results.length, 0);
  });
});
