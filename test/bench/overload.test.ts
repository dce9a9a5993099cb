// bench/overload.ts's pure parts: its options, the capacity ladder's next rate and the capacity it reads
// off the steps, and the table. The benchmark itself runs by hand (it needs root, two cores and minutes),
// never in the tests.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  capacityOf,
  type FloodRun,
  type LadderStep,
  nextRate,
  parseOptions,
  table,
} from "../../bench/overload.ts";

function step(offered: number, ratio: number, generatorShort = false): LadderStep {
  return {
    offered,
    sendRate: offered,
    ratio,
    serverDrops: 0,
    cpuShare: 0.25,
    generatorShort,
    contended: false,
  };
}

describe("overload benchmark options", () => {
  test("defaults: chrony then ntpshield, a quarter core, 2,000 mice every 16 s, 500,000 flood sources", () => {
    const o = parseOptions([]);
    assert.ok(o);
    assert.deepEqual(
      o.servers.map((s) => s.name),
      ["chrony", "ntpshield"],
    );
    assert.equal(o.cpuShare, 0.25);
    assert.equal(o.cpuPeriodUs, 100_000);
    assert.equal(o.mice, 2000);
    assert.equal(o.poll, 16);
    assert.equal(o.miceWarmup, 40);
    assert.equal(o.floodSources, 500_000);
    assert.equal(o.floodFactor, 2.5);
    assert.equal(o.floodBasis, "max");
    assert.equal(o.capacity, null);
    assert.equal(o.floodRate, null);
  });

  test("--help returns null; server variants and a configuration file", () => {
    assert.equal(parseOptions(["--help"]), null);
    const o = parseOptions([
      "--servers",
      "ntpshield,ntpshield-bare,ntpshield=/tmp/over.toml",
      "--ntpshield-config",
      "/tmp/a.toml",
      "--poll",
      "8",
    ]);
    assert.ok(o);
    assert.deepEqual(
      o.servers.map((s) => [s.name, s.kind, s.configFile ?? null]),
      [
        ["ntpshield", "ntpshield", "/tmp/a.toml"],
        ["ntpshield-bare", "ntpshield", null],
        ["ntpshield=/tmp/over.toml", "ntpshield", "/tmp/over.toml"],
      ],
    );
    assert.match(o.servers[1]?.config ?? "", /nomrulist/);
    assert.equal(o.miceWarmup, 20);
  });

  test("refused: a poll over 64 s, an unknown server, --capacity with --flood-rate, a bad basis", () => {
    assert.throws(() => parseOptions(["--poll", "65"]), /--poll/);
    assert.throws(() => parseOptions(["--servers", "ntpd"]), /unknown server "ntpd"/);
    assert.throws(() => parseOptions(["--capacity", "40k", "--flood-rate", "100k"]), /exclude/);
    assert.throws(() => parseOptions(["--flood-basis", "min"]), /--flood-basis/);
    assert.throws(() => parseOptions(["--flood-rate", "fast"]), /not a rate/);
  });
});

describe("capacity ladder", () => {
  test("doubles from the start while every step answers >= 99%", () => {
    assert.equal(nextRate([], 10_000), 10_000);
    assert.equal(nextRate([step(10_000, 1)], 10_000), 20_000);
    assert.equal(nextRate([step(10_000, 1), step(20_000, 0.995)], 10_000), 40_000);
  });

  test("halves the gap after a failure, and stops within 15%", () => {
    const steps = [step(10_000, 1), step(20_000, 1), step(40_000, 1), step(80_000, 0.8)];
    assert.equal(nextRate(steps, 10_000), 60_000);
    steps.push(step(60_000, 1));
    assert.equal(nextRate(steps, 10_000), 70_000);
    steps.push(step(70_000, 0.97));
    assert.equal(nextRate(steps, 10_000), 65_000);
    steps.push(step(65_000, 1));
    assert.equal(nextRate(steps, 10_000), null);
    assert.equal(capacityOf(steps), 65_000);
  });

  test("a step the generator could not offer in full is not a good step", () => {
    const steps = [step(10_000, 1), step(20_000, 1, true)];
    assert.equal(nextRate(steps, 10_000), 15_000);
    assert.equal(capacityOf(steps), 10_000);
  });

  test("below the first step, and no capacity when nothing answered at 99%", () => {
    assert.equal(nextRate([step(10_000, 0.5)], 10_000), 5000);
    assert.equal(capacityOf([step(10_000, 0.5), step(5000, 0.9)]), null);
  });

  test("a good step above a failed one does not count", () => {
    assert.equal(
      capacityOf([step(10_000, 1), step(20_000, 0.9), step(15_000, 0.98), step(17_500, 1)]),
      10_000,
    );
  });

  test("at most eight steps", () => {
    const steps = Array.from({ length: 8 }, (_, i) => step(10_000 * 2 ** i, 1));
    assert.equal(nextRate(steps, 10_000), null);
  });
});

describe("report", () => {
  test("one row per server with the flood's figures", () => {
    const run: FloodRun = {
      server: "ntpshield",
      command: "",
      error: null,
      capacity: 40_000,
      ladder: [],
      floodOffered: 100_000,
      floodSources: 500_000,
      floodSourceInterval: 5,
      seconds: 20,
      mice: { sent: 2500, valid: 2475, kod: 0, served: 0.99, warmupSent: 5000, warmupValid: 5000 },
      flood: { sent: 2_000_000, sendRate: 100_000, valid: 800_000, kod: 0, served: 0.4, skipped: 0 },
      all: { sent: 2_002_500, valid: 802_475, served: 802_475 / 2_002_500 },
      repliesPerSecond: 40_124,
      cpuSeconds: 5,
      cpuShare: 0.25,
      repliesPerCpuSecond: 160_495,
      capPeriods: 200,
      capThrottledShare: 1,
      rssBytes: 150 * 1048576,
      serverDrops: 1_000_000,
      cores: null,
      contended: false,
      generatorShort: false,
    };
    const lines = table([run]).split("\n");
    assert.match(lines[0] ?? "", /mice served \| all served \| replies\/s/);
    assert.match(
      lines[2] ?? "",
      /^ntpshield \|\s+40,000 \|\s+100,000 \|\s+99\.0% \|\s+40\.1% \|\s+40,124 \|\s+160,495 \| 25% \| 150\.0 MiB$/,
    );
    // A capacity not measured (--flood-rate) is "-"; measured and not found, "none".
    const given = table([{ ...run, capacity: null }]).split("\n")[2] ?? "";
    assert.match(given, /^ntpshield \|\s+- \|/);
    const none = table([{ ...run, capacity: null, ladder: [step(10_000, 0.5)] }]).split("\n")[2] ?? "";
    assert.match(none, /^ntpshield \|\s+none \|/);
  });
});
