// The paper's scenarios, scaled down so the whole file runs in seconds: each reproduces the direction of
// the paper's claim (the full-size runs are `ntpshield simulate <name>`).

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { defaultConfig } from "../../src/config/index.ts";
import { textReport } from "../../src/sim/report.ts";
import { balancerRun } from "../../src/sim/scenarios/balancer.ts";
import { SCENARIOS } from "../../src/sim/scenarios/index.ts";
import { splurgeRuns } from "../../src/sim/scenarios/wisconsin-overload.ts";

const config = defaultConfig();

/** A table row by its first cell. */
function row(report: { tables: { rows: string[][] }[] }, figure: string): string[] {
  const r = report.tables[0]!.rows.find((x) => x[0] === figure);
  assert.ok(r, `row ${figure}`);
  return r;
}

const pps = (cell: string) => Number(cell.replace(/,/g, "").match(/^([0-9.]+) PPS/)![1]);
const pct = (cell: string) => Number(cell.match(/([0-9.]+)%/)![1]) / 100;

describe("balancer scenario (§12)", () => {
  it("source-hash lets the call-gap catch most elephant packets; round-robin and random clearly fewer", () => {
    const o = { seed: 1, scale: 0.2, config };
    const hash = balancerRun("source-hash", o, 300);
    const rr = balancerRun("round-robin", o, 300);
    const random = balancerRun("random", o, 300);
    assert.ok(hash.elephantsCaught > 0.6, `source-hash caught ${hash.elephantsCaught}`);
    assert.ok(rr.elephantsCaught < hash.elephantsCaught / 2, `round-robin caught ${rr.elephantsCaught}`);
    assert.ok(random.elephantsCaught < hash.elephantsCaught / 2, `random caught ${random.elephantsCaught}`);
    // §12: "at aggregate arrival rates in the thousands of PPS [...] the effect is the same".
    assert.ok(Math.abs(rr.elephantsCaught - random.elephantsCaught) < 0.05);
    // The burstmakers (mostly under 1 PPS) are where the difference is: 14 PPS is caught anyway.
    assert.ok(hash.burstersCaught > 3 * rr.burstersCaught);
    assert.ok(rr.offenderCaught > 0.95);
    // More of the elephants' requests are refused, so fewer are answered.
    assert.ok(hash.elephantsAnswered < rr.elephantsAnswered);
  });
});

describe("usno scenario (§4)", () => {
  it("the hourly scripts make the peak; staggered, they do not", () => {
    const r = SCENARIOS["usno"]!.run({ seed: 1, scale: 0.05, duration: 600, config });
    const peak = row(r, "aggregate on the hour (minute after the hour)");
    const between = row(r, "aggregate between the hours (median minute)");
    assert.ok(Math.abs(pps(peak[2]!) / pps(between[2]!) - 1.4) < 0.05, `hourly ${peak[2]} / ${between[2]}`);
    assert.ok(Math.abs(pps(peak[3]!) / pps(between[3]!) - 1) < 0.05, `staggered ${peak[3]} / ${between[3]}`);
    const fw = row(r, "firewall: 2,000 hosts on one address");
    assert.ok(pct(fw[2]!.split("answered ")[1]!) < 0.5, `firewall hosts answered: ${fw[2]}`);
  });
});

describe("wisconsin scenario (§3)", () => {
  it("defective routers splurge while the path is down; fixed ones back off", () => {
    const r = SCENARIOS["wisconsin"]!.run({ seed: 1, scale: 0.01, duration: 200, config });
    const routers = 7000 - 70;
    const normal = row(r, "offered while the server answers");
    assert.ok(Math.abs(pps(normal[2]!) - routers / 60) < routers / 60 / 5, `normal ${normal[2]}`);
    const worst = row(r, "offered while unreachable, worst second");
    assert.ok(pps(worst[2]!) > 0.97 * routers, `defective worst ${worst[2]}`);
    const end = row(r, "offered in the last second of the outage");
    assert.ok(pps(end[3]!) < pps(end[2]!) / 10, `fixed ${end[3]} vs defective ${end[2]}`);
    const fw = row(r, "routers whose firewall rejects the replies (1.0%)");
    assert.ok(pct(fw[2]!.split("catches ")[1]!) > 0.7, `caught ${fw[2]}`);
    // The splurge runs have their own table, beside the paper's figures and saying it has none of its own.
    const splurge = r.tables[1]!;
    assert.match(splurge.title, /our extension, the paper has no figure/);
    assert.deepEqual(splurge.columns.slice(2, 4), ["no overload control", "overload control"]);
    assert.ok(splurge.rows.some((x) => x[0] === "mice served during the splurge"));
    assert.equal(r.runs.length, 4);
  });

  it("the splurge at a server of limited capacity: overload control keeps its mice served", () => {
    // A tenth of the paper's sizes: 10,000 routers at a server that answers 100 a second, 5,000 mice.
    const { off, on } = splurgeRuns({ seed: 1, scale: 0.1, config }, 240);
    const miceOn = on.miceAnswered / on.miceSent;
    const miceOff = off.miceAnswered / off.miceSent;
    assert.ok(on.miceSent > 2000 && off.miceSent > 2000, `mice sent ${on.miceSent}, ${off.miceSent}`);
    assert.ok(miceOn >= 0.99, `mice served with overload control: ${miceOn}`);
    assert.ok(miceOff < 0.2, `mice served without it: ${miceOff}`);
    // The flood gets what the capacity lets through, never more (its queue holds a tenth of a second).
    for (const r of [off, on]) {
      assert.equal(r.capacity, 100);
      assert.ok(r.peakOffered > 9_900, `splurge ${r.peakOffered}`);
      assert.ok(r.peakAnswered <= 110, `answered in one second ${r.peakAnswered}`);
      assert.ok(r.floodAnswered <= 100 * 240 + 10, `routers answered ${r.floodAnswered}`);
      assert.ok(r.allAnswered / r.allSent < 0.03, `all served ${r.allAnswered / r.allSent}`);
    }
    // Without overload control nothing is withheld and the mice lose their answers past the capacity;
    // with it the routers are withheld and the mice hardly ever meet a full queue.
    assert.equal(off.floodWithheld + off.miceWithheld, 0);
    assert.ok(off.miceDropped > 0.8 * off.miceSent, `mice dropped ${off.miceDropped}`);
    assert.ok(on.floodWithheld > 1_000_000, `routers withheld ${on.floodWithheld}`);
    assert.equal(on.miceWithheld, 0);
    assert.ok(on.miceDropped < 0.01 * on.miceSent, `mice dropped ${on.miceDropped}`);
    assert.ok(
      on.miceLossSeconds < 20 && off.miceLossSeconds > 200,
      `${on.miceLossSeconds}, ${off.miceLossSeconds}`,
    );
  });
});

describe("nist scenario (§5)", () => {
  it("the survey of the simulated lists finds the burstmakers, and more of them behind source-hash", () => {
    const r = SCENARIOS["nist"]!.run({ seed: 1, scale: 0.2, duration: 120, config });
    const life = row(r, "new entries swept out after");
    for (const c of life.slice(2, 4)) assert.ok(Math.abs(Number(c.split(" ")[0]) - 9) < 2, `lifetime ${c}`);
    const share = row(r, "share of the arrivals in the window");
    for (const c of share.slice(2, 4)) assert.ok(pct(c) > 0.08 && pct(c) < 0.3, `share ${c}`);
    const b = row(r, "bursters (spacing under 5 s): clients, their packets");
    const rr = Number(b[2]!.split(" ")[0]);
    const hash = Number(b[3]!.split(" ")[0]);
    assert.ok(rr > 20 && hash > rr, `bursters found: round-robin ${rr}, source-hash ${hash}`);
  });
});

describe("determinism of a whole scenario", () => {
  it("the same seed prints the same report", () => {
    const run = (seed: number) => {
      const r = SCENARIOS["balancer"]!.run({ seed, scale: 0.05, duration: 60, config });
      return textReport({ ...r, wallMs: 0, runs: r.runs.map((x) => ({ ...x, wallMs: 0 })) });
    };
    assert.equal(run(7), run(7));
    assert.notEqual(run(7), run(8));
  });
});
