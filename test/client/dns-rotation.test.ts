// DNS rotation (paper §7): a name with several A and AAAA records served by a real dnsmasq on loopback.
// Across runs the client library asks the DNS every time and spreads its choice over every address the
// name has, both families; no address is kept or built in (test/client/no-hardcoded.test.ts checks the
// code for literals).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { dnsResolver } from "../../src/client/dns.ts";
import { queryServer } from "../../src/client/query.ts";
import { type Dnsmasq, killAllPeers, startDnsmasq } from "../helpers/peers.ts";

const NAME = "pool.fleet.test";
const V4 = ["127.0.50.61", "127.0.50.62", "127.0.50.63", "127.0.50.64"];
// Documentation addresses: chosen, never reached (the exchange fails at once or times out, which is fine:
// the choice is what is looked at).
const V6 = ["2001:db8::61", "2001:db8::62"];
const RUNS = 90;

describe("a name that rotates over several addresses", () => {
  let dns: Dnsmasq;
  before(async () => {
    dns = await startDnsmasq({
      host: "127.0.50.60",
      // One record a line: dnsmasq keeps one address per family of a single --host-record.
      hostRecords: [...V4, ...V6].map((a) => ({ name: NAME, addresses: [a] })),
      localDomains: ["fleet.test"],
    });
  });
  after(async () => {
    await dns?.stop();
    await killAllPeers();
  });

  it("the resolver returns every record of both families", async () => {
    const all = await dnsResolver([dns.server])(NAME);
    assert.deepEqual(all.map((a) => a.address).sort(), [...V4, ...V6].sort());
    assert.deepEqual(all.map((a) => a.family).sort(), [4, 4, 4, 4, 6, 6]);
  });

  it(`over ${RUNS} runs the client chooses every address, each time after asking the DNS again`, async () => {
    await dns.quiet();
    const before = dns.queries("A").filter((q) => q.name === NAME).length;
    const resolver = dnsResolver([dns.server]);
    const chosen = new Map<string, number>();
    for (let i = 0; i < RUNS; i++) {
      const r = await queryServer({ host: NAME, port: 123 }, { resolver, timeout: 0.05 });
      assert.deepEqual(r.addresses.slice().sort(), [...V4, ...V6].sort(), "every address considered");
      assert.ok(r.address !== undefined);
      chosen.set(r.address, (chosen.get(r.address) ?? 0) + 1);
    }
    assert.deepEqual([...chosen.keys()].sort(), [...V4, ...V6].sort(), `chosen: ${[...chosen].join(" ")}`);
    // Spread, not stuck: no address takes more than half the runs (each expects a sixth: 15).
    for (const [a, n] of chosen) assert.ok(n <= RUNS / 2, `${a} chosen ${n} times`);
    await dns.quiet();
    const asked = dns.queries("A").filter((q) => q.name === NAME).length - before;
    assert.ok(asked >= RUNS, `the name resolved at every run: ${asked} A queries for ${RUNS} runs`);
  });
});
