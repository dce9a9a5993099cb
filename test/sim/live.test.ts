// The live load generator against a real ntpshield over loopback: it refuses anything but 127/8, stays
// within its bounds, and what the real server does to each population agrees in direction (and roughly in
// size) with what the simulator says the same decision code does to the same clients.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { parseConfig } from "../../src/config/index.ts";
import { type LiveResult, type LoadError, parseTarget, runLive, simulateLive } from "../../src/sim/live.ts";
import { Elephants } from "../../src/sim/populations/index.ts";
import { SCENARIOS } from "../../src/sim/scenarios/index.ts";
import { freeUdpPort, type Ntpshield, startNtpshield } from "../helpers/peers.ts";

describe("parseTarget", () => {
  it("accepts 127/8 with a port", () => {
    assert.deepEqual(parseTarget("127.0.0.1:11123"), { host: "127.0.0.1", port: 11123, address: 0x7f000001 });
    assert.equal(parseTarget("127.9.8.7:1").address, 0x7f090807);
  });

  it("refuses every other address, IPv6 loopback included, naming the reason", () => {
    for (const t of ["10.0.0.1:123", "192.0.2.1:123", "0.0.0.0:123", "255.255.255.255:123"]) {
      assert.throws(
        () => parseTarget(t),
        (e: LoadError) => e.code === "ERR_LOAD_NOT_LOOPBACK" && /only loopback/.test(e.message),
      );
    }
    for (const t of ["[::1]:123", "localhost:123"]) {
      assert.throws(
        () => parseTarget(t),
        (e: LoadError) => e.code === "ERR_LOAD_NOT_LOOPBACK",
      );
    }
    for (const t of ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "example.com:123", "127.0.0.01:5"]) {
      assert.throws(
        () => parseTarget(t),
        (e: LoadError) => e.code === "ERR_LOAD_TARGET",
        t,
      );
    }
  });
});

describe("runLive bounds", () => {
  const plan = () => ({
    description: "",
    populations: [new Elephants("e", { count: 2, rate: 50 })],
    replyBlocked: [],
  });

  it("refuses a target inside the clients' own addresses, too long a run, too many clients", async () => {
    await assert.rejects(
      runLive({ target: parseTarget("127.1.0.9:123"), plan: plan(), duration: 1, seed: 1 }),
      (e: LoadError) => e.code === "ERR_LOAD_TARGET",
    );
    await assert.rejects(
      runLive({ target: parseTarget("127.0.0.1:123"), plan: plan(), duration: 3601, seed: 1 }),
      (e: LoadError) => e.code === "ERR_LOAD_LIMIT",
    );
    await assert.rejects(
      runLive({ target: parseTarget("127.0.0.1:123"), plan: plan(), duration: 1, seed: 1, maxSockets: 1 }),
      (e: LoadError) => e.code === "ERR_LOAD_LIMIT",
    );
  });

  it("stops at max-packets, and counts nothing back from a port nobody serves", async () => {
    const port = await freeUdpPort();
    const r = await runLive({
      target: parseTarget(`127.0.0.1:${port}`),
      plan: plan(),
      duration: 5,
      seed: 1,
      maxPackets: 30,
    });
    assert.equal(r.stoppedBy, "max-packets");
    assert.equal(r.packets, 30);
    const p = r.populations[0]!;
    assert.equal(p.sent, 30);
    assert.equal(p.nothing, 30);
    assert.equal(p.addresses, 2);
    assert.ok(r.wallMs < 4000, `took ${r.wallMs} ms`);
  });
});

/** The server and the simulation of the live test: the call-gap without its leak. */
const STRICT = "[callgap]\nleak = 0\n";

describe("live mode against a real ntpshield", () => {
  let server: Ntpshield;
  let port: number;
  before(async () => {
    port = await freeUdpPort();
    // leak = 0 on both sides: with the fast allowance (3) both the 2 PPS elephants and the 14 PPS offender are
    // gapped by Rule 1 after their first requests, and a leak answering a quarter of the rest at random would
    // blur the difference this test compares (the leak itself is tested in test/integration/defences.test.ts).
    server = await startNtpshield({ listen: [`127.0.0.1:${port}`], configToml: STRICT });
  });
  after(async () => {
    await server?.stop();
  });

  it("agrees in direction with the simulation of the same clients (balancer plan)", async () => {
    const duration = 8;
    const live: LiveResult = await runLive({
      target: parseTarget(`127.0.0.1:${port}`),
      plan: SCENARIOS["balancer"]!.live(1),
      duration,
      seed: 3,
    });
    const sim = simulateLive(SCENARIOS["balancer"]!.live(1), 3, duration, parseConfig(STRICT), live.startMs);
    const share = (p: { answered: number; sent: number }) => p.answered / p.sent;
    const get = (name: string) => ({
      live: live.populations.find((p) => p.name === name)!,
      sim: sim.populations.find((p) => p.name === name)!,
    });
    const mice = get("mice");
    const offender = get("offender");
    const elephants = get("elephants");
    const detail = JSON.stringify({
      live: live.populations,
      sim: sim.populations.map((p) => [p.name, p.sent, p.answered, p.kissed]),
    });
    // Many distinct source addresses reached the server.
    assert.equal(mice.live.addresses, 40, detail);
    // Mice are served, in both.
    assert.ok(share(mice.live) >= 0.95 && share(mice.sim) >= 0.95, detail);
    // The 14 PPS offender is mostly refused and kissed with RATE, in both.
    for (const side of [offender.live, offender.sim]) {
      assert.ok(share(side) < 0.5, `offender answered ${share(side)}: ${detail}`);
      assert.ok((side.kisses["RATE"] ?? 0) >= 1, detail);
    }
    // Elephants at 2 PPS are answered less than mice and more than the offender, in both.
    for (const [e, o, m] of [
      [elephants.live, offender.live, mice.live],
      [elephants.sim, offender.sim, mice.sim],
    ] as const) {
      assert.ok(share(e) < share(m) && share(e) > share(o), detail);
    }
    // And not only the direction: the shares are close.
    for (const g of [offender, elephants]) {
      assert.ok(Math.abs(share(g.live) - share(g.sim)) < 0.2, detail);
      assert.ok(Math.abs(g.live.sent - g.sim.sent) <= 0.1 * g.sim.sent + 2, detail);
    }
  });
});
