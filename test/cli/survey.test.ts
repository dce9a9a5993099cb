// `ntpshield survey` as an operator runs it, in a child process, against three real HTTP servers on
// 127.0.0.1 serving the MRU lists that a known synthetic traffic left in three real MruLists
// (test/survey/traffic.ts): the bursters, the bins and the load share must be those of the traffic; --json
// parses; --html writes a page with the three plots; a failing server is named and, without --strict, does
// not lose the others; usage errors exit 2.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import type { Snapshot } from "../../src/survey/snapshot.ts";
import {
  END,
  JUNK_PER_SERVER,
  type Sender,
  START,
  surveyedServers,
  traffic,
  UPTIME,
} from "../survey/traffic.ts";

const dir = mkdtempSync(join(tmpdir(), "ntpshield-survey-cli-"));
const MODULE = pathToFileURL(join(import.meta.dirname, "../../src/cli/survey.ts")).href;
const MAIN = join(import.meta.dirname, "../../src/cli/main.ts");
const RUN = `import { surveyCommand } from ${JSON.stringify(MODULE)};
process.exitCode = await surveyCommand(process.argv.slice(1));`;

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the command in a child without blocking this process, whose HTTP servers must answer it. */
function run(args: string[], viaMain = false): Promise<Ran> {
  const argv = viaMain ? [MAIN, "survey", ...args] : ["--input-type=module", "-e", RUN, "--", ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("error", reject);
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

const servers: Server[] = [];
let urls: string[] = [];
let closedPort = "";
let senders: Sender[] = [];
let snapshots: Snapshot[] = [];

before(async () => {
  senders = traffic();
  snapshots = surveyedServers(senders);
  for (const s of snapshots) {
    const body = JSON.stringify(s);
    const server = createServer((req, res) => {
      if (req.url !== "/api/snapshot") res.writeHead(404).end();
      else res.writeHead(200, { "content-type": "application/json" }).end(body);
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    urls.push(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  }
  const gone = createServer();
  await new Promise<void>((resolve) => gone.listen(0, "127.0.0.1", resolve));
  closedPort = `http://127.0.0.1:${(gone.address() as AddressInfo).port}`;
  await new Promise((resolve) => gone.close(resolve));
});

after(async () => {
  rmSync(dir, { recursive: true, force: true });
  for (const s of servers) s.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  urls = [];
});

/** What the traffic itself says, computed from the packet times (not by the survey code). */
function truth(burstSpacing = 5) {
  const all = senders.map((s) => {
    const n = s.times.length;
    const duration = s.times.at(-1)! - s.times[0]!;
    const spacing = n > 1 ? duration / (n - 1) : Number.POSITIVE_INFINITY;
    return {
      address: s.address,
      packets: n,
      duration,
      rate: n > 1 ? 1 / spacing : 0,
      burster: spacing < burstSpacing,
    };
  });
  const packets = all.reduce((sum, s) => sum + s.packets, 0);
  const bursters = all.filter((s) => s.burster);
  const burstPackets = bursters.reduce((sum, s) => sum + s.packets, 0);
  const bin = (value: number, edges: number[]) => edges.filter((e) => value >= e).length;
  const binned = (edges: number[], of: (s: (typeof all)[number]) => number) =>
    [0, 1, 2, 3].map((i) => {
      const members = bursters.filter((s) => bin(of(s), edges) === i);
      return [members.length, members.reduce((sum, s) => sum + s.packets, 0)];
    });
  return {
    clients: all.length,
    packets,
    bursters: bursters.length,
    burstPackets,
    byRate: binned([1, 2, 5], (s) => s.rate),
    byDuration: binned([60, 3600, 86400], (s) => s.duration),
    heaviest: [...all].sort((a, b) => b.packets - a.packets).slice(0, 5),
  };
}

describe("ntpshield survey against three servers", () => {
  it("--json: the bursters, bins and load share of the traffic that was sent", async () => {
    const r = await run([...urls, "--json", "--top", "5"]);
    assert.equal(r.status, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    const t = truth();
    assert.equal(t.bursters, 7, "the traffic has seven bursters");

    assert.deepEqual(
      [result.window.start, result.window.end],
      [START, END],
      "the whole day: no list lost a record",
    );
    assert.equal(result.window.duration, UPTIME);
    assert.equal(result.servers.length, 3);
    assert.ok(Math.abs(result.skew - 0.3) < 1e-6, `skew ${result.skew}`);
    assert.equal(result.clients, t.clients);
    assert.equal(result.packets, t.packets);
    assert.ok(Math.abs(result.rate - t.packets / UPTIME) < 1e-9);
    // Clients whose packets the balancer spread over several lists, counted once each.
    const lists = new Map<string, number>();
    for (const snap of snapshots)
      for (const c of snap.clients) lists.set(c.address, (lists.get(c.address) ?? 0) + 1);
    const spread = [...lists.values()].filter((n) => n > 1).length;
    assert.ok(spread > 300, `the balancer spread ${spread} clients`);
    assert.equal(result.sharedClients, spread);
    assert.equal(
      result.records,
      [...lists.values()].reduce((a, b) => a + b, 0),
    );

    assert.equal(result.bursters.clients, t.bursters);
    assert.equal(result.bursters.packets, t.burstPackets);
    assert.ok(Math.abs(result.bursters.loadShare - t.burstPackets / t.packets) < 1e-12);
    assert.ok(Math.abs(result.bursters.clientShare - t.bursters / t.clients) < 1e-12);
    assert.deepEqual(
      result.byRate.map((b: { clients: number; packets: number }) => [b.clients, b.packets]),
      t.byRate,
    );
    assert.deepEqual(
      result.byDuration.map((b: { clients: number; packets: number }) => [b.clients, b.packets]),
      t.byDuration,
    );
    assert.deepEqual(
      result.elephants.map((e: { address: string; packets: number }) => [e.address, e.packets]),
      t.heaviest.map((s) => [s.address, s.packets]),
    );
    const worst = result.elephants[0];
    assert.equal(worst.address, "198.18.0.7");
    assert.equal(worst.sinceStart, true, "sending since the servers started: the limit of observation");
    assert.deepEqual(worst.servers, ["ntp-a", "ntp-b", "ntp-c"]);

    // Every datagram was some server's; the junk never reached a list: captured = packets / received.
    const received = t.packets + 3 * JUNK_PER_SERVER;
    assert.ok(Math.abs(result.arrivals.share - t.packets / received) < 1e-5, `${result.arrivals.share}`);
    // The curve: the six heaviest clients are the bursters but 2001:db8::6 (51 packets, fewer than an ntpd
    // client's 92 in a day), so the curve passes through (6 clients, the bursters' packets less 51).
    const point = result.curve.points[6];
    assert.ok(Math.abs(point.clients - 6 / t.clients) < 1e-12, `${point.clients}`);
    assert.ok(Math.abs(point.load - (t.burstPackets - 51) / t.packets) < 1e-12, `${point.load}`);
    assert.equal(result.sources.length, 3);
    assert.ok(result.sources.every((s: { ok: boolean }) => s.ok));
    assert.match(r.stderr, /survey: 3 of 3 snapshots in \d+\.\d+ s, snapshots 0\.300 s apart/);
  });

  it("text: the paper's figures, the headline and the elephants", async () => {
    const r = await run(urls);
    assert.equal(r.status, 0, r.stderr);
    const t = truth();
    const pct = (f: number) => `${(f * 100).toFixed(f < 0.01 ? 2 : 1)}%`;
    assert.match(r.stdout, /^ntpshield survey: 3 servers \(paper §5\)/);
    assert.match(r.stdout, /Window +1\.08 d \(93600\.000 s\)/);
    assert.ok(
      r.stdout.includes(`Captured                  ${t.packets.toLocaleString("en-US")} packets`),
      r.stdout,
    );
    assert.ok(
      r.stdout.includes(
        `In effect, ${pct(t.bursters / t.clients)} of the clients (the bursters) carry ${pct(t.burstPackets / t.packets)} of the load.`,
      ),
      r.stdout,
    );
    assert.match(r.stdout, /^ {2}198\.18\.0\.7 +3 +46,799 .* >=1\.08 d .* yes$/m);
    assert.match(r.stdout, /^ {2}5 PPS or more +1 /m);
    // A line per server on stderr (not a terminal), then the summary.
    assert.equal(
      (r.stderr.match(/^survey: http:\/\/127\.0\.0\.1:\d+\/api\/snapshot: ntp-[abc], \d+ records/gm) ?? [])
        .length,
      3,
    );
  });

  it("--burst-spacing moves the boundary: the client at exactly 5 s becomes a burster under 6 s", async () => {
    const r = await run([...urls, "--json", "--burst-spacing", "6"]);
    assert.equal(r.status, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    assert.equal(result.bursters.clients, truth(6).bursters);
    assert.equal(result.bursters.clients, 8);
    assert.equal(result.options.burstSpacing, 6);
  });

  it("--html FILE: one self-contained page with the three plots", async () => {
    const file = join(dir, "survey.html");
    const r = await run([...urls, "--html", file, "--json"]);
    assert.equal(r.status, 0, r.stderr);
    JSON.parse(r.stdout);
    assert.match(r.stderr, new RegExp(`wrote ${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
    const html = readFileSync(file, "utf8");
    for (const id of ["load-share", "rate-histogram", "duration-histogram"])
      assert.match(html, new RegExp(`<svg id="${id}"`));
    assert.match(html, /<polyline class="curve" points="[^"]+"/);
    for (const outside of [/<script/i, /<link/i, /\ssrc=/i, /\shref=/i, /url\(/i])
      assert.doesNotMatch(html, outside);
    assert.match(html, /198\.18\.0\.7/);
  });

  it("a server that fails is named, and the others are surveyed unless --strict", async () => {
    let r = await run([...urls, closedPort, "--json"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /ECONNREFUSED.*\[ERR_SURVEY_UNREACHABLE\]/);
    assert.match(r.stderr, /going on with 3 of 4 servers/);
    const result = JSON.parse(r.stdout);
    assert.equal(result.bursters.clients, 7);
    assert.equal(result.sources.filter((s: { ok: boolean }) => !s.ok).length, 1);

    r = await run([...urls, closedPort, "--strict"]);
    assert.equal(r.status, 1);
    assert.equal(r.stdout, "", "no report under --strict");
    assert.match(r.stderr, /1 of 4 servers failed and --strict was given/);

    r = await run([closedPort]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no server answered with a snapshot/);
  });

  it("exits 1 when the page cannot be written, after printing the report", async () => {
    const r = await run([...urls, "--html", join(dir, "no-such-dir", "x.html")]);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /In effect/);
    assert.match(r.stderr, /cannot write .*x\.html/);
  });

  it("usage errors exit 2 with the usage", async () => {
    // In this process (usage is checked before any request), with stdout and stderr captured.
    const { surveyCommand } = await import(MODULE);
    for (const args of [
      [],
      [urls[0]!, "--top", "x"],
      [urls[0]!, "--burst-spacing", "0"],
      [urls[0]!, "--timeout", "-1"],
      [urls[0]!, `${urls[0]!}/`],
      ["ftp://127.0.0.1/"],
      [urls[0]!, "--bogus"],
    ]) {
      let stderr = "";
      const write = process.stderr.write;
      const writeOut = process.stdout.write;
      process.stderr.write = ((chunk: string) => {
        stderr += chunk;
        return true;
      }) as typeof process.stderr.write;
      process.stdout.write = (() => true) as typeof process.stdout.write;
      let status: number;
      try {
        status = await surveyCommand(args);
      } finally {
        process.stderr.write = write;
        process.stdout.write = writeOut;
      }
      assert.equal(status, 2, `${args.join(" ")}: ${stderr}`);
      assert.match(stderr, /usage: ntpshield survey URL\.\.\./);
    }
  });

  it("is a command of ntpshield", async () => {
    const r = await run(["--help"], true);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /usage: ntpshield survey URL\.\.\. \[--json\] \[--html FILE\]/);
    const s = await run([...urls, "--json", "--top", "1"], true);
    assert.equal(s.status, 0, s.stderr);
    assert.equal(JSON.parse(s.stdout).elephants.length, 1);
  });
});
