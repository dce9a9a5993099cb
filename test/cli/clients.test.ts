// `ntpshield clients` against a real server on loopback that real NTP traffic from several 127/8 addresses
// has filled: ntpq's mrulist columns, its filters as flags and as ntpq-style tags, JSON, and clear failures.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { sendFrom } from "../helpers/monitor.ts";
import { freeUdpPort, killAllPeers, type Ntpshield, REPO_ROOT, startNtpshield } from "../helpers/peers.ts";

after(killAllPeers);

function cli(...args: string[]) {
  return spawnSync(process.execPath, ["src/cli/main.ts", ...args], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    timeout: 15_000,
  });
}

/** The rows under the header and its ==== line, each split into mrulist's columns. */
function rows(stdout: string): string[][] {
  const lines = stdout.trimEnd().split("\n");
  assert.equal(lines[0], " lstint avgint rstr r m v  count   drop rport remote address");
  assert.match(lines[1]!, /^=+$/);
  return lines.slice(2).map((l) => l.trim().split(/\s+/));
}

describe("ntpshield clients", () => {
  let server: Ntpshield;
  let url: string;

  before(async () => {
    const port = await freeUdpPort();
    server = await startNtpshield({ listen: [`127.0.0.1:${port}`], configToml: "[callgap]\nleak = 0\n" });
    url = server.httpUrl!;
    // .21: one request; .22: 12 at once (3 answered by the fast allowance, a RATE kiss, 8 dropped); .23: two.
    await sendFrom("127.0.0.21", port, 1);
    await sendFrom("127.0.0.22", port, 12);
    await sendFrom("127.0.0.23", port, 2);
  });
  after(async () => {
    await server?.stop();
  });

  test("prints mrulist's columns, newest first", () => {
    const r = cli("clients", "--url", url);
    assert.equal(r.status, 0, r.stderr);
    const table = rows(r.stdout);
    assert.deepEqual(
      table.map((c) => c[9]),
      ["127.0.0.23", "127.0.0.22", "127.0.0.21"],
    );
    const [lstint, avgint, rstr, flag, mode, version, count, drop, rport] = table[1]!;
    assert.match(lstint!, /^\d+$/);
    assert.match(avgint!, /^\d+\.\d{3}$/, "a sub-second average shows three decimals, as ntpq");
    assert.equal(rstr, "20", "the last packet was rate-limited (0x20), not kissed");
    assert.equal(flag, "L");
    assert.equal(mode, "3");
    assert.equal(version, "4");
    assert.equal(count, "12");
    assert.equal(drop, "9", "the kissed one and the eight after it");
    assert.ok(Number(rport) > 0);
    assert.deepEqual(table[2]!.slice(1, 4), ["0", "0", "."], "one packet: avgint 0, no restriction");
  });

  test("filters and sort as flags and as ntpq's tags", () => {
    const addresses = (...args: string[]) => {
      const r = cli("clients", "--url", url, ...args);
      assert.equal(r.status, 0, r.stderr);
      return rows(r.stdout).map((c) => c[9]);
    };
    assert.deepEqual(addresses("--limited"), ["127.0.0.22"]);
    assert.deepEqual(addresses("limited"), ["127.0.0.22"]);
    assert.deepEqual(addresses("--kod"), []);
    assert.deepEqual(addresses("mincount=2"), ["127.0.0.23", "127.0.0.22"]);
    assert.deepEqual(addresses("--mincount", "2", "--sort=-count"), ["127.0.0.22", "127.0.0.23"]);
    assert.deepEqual(addresses("sort=addr", "limit=2"), ["127.0.0.21", "127.0.0.22"]);
    assert.deepEqual(addresses("--sort=-lstint"), ["127.0.0.21", "127.0.0.22", "127.0.0.23"]);
  });

  test("--json gives the endpoint's answer", () => {
    const r = cli("clients", "--url", url, "--json", "--sort=-count", "--limit", "1");
    assert.equal(r.status, 0, r.stderr);
    const body = JSON.parse(r.stdout) as {
      size: number;
      clients: { address: string; count: number; kods: number }[];
    };
    assert.equal(body.size, 3);
    assert.deepEqual(
      body.clients.map((c) => [c.address, c.count, c.kods]),
      [["127.0.0.22", 12, 1]],
    );
  });

  test("usage errors exit 2, an unreachable endpoint exits 1 with what to do", () => {
    const bogus = cli("clients", "--url", url, "sort=bogus");
    assert.equal(bogus.status, 2);
    assert.match(bogus.stderr, /sort: expected one of lstint, avgint, addr, count, drop/);
    const tag = cli("clients", "--url", url, "frobnicate");
    assert.equal(tag.status, 2);
    assert.match(tag.stderr, /unknown tag "frobnicate"/);
    const flag = cli("clients", "--frobnicate");
    assert.equal(flag.status, 2);
    assert.match(flag.stderr, /usage: ntpshield clients/);
    const down = cli("clients", "--url", "127.0.0.1:1");
    assert.equal(down.status, 1);
    assert.match(
      down.stderr,
      /cannot reach the monitoring endpoint at http:\/\/127\.0\.0\.1:1\/: ECONNREFUSED/,
    );
    assert.match(down.stderr, /\[http\]/);
    const notUrl = cli("clients", "--url", "ftp://127.0.0.1:1");
    assert.equal(notUrl.status, 2);
  });
});
