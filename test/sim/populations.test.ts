// Each population behaves as the paper describes it, checked through the engine on small runs: ntpd mice
// poll 64 s rising to 1,024 s and obey KoD; cron scripts fire on the hour (or staggered); burstmakers follow
// §5's mix; defective routers retry every second while unanswered, fixed ones back off; a firewall's hosts
// share one address; elephants obey or ignore kisses.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { defaultConfig } from "../../src/config/index.ts";
import { DEFAULT_START_MS, Simulation } from "../../src/sim/engine.ts";
import {
  apportion,
  Burstmakers,
  Elephants,
  firewall,
  MiceStream,
  NtpdClients,
  PAPER_BURST_MIX,
  Routers,
  SntpScripts,
} from "../../src/sim/populations/index.ts";
import { simConfig } from "../../src/sim/server-model.ts";

const noGap = () => simConfig({ callgap: { enabled: false } });

describe("MiceStream (settled ntpd clients)", () => {
  it("sends count/poll packets per second, each client once per poll, from its own address", () => {
    const sim = new Simulation({ seed: 1, duration: 100, config: defaultConfig(), binSeconds: 10 });
    const mice = new MiceStream("mice", { count: 5000, poll: 50 });
    sim.add(mice);
    const r = sim.run();
    assert.equal(r.populations[0]!.sent, 10_000);
    for (const v of r.series.offered) assert.ok(v >= 990 && v <= 1010, `bin ${v}`);
    const snap = sim.snapshots()[0]!;
    const counts = new Map(snap.clients.map((c) => [c.address, c.count]));
    assert.equal(counts.size, 5000);
    for (const c of snap.clients) {
      assert.equal(c.count, 2);
      assert.ok(Math.abs(c.avgInterval - 50) < 1e-6, `interval ${c.avgInterval}`);
    }
  });
});

describe("NtpdClients (ntpd mice)", () => {
  it("start at 64 s and rise to 1,024 s", () => {
    const sim = new Simulation({ seed: 1, duration: 40_000, config: defaultConfig() });
    sim.add(new NtpdClients("mice", { count: 20, jitter: 0 }));
    sim.run();
    const snap = sim.snapshots()[0]!;
    assert.equal(snap.clients.length, 20);
    for (const c of snap.clients) {
      // 8 polls at each of 64, 128, 256 and 512 s (7,680 s), then 1,024 s until the end: about 32 + 31.
      assert.ok(Math.abs(c.avgInterval - 1024) < 30, `avg ${c.avgInterval}`);
      assert.ok(c.count >= 60 && c.count <= 67, `count ${c.count}`);
    }
  });

  it("settled ones start at polls of 64 to 1,024 s, every step as likely, each within its own poll", () => {
    const sim = new Simulation({ seed: 1, duration: 2100, config: defaultConfig(), binSeconds: 1 });
    sim.add(new NtpdClients("mice", { count: 5000, settled: true }));
    const r = sim.run();
    const snap = sim.snapshots()[0]!;
    // Every client has polled at least twice by 2,100 s (1,024 s at most, 5% jitter).
    assert.equal(snap.clients.length, 5000);
    assert.ok(snap.clients.every((c) => c.count >= 2));
    // Their first intervals: a fifth of them at each of 64, 128, 256, 512 and 1,024 s.
    const first = new Map<number, number>();
    for (const c of snap.clients.filter((x) => x.count === 2)) {
      const step = 2 ** Math.round(Math.log2(c.avgInterval));
      first.set(step, (first.get(step) ?? 0) + 1);
    }
    assert.ok((first.get(1024) ?? 0) > 800, JSON.stringify([...first]));
    // No wave of load as they step up together: the rate over the last ten minutes is steady.
    const late = Array.from(r.series.offered.subarray(1500, 2100));
    const minute = (i: number) => late.slice(i * 60, i * 60 + 60).reduce((a, b) => a + b, 0);
    const minutes = Array.from({ length: 10 }, (_, i) => minute(i));
    assert.ok(Math.max(...minutes) < 1.5 * Math.min(...minutes), `per minute ${minutes}`);
  });

  it("back off when unanswered", () => {
    const sim = new Simulation({
      seed: 1,
      duration: 3000,
      config: defaultConfig(),
      outages: [{ from: 0, to: 3000 }],
    });
    sim.add(new NtpdClients("mice", { count: 10, jitter: 0, startWithin: 1 }));
    const p = sim.run().populations[0]!;
    // Without back-off: 3000 / 64 = 47 each. With it (4 misses a step): 4 at 64, 4 at 128, 4 at 256, ...
    assert.ok(p.sent / 10 <= 18, `sent ${p.sent / 10} each`);
  });

  it("slow down on RATE: a client polling too fast is kissed and backs off", () => {
    const sim = new Simulation({ seed: 1, duration: 600, config: simConfig({ callgap: { leak: 0 } }) });
    sim.add(new NtpdClients("eager", { count: 5, minPoll: 1, maxPoll: 1, jitter: 0, obeyKod: true }));
    sim.add(new NtpdClients("deaf", { count: 5, minPoll: 1, maxPoll: 1, jitter: 0, obeyKod: false }));
    const r = sim.run();
    const eager = r.populations.find((p) => p.name === "eager")!;
    const deaf = r.populations.find((p) => p.name === "deaf")!;
    assert.ok(eager.kisses["RATE"]! > 0);
    assert.ok(eager.sent < deaf.sent / 5, `obeying ${eager.sent} vs ignoring ${deaf.sent}`);
  });

  it("behind a firewall share one address: 2,000 hosts at 9 PPS are one client at 9 PPS", () => {
    const sim = new Simulation({ seed: 1, duration: 600, config: defaultConfig() });
    sim.add(firewall("fw"));
    const r = sim.run();
    const p = r.populations[0]!;
    const snap = sim.snapshots()[0]!;
    assert.equal(snap.clients.length, 1);
    assert.ok(p.sent / 600 > 8 && p.sent / 600 <= 9.1, `rate ${p.sent / 600}`);
    assert.ok(p.caught / p.arrived > 0.9, "the call-gap sees one elephant");
    assert.ok(p.answered / p.sent < 0.4, `hosts answered ${p.answered / p.sent}`);
  });
});

describe("SntpScripts", () => {
  it("hourly scripts fire in the minute after the hour; staggered ones spread over it", () => {
    const run = (schedule: "hourly" | "staggered") => {
      const sim = new Simulation({
        seed: 4,
        duration: 3600,
        config: defaultConfig(),
        binSeconds: 60,
        startMs: DEFAULT_START_MS - 1800_000,
      });
      sim.add(new SntpScripts("s", { count: 6000, schedule }));
      return sim.run().series.offered;
    };
    const hourly = run("hourly");
    assert.equal(hourly[30], 6000, "every script in the minute after the hour");
    assert.equal(
      hourly.reduce((a, b) => a + b, 0),
      6000,
    );
    const staggered = run("staggered");
    assert.equal(
      staggered.reduce((a, b) => a + b, 0),
      6000,
    );
    assert.ok(Math.max(...staggered) < 200, `staggered peak ${Math.max(...staggered)}`);
  });

  it("retry when unanswered, then wait for the next run", () => {
    const sim = new Simulation({
      seed: 1,
      duration: 3600,
      config: defaultConfig(),
      outages: [{ from: 0, to: 3600 }],
    });
    sim.add(new SntpScripts("s", { count: 100, retries: 2 }));
    const p = sim.run().populations[0]!;
    assert.equal(p.sent, 300);
  });
});

describe("Burstmakers (§5)", () => {
  it("apportion keeps the total", () => {
    assert.deepEqual(apportion([379, 189, 6], 1), [379, 189, 6]);
    assert.deepEqual(apportion([379, 189, 6], 0.1), [38, 19, 0]);
    assert.equal(
      apportion([379, 189, 6], 0.37).reduce((a, b) => a + b, 0),
      Math.round(574 * 0.37),
    );
  });

  it("default mix: 574 active, about 313 PPS, spacing under 5 s, replaced with new addresses", () => {
    const b = new Burstmakers("b");
    assert.equal(b.slots, 574);
    assert.deepEqual(b.perClass, [379, 189, 6]);
    assert.ok(Math.abs(b.rate - 313) < 1, `rate ${b.rate}`);
    assert.equal(PAPER_BURST_MIX[2]!.rates!.filter((r) => r === 2).length, 2, "the worst two at 2 PPS");
    const sim = new Simulation({ seed: 3, duration: 300, config: noGap(), binSeconds: 10 });
    sim.add(b);
    const r = sim.run();
    const rate = r.populations[0]!.sent / 300;
    assert.ok(rate > 290 && rate < 340, `offered ${rate}`);
    // Short bursts end within the run and are replaced by new clients: more addresses than slots.
    const addresses = sim.snapshots()[0]!.clients.length;
    assert.ok(addresses > 574 + 200, `addresses ${addresses}`);
    for (const c of sim.snapshots()[0]!.clients)
      if (c.count > 2) assert.ok(c.avgInterval < 5, `spacing ${c.avgInterval}`);
  });
});

describe("Routers (§3)", () => {
  it("defective ones retry every second while unanswered; fixed ones back off", () => {
    const run = (fixed: boolean) => {
      const sim = new Simulation({
        seed: 1,
        duration: 300,
        config: defaultConfig(),
        binSeconds: 1,
        outages: [{ from: 0, to: 300 }],
      });
      sim.add(new Routers("r", { count: 100, backoff: fixed, obeyKod: fixed }));
      return sim.run();
    };
    const bad = run(false);
    const good = run(true);
    // After a minute every defective router has noticed and sends 1 PPS.
    assert.ok(
      bad.series.offered[200]! >= 97 && bad.series.offered[200]! <= 103,
      `${bad.series.offered[200]}`,
    );
    assert.ok(good.series.offered[200]! < 10, `${good.series.offered[200]}`);
    assert.ok(good.packets < bad.packets / 10);
  });

  it("can be switched on later, all within a given spread", () => {
    const sim = new Simulation({ seed: 1, duration: 60, config: noGap(), binSeconds: 1 });
    sim.add(new Routers("r", { count: 200, startAt: 30, startWithin: 1 }));
    const r = sim.run();
    assert.equal(
      r.series.offered.subarray(0, 30).reduce((a, b) => a + b, 0),
      0,
    );
    assert.equal(r.series.offered[30], 200);
    assert.equal(r.packets, 200); // answered, they poll again a minute later
    assert.throws(() => new Routers("r", { startAt: -1 }), /r\.startAt/);
  });

  it("poll their one hard-coded server whatever the balancer", () => {
    const sim = new Simulation({
      seed: 1,
      duration: 120,
      servers: 3,
      balancer: "round-robin",
      config: defaultConfig(),
    });
    sim.add(new Routers("r", { count: 300, server: 1 }));
    const r = sim.run();
    assert.equal(r.serverResults[0]!.received, 0);
    assert.equal(r.serverResults[2]!.received, 0);
    assert.equal(r.serverResults[1]!.received, r.packets);
    assert.ok(r.packets >= 600);
  });
});

describe("Elephants", () => {
  it("ignore kisses by default and slow down when they obey", () => {
    const sim = new Simulation({ seed: 1, duration: 300, config: defaultConfig() });
    sim.add(new Elephants("deaf", { count: 3, rate: 4 }));
    sim.add(new Elephants("obedient", { count: 3, rate: 4, obeyKod: true }));
    const r = sim.run();
    const deaf = r.populations.find((p) => p.name === "deaf")!;
    const ob = r.populations.find((p) => p.name === "obedient")!;
    assert.ok(Math.abs(deaf.sent / 300 / 3 - 4) < 0.1);
    assert.ok(ob.sent < deaf.sent / 10, `obedient ${ob.sent}, deaf ${deaf.sent}`);
  });

  it("rejects bad parameters with the parameter's name", () => {
    assert.throws(() => new Elephants("e", { rate: -1 }), /e\.rate/);
    assert.throws(() => new MiceStream("Bad Name"), /population name/);
    assert.throws(() => new SntpScripts("s", { schedule: "weekly" as "hourly" }), /s\.schedule/);
  });
});
