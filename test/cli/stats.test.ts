// `ntpshield stats` against a real server on loopback after real NTP traffic: chronyc-serverstats-style
// "Label : value" lines that count what was sent and agree with /metrics.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, describe, test } from "node:test";
import { metric, parsePrometheus, sendFrom } from "../helpers/monitor.ts";
import { freeUdpPort, killAllPeers, REPO_ROOT, startNtpshield } from "../helpers/peers.ts";

after(killAllPeers);

function cli(...args: string[]) {
  return spawnSync(process.execPath, ["src/cli/main.ts", ...args], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    timeout: 15_000,
  });
}

describe("ntpshield stats", () => {
  test("Label : value lines that count the traffic and agree with /metrics", async () => {
    const port = await freeUdpPort();
    const server = await startNtpshield({
      listen: [`127.0.0.1:${port}`],
      configToml: '[callgap]\nleak = 0\n[[acl.rule]]\naddress = "127.0.0.33"\nflags = ["noserve", "kod"]\n',
    });
    try {
      await sendFrom("127.0.0.31", port, 2);
      await sendFrom("127.0.0.32", port, 10); // 3 answered (fast allowance), 1 RATE kiss, 6 withheld by the KoD limiter
      await sendFrom("127.0.0.33", port, 1); // refused with an RSTR kiss
      await sendFrom("127.0.0.34", port, 1, { packet: Buffer.alloc(47) }); // a runt: ignored

      const r = cli("stats", "--url", server.httpUrl!);
      assert.equal(r.status, 0, r.stderr);
      const lines = r.stdout.trimEnd().split("\n");
      const colon = lines[0]!.indexOf(" : ");
      const values = new Map<string, string>();
      for (const line of lines) {
        assert.equal(line.indexOf(" : "), colon, `colons line up: ${JSON.stringify(line)}`);
        values.set(line.slice(0, colon).trim(), line.slice(colon + 3));
      }
      const expected: [string, string][] = [
        ["NTP packets received", "14"],
        ["NTP packets accepted", "5"],
        ["NTP packets rate-limited", "7"],
        ["NTP packets denied", "1"],
        ["NTP packets ignored", "1"],
        ["KoD RATE sent", "1"],
        ["KoD RSTR sent", "1"],
        ["KoD withheld (limiter)", "6"],
        ["Send errors", "0"],
        ["MRU records", "3 of 100000"],
        ["Blocklist entries", "0 (disabled)"],
        ["Overload", "no"],
        ["Overload redline", "none known yet"],
        ["Overload requests withheld", "mice 0, known 0, new 0"],
        ["Stratum", "10"],
        ["Reference ID", "76.79.67.76"], // stratum 10: the refid is an address (RFC 5905 §7.3)
        ["Leap status", "Normal"],
      ];
      for (const [label, value] of expected) assert.equal(values.get(label), value, label);
      assert.match(values.get("Server")!, new RegExp(`^127\\.0\\.0\\.1:${port} \\(ntpshield `));

      const m = parsePrometheus(await (await fetch(`${server.httpUrl}/metrics`)).text());
      assert.equal(
        String(metric(m, "ntp_server_received_packets_total")),
        values.get("NTP packets received"),
      );
      assert.equal(
        String(metric(m, "ntp_server_accepted_packets_total")),
        values.get("NTP packets accepted"),
      );
      assert.equal(String(metric(m, "ntp_server_denied_packets_total")), values.get("NTP packets denied"));
      assert.equal(metric(m, "ntpshield_overload_active"), 0);
      assert.equal(metric(m, "ntpshield_overload_withheld_total", { class: "new" }), 0);

      const json = cli("stats", "--url", server.httpUrl!, "--json");
      assert.equal(json.status, 0);
      assert.equal((JSON.parse(json.stdout) as { packets: { received: number } }).packets.received, 14);
    } finally {
      await server.stop();
    }
  });

  test("an unreachable endpoint exits 1 and says where it looked", () => {
    const r = cli("stats", "--url", "http://127.0.0.1:1");
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /^ntpshield stats: cannot reach the monitoring endpoint at http:\/\/127\.0\.0\.1:1\//,
    );
  });
});
