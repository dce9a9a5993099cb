// How fast the simulator runs (issue 6: "one simulated hour of the NIST aggregate (16,000 PPS) well under a
// minute on one core"). The NIST aggregate of §5: "1.4 billion packets per day or about 16,000 PPS", here
// as 16 servers of 1,000 PPS each, every one running the real decision pipeline (src/core/defences.ts) with
// the MRU list NIST surveyed (1,200 records, admission probability 0.125) or ntpshield's default (100,000
// records, --mru default); clients are settled mice plus §5's burstmakers scaled to 16,000 PPS, spread by
// source address (a client keeps to its server, as with DNS names and hard-coded addresses).
//
//   npx node bench/sim-speed.ts [--duration 3600] [--servers 16] [--mru nist|default] [--seed 1] [--json]
//
// Prints the simulated packets, the wall-clock time, nanoseconds per simulated packet and how many times
// faster than real time the run went. One thread: the simulator is single-threaded.

import { parseArgs } from "node:util";
import { defaultConfig } from "../src/config/index.ts";
import { Simulation } from "../src/sim/engine.ts";
import { Burstmakers, MiceStream } from "../src/sim/populations/index.ts";
import { NIST_ADMIT_PROBABILITY } from "../src/sim/scenarios/nist.ts";
import { simConfig } from "../src/sim/server-model.ts";

const { values } = parseArgs({
  options: {
    duration: { type: "string", default: "3600" },
    servers: { type: "string", default: "16" },
    mru: { type: "string", default: "nist" },
    seed: { type: "string", default: "1" },
    json: { type: "boolean", default: false },
  },
});
const duration = Number(values.duration);
const servers = Number(values.servers);
const seed = Number(values.seed);
if (!(duration > 0) || !Number.isInteger(servers) || servers < 1 || !Number.isInteger(seed)) {
  process.stderr.write(
    "usage: npx node bench/sim-speed.ts [--duration S] [--servers N] [--mru nist|default] [--seed N] [--json]\n",
  );
  process.exit(2);
}
if (values.mru !== "nist" && values.mru !== "default") {
  process.stderr.write("--mru must be nist (1,200 records) or default (100,000 records)\n");
  process.exit(2);
}
const TOTAL_PPS = 16_000;
const config =
  values.mru === "nist"
    ? simConfig({ mru: { maxEntries: 1200, admitProbability: NIST_ADMIT_PROBABILITY } })
    : defaultConfig();
const bursters = new Burstmakers("burstmakers", { scale: TOTAL_PPS / 3000 });
const mice = new MiceStream("mice", { count: Math.round((TOTAL_PPS - bursters.rate) * 1024), poll: 1024 });
const sim = new Simulation({ seed, duration, servers, balancer: "source-hash", config, binSeconds: 60 });
sim.add(mice).add(bursters);
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const r = sim.run();
const wallMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const out = {
  scenario: "NIST aggregate, 16,000 PPS",
  duration,
  servers,
  mru: config.mru.maxEntries,
  packets: r.packets,
  simulatedPps: r.packets / duration,
  wallSeconds: +(wallMs / 1000).toFixed(2),
  cpuSeconds: +((cpu.user + cpu.system) / 1e6).toFixed(2),
  nsPerPacket: +((wallMs * 1e6) / r.packets).toFixed(0),
  timesRealTime: +(duration / (wallMs / 1000)).toFixed(1),
  node: process.version,
};
if (values.json) process.stdout.write(`${JSON.stringify(out)}\n`);
else {
  process.stdout.write(
    `${out.scenario}: ${duration} s simulated, ${servers} servers, MRU ${out.mru} records each\n` +
      `${out.packets.toLocaleString("en-US")} packets (${Math.round(out.simulatedPps).toLocaleString("en-US")} PPS) in ${out.wallSeconds} s wall, ` +
      `${out.cpuSeconds} s CPU: ${out.nsPerPacket} ns per packet, ${out.timesRealTime}x real time\n`,
  );
}
