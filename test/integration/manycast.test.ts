// Manycast (paper §9) for real, inside a private network namespace whose loopback carries multicast:
// ntpshield servers that joined 224.0.1.1, one of them unsynchronised, and `ntpshield sync --manycast`
// asking the group: it ends with the synchronised ones, matched by origin timestamp from their own
// addresses, and keeps the best three when more answer ("all but the best three are discarded").

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { fetchIn, multicastSandbox, ntpshieldArgv, ntpshieldIn } from "../helpers/multicast.ts";
import {
  killAllPeers,
  type Ntpshield,
  type PortSandbox,
  REPO_ROOT,
  startNtpshield,
  waitFor,
} from "../helpers/peers.ts";

after(killAllPeers);

const GROUP = '[manycast]\ngroup = ["224.0.1.1"]\ninterface = "127.0.0.1"\n';

interface Round {
  round: number;
  answered: string[];
  kept: { server: string; stratum: number }[];
  added: string[];
  discarded: string[];
}

describe("manycast: servers on one group, a client asking it", () => {
  let sandbox: PortSandbox;
  const servers: Ntpshield[] = [];
  let client: ChildProcess | undefined;
  const rounds: Round[] = [];
  let clientOut = "";
  before(async () => {
    sandbox = await multicastSandbox();
  });
  after(async () => {
    client?.kill("SIGTERM");
    for (const s of servers) await s.stop();
    await sandbox?.close();
  });

  const serve = async (n: number, clock: string, threads = 1) => {
    const s = await startNtpshield({
      listen: [`127.0.60.${n}:123`],
      threads,
      sandbox,
      configToml: `${clock}${GROUP}`,
    });
    servers.push(s);
    return s;
  };
  const kept = (r: Round) => r.kept.map((k) => k.server).sort();
  /** ntpshield_packets_total{reason} of a server, read inside the namespace; "" = all it received. */
  const packets = async (s: Ntpshield, reason: string): Promise<number> => {
    const m = await fetchIn(sandbox, `${s.httpUrl}/metrics`);
    const line =
      reason === "" ? "ntp_server_received_packets_total" : `ntpshield_packets_total\\{reason="${reason}"\\}`;
    const v = new RegExp(`^${line} (\\d+)$`, "m").exec(m.stdout);
    assert.ok(v, `${reason} in\n${m.output}`);
    return Number(v[1]);
  };

  test("three servers, one unsynchronised: the client ends with the two synchronised", {
    timeout: 60_000,
  }, async () => {
    // Two worker threads: still one answer per request (worker 0 alone joins the group).
    await serve(1, "[clock]\nstratum = 2\n", 2);
    await serve(2, "[clock]\nstratum = 2\n");
    // Its upstream does not exist: leap alarm from start to end.
    await serve(3, '[clock]\nupstream = ["127.0.60.99:123"]\n');
    const [cmd, ...args] = sandbox.wrap(
      ntpshieldArgv([
        "sync",
        "--manycast",
        "224.0.1.1",
        "--interface",
        "127.0.0.1",
        "--interval",
        "2",
        "--timeout",
        "0.5",
        "--json",
      ]),
    ) as [string, ...string[]];
    client = spawn(cmd, args, { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let partial = "";
    client.stdout?.setEncoding("utf8").on("data", (d: string) => {
      clientOut += d;
      partial += d;
      const lines = partial.split("\n");
      partial = lines.pop() ?? "";
      for (const l of lines) if (l) rounds.push(JSON.parse(l) as Round);
    });
    client.stderr?.setEncoding("utf8").on("data", (d: string) => {
      clientOut += d;
    });
    const first = await waitFor("a manycast round", async () => rounds[0], 15_000, 100);
    assert.deepEqual(first.answered.sort(), ["127.0.60.1", "127.0.60.2"], clientOut);
    assert.deepEqual(kept(first), ["127.0.60.1", "127.0.60.2"]);
    assert.ok(first.kept.every((k) => k.stratum === 2));
    // The unsynchronised server was asked (it joined the group) and stayed silent: counted by its reason.
    const silent = await ntpshieldIn(sandbox, ["query", "--json", "127.0.60.3:123"], 10_000);
    assert.match(silent.stdout, /unsynchronised/, "it answers unicast with leap alarm, but never the group");
    // Each counted once with its reason on /metrics: answered by the first, withheld by the third.
    await waitFor("three rounds", async () => (rounds.length >= 3 ? true : undefined), 15_000, 100);
    // Every packet the first server received is one round's request, received once (with a socket per
    // worker each would arrive twice, the second copy gapped), and each was answered.
    const before = rounds.length;
    const received = await packets(servers[0]!, "");
    const served = await packets(servers[0]!, "served_manycast");
    const afterRounds = rounds.length;
    assert.ok(
      received >= before && received <= afterRounds + 1,
      `${received} requests received for ${before}-${afterRounds} rounds`,
    );
    assert.ok(served >= before && served <= received, `${served} answers for ${received} requests`);
    assert.equal(await packets(servers[0]!, "drop_manycast_unsynchronised"), 0);
    assert.ok((await packets(servers[2]!, "drop_manycast_unsynchronised")) >= 1);
    assert.equal(await packets(servers[2]!, "served_manycast"), 0);
  });

  test("a fourth, worse server is kept while there is room, and discarded when a fifth appears", {
    timeout: 60_000,
  }, async () => {
    assert.ok(client, "the client of the previous test");
    // Worse: half a second of root dispersion.
    await serve(4, "[clock]\nstratum = 2\nroot-dispersion = 0.5\n");
    const withFourth = await waitFor(
      "a round keeping the fourth server",
      async () => rounds.find((r) => kept(r).includes("127.0.60.4")),
      15_000,
      100,
    );
    assert.deepEqual(kept(withFourth), ["127.0.60.1", "127.0.60.2", "127.0.60.4"], clientOut);
    const from = rounds.length;
    await serve(5, "[clock]\nstratum = 2\n");
    const withFifth = await waitFor(
      "a round keeping the fifth server",
      async () => rounds.slice(from).find((r) => kept(r).includes("127.0.60.5")),
      15_000,
      100,
    );
    assert.deepEqual(kept(withFifth), ["127.0.60.1", "127.0.60.2", "127.0.60.5"], clientOut);
    assert.ok(withFifth.answered.includes("127.0.60.4"), "the fourth still answered");
    assert.deepEqual(withFifth.discarded, ["127.0.60.4"]);
    assert.ok(
      !rounds.some((r) => r.answered.includes("127.0.60.3")),
      "the unsynchronised server never answered",
    );
  });
});
