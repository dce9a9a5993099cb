// The engine on small populations: determinism for a seed, the decision core really deciding (call-gap,
// KoD, access list), loss and outages, and the survey snapshot of the simulated MRU lists.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { defaultConfig } from "../../src/config/index.ts";
import { R_SERVED_CLIENT, REASON_NAMES } from "../../src/core/reasons.ts";
import { formatAddressKey } from "../../src/defence/address-key.ts";
import { Simulation, type SimulationOptions } from "../../src/sim/engine.ts";
import { OUT_ANSWERED, Population, type PopulationContext } from "../../src/sim/population.ts";
import { Burstmakers, Elephants, MiceStream, NtpdClients } from "../../src/sim/populations/index.ts";
import { simConfig } from "../../src/sim/server-model.ts";
import { consolidate } from "../../src/survey/consolidate.ts";

function small(seed: number, extra: Partial<SimulationOptions> = {}) {
  const sim = new Simulation({
    seed,
    duration: 120,
    servers: 3,
    balancer: "random",
    config: defaultConfig(),
    ...extra,
  });
  sim.add(new MiceStream("mice", { count: 20_000, poll: 1024 }));
  sim.add(new Burstmakers("burstmakers", { scale: 0.2 }));
  sim.add(new Elephants("offender", { count: 2, rate: 5 }));
  return sim;
}

/** The parts of a result that must repeat exactly (everything but wall-clock times). */
function fingerprint(sim: Simulation) {
  const r = sim.run();
  return JSON.stringify({
    populations: r.populations,
    servers: r.serverResults,
    offered: Array.from(r.series.offered),
    caught: Array.from(r.series.caught),
    snapshot: sim.snapshots().map((s) => s.clients.slice(0, 50)),
  });
}

describe("Simulation", () => {
  it("is deterministic: the same seed gives the same run, packet for packet", () => {
    const a = fingerprint(small(11));
    const b = fingerprint(small(11));
    const c = fingerprint(small(12));
    assert.equal(a, b);
    assert.notEqual(a, c);
  });

  it("drives the real decision core: an elephant on one server is gapped and kissed, mice are served", () => {
    const sim = new Simulation({ seed: 1, duration: 60, config: defaultConfig() });
    sim.add(new MiceStream("mice", { count: 64_000, poll: 64 }));
    sim.add(new Elephants("fast", { count: 1, rate: 2 }));
    const r = sim.run();
    const mice = r.populations.find((p) => p.name === "mice")!;
    const fast = r.populations.find((p) => p.name === "fast")!;
    assert.equal(mice.answered, mice.sent);
    assert.equal(mice.caught, 0);
    assert.equal(mice.reasons["served_client"], mice.sent);
    // 2 PPS for 60 s: the first requests pass on the start-up allowance, then the call-gap catches the rest.
    assert.ok(fast.sent >= 115 && fast.sent <= 125, `sent ${fast.sent}`);
    assert.ok(fast.caught / fast.arrived > 0.85, `caught ${fast.caught} of ${fast.arrived}`);
    assert.ok((fast.kisses["RATE"] ?? 0) >= 8, `kisses ${JSON.stringify(fast.kisses)}`);
    // Every packet that reached the server has exactly one reason.
    const reasons = Object.values(fast.reasons).reduce((a, b) => a + b, 0);
    assert.equal(reasons, fast.arrived);
    assert.equal(fast.arrived, fast.sent);
  });

  it("loses requests and replies as told, and counts them", () => {
    const lossy = new Simulation({
      seed: 3,
      duration: 100,
      config: defaultConfig(),
      loss: { request: 0.3, reply: 0.2 },
    });
    lossy.add(new MiceStream("mice", { count: 10_000, poll: 100 }));
    const p = lossy.run().populations[0]!;
    assert.equal(p.sent, 10_000);
    const share = p.arrived / p.sent;
    assert.ok(share > 0.68 && share < 0.72, `arrived ${share}`);
    const answered = p.answered / p.sent;
    assert.ok(answered > 0.54 && answered < 0.58, `answered ${answered}`); // 0.7 * 0.8
    assert.equal(p.lost, p.sent - p.answered);
  });

  it("an outage cuts only the populations it names, only while it lasts", () => {
    // Clients at 1 PPS would be gapped: the call-gap is off here, to see the network alone.
    const noGap = simConfig({ callgap: { enabled: false } });
    const sim = new Simulation({
      seed: 5,
      duration: 30,
      config: noGap,
      binSeconds: 1,
      outages: [{ from: 10, to: 20, populations: ["cut"] }],
    });
    sim.add(new MiceStream("cut", { count: 100, poll: 1 }));
    sim.add(new MiceStream("kept", { count: 100, poll: 1 }));
    const r = sim.run();
    const cut = r.populations.find((p) => p.name === "cut")!;
    const kept = r.populations.find((p) => p.name === "kept")!;
    assert.equal(kept.answered, kept.sent);
    assert.equal(cut.lost, 1000);
    assert.equal(r.series.arrived[15], 100); // only "kept" arrives during the outage
    assert.equal(r.series.arrived[25], 200);
  });

  it("a reply-only outage lets requests in and keeps answers out (§3: the routers' own firewall)", () => {
    const sim = new Simulation({
      seed: 5,
      duration: 10,
      config: simConfig({ callgap: { enabled: false } }),
      outages: [{ from: 0, to: 10, direction: "reply" }],
    });
    sim.add(new MiceStream("m", { count: 10, poll: 1 }));
    const p = sim.run().populations[0]!;
    assert.equal(p.arrived, 100);
    assert.equal(p.answered, 0);
    assert.equal(p.reasons["served_client"], 100);
  });

  it("a server with a capacity answers at most that many a second and loses the rest at random", () => {
    // 2,000 PPS of mice at a server that answers 500 a second: three answers in four are lost, whoever asks.
    const sim = new Simulation({
      seed: 4,
      duration: 20,
      config: defaultConfig(),
      binSeconds: 1,
      capacity: 500,
    });
    sim.add(new MiceStream("a", { count: 10_000, poll: 10 }));
    sim.add(new MiceStream("b", { count: 10_000, poll: 10 }));
    const r = sim.run();
    for (let b = 1; b < 20; b++) {
      assert.ok(r.series.served[b]! <= 500 + 50, `second ${b}: ${r.series.served[b]} answered`);
      assert.ok(r.series.served[b]! >= 490, `second ${b}: ${r.series.served[b]} answered`);
    }
    for (const p of r.populations) {
      const share = p.answered / p.sent;
      assert.ok(share > 0.23 && share < 0.27, `${p.name} answered ${share}`);
      assert.equal(p.reasons["drop_capacity"], p.sent - p.answered);
      // The answered series counts what came back, per population and second.
      assert.equal(
        r.series.answeredPerPopulation[p.name]!.reduce((x, y) => x + y, 0),
        p.answered,
      );
    }
    assert.equal(r.serverResults[0]!.reasons["drop_capacity"], sim.servers[0]!.overCapacity);
    // Without a capacity, everything is answered and the reason never appears.
    const free = new Simulation({ seed: 4, duration: 20, config: defaultConfig() });
    free.add(new MiceStream("a", { count: 10_000, poll: 10 }));
    const p = free.run().populations[0]!;
    assert.equal(p.answered, p.sent);
    assert.equal(p.reasons["drop_capacity"], undefined);
    assert.throws(
      () => new Simulation({ seed: 1, duration: 1, config: defaultConfig(), capacity: -1 }),
      /capacity/,
    );
  });

  it("clients that obey an RSTR kiss stop; those that ignore it go on", () => {
    const config = simConfig({ acl: { rule: [{ address: "16.0.0.0/8", flags: ["noserve", "kod"] }] } });
    const sim = new Simulation({ seed: 2, duration: 600, config, servers: 1 });
    sim.add(new NtpdClients("obeying", { count: 50, minPoll: 16, obeyKod: true }));
    sim.add(new Elephants("ignoring", { count: 5, rate: 0.1, obeyKod: false }));
    const r = sim.run();
    const obey = r.populations.find((p) => p.name === "obeying")!;
    const ignore = r.populations.find((p) => p.name === "ignoring")!;
    assert.equal(obey.sent, 50, "each obedient client sent once and stopped");
    assert.equal(obey.kisses["RSTR"], 50);
    assert.ok(ignore.sent >= 280, `ignoring clients went on: ${ignore.sent}`);
  });

  it("shoots the elephants with the blocklist when the configuration enables it (§11)", () => {
    const config = simConfig({ blocklist: { enabled: true, afterKods: 3 }, callgap: { leak: 0 } });
    const sim = new Simulation({ seed: 1, duration: 120, config });
    sim.add(new Elephants("deaf", { count: 4, rate: 2 }));
    sim.add(new MiceStream("mice", { count: 1000, poll: 64 }));
    const r = sim.run();
    const deaf = r.populations.find((p) => p.name === "deaf")!;
    assert.equal(r.serverResults[0]!.blocked, 4);
    assert.ok(deaf.reasons["drop_blocklisted"]! > 150, JSON.stringify(deaf.reasons));
    assert.equal(deaf.kisses["RATE"], 12, "three kisses each, then silence");
    assert.equal(r.populations.find((p) => p.name === "mice")!.caught, 0);
  });

  it("snapshots the simulated MRU lists in the survey's format, and the survey consolidates them", () => {
    const sim = small(21);
    sim.run();
    const snaps = sim.snapshots();
    assert.equal(snaps.length, 3);
    for (const s of snaps) {
      assert.equal(s.format, 1);
      assert.equal(s.clients.length, s.mru.size);
      assert.ok(s.counters.received > 0);
      assert.ok(s.takenAt >= s.startedAt);
      for (let i = 1; i < s.clients.length; i++)
        assert.ok(s.clients[i - 1]!.lastSeen >= s.clients[i]!.lastSeen);
    }
    const survey = consolidate(snaps);
    assert.ok(survey.clients > 0);
    assert.ok(survey.bursters.clients > 0, "the burstmakers are found");
  });

  it("refuses a client that does not move time forward, and populations after the start", () => {
    class Stuck extends Population {
      readonly description = "stuck";
      readonly slots = 1;
      readonly addresses = 1;
      params() {
        return {};
      }
      start(ctx: PopulationContext) {
        ctx.schedule(0, 1);
      }
      emit() {
        this.outAddr = this.addrBase;
        return true;
      }
      react(_slot: number, t: number, outcome: number) {
        assert.equal(outcome, OUT_ANSWERED);
        return t;
      }
    }
    const sim = new Simulation({ seed: 1, duration: 10, config: defaultConfig() });
    sim.add(new Stuck("stuck"));
    assert.throws(() => sim.run(), /not later/);
    assert.throws(() => sim.add(new Stuck("late")), /before run/);
  });

  it("gives each population its own addresses", () => {
    const sim = new Simulation({ seed: 1, duration: 5, config: defaultConfig() });
    const a = new MiceStream("a", { count: 70_000, poll: 1000 });
    const b = new MiceStream("b", { count: 10, poll: 1 });
    sim.add(a).add(b);
    assert.equal(formatAddressKey([0, 0, 0xffff, a.addrBase]), "16.0.0.0");
    assert.equal(formatAddressKey([0, 0, 0xffff, b.addrBase]), "16.2.0.0");
    assert.equal(REASON_NAMES[R_SERVED_CLIENT], "served_client");
  });
});
