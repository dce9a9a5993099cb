// The client against NTPsec's ntpd configured to rate-limit with kiss-o'-death (`restrict default limited
// kod`, NTPsec's `limit` line): ntpd sends real RATE kisses, and the client must obey them, its next
// request coming at least twice the interval later (paper §11, RFC 5905 §7.4).
//
// ntpd listens on port 123 of a private network namespace (openPort123Sandbox("netns")); the client runs
// there too, as test/client/ntpd-driver.ts: the real shell (NtpClient, sockets, DNS) on a compressed
// clock, so that requests the client spaces by minutes in its own time reach ntpd milliseconds apart and
// trip its limiter.
//
// NTPsec 1.2.2 has no `discard average/minimum` command (ntpd rejects the line as a syntax error); its
// rate limiter is configured by `limit average A burst B kod K` (ntp.conf(5)): a per-address score in
// packets per second, here 0.05/s average and a burst of 2, with up to 100 KoDs per second so that every
// limited request gets its kiss rather than silence.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { ClientEvent } from "../../src/client/events.ts";
import {
  killAllPeers,
  type NtpdServer,
  openPort123Sandbox,
  type PortSandbox,
  REPO_ROOT,
  run,
  startNtpsecNtpd,
} from "../helpers/peers.ts";

after(killAllPeers);

type Line = { atS: number; event: ClientEvent };
const EXCHANGES = new Set(["sample", "no-reply", "unusable", "kiss"]);

describe("NTPsec ntpd with `restrict default limited kod`", () => {
  let sandbox: PortSandbox | undefined;
  let ntpd: NtpdServer | undefined;
  before(async () => {
    sandbox = await openPort123Sandbox("netns");
    ntpd = await startNtpsecNtpd({
      sandbox,
      lines: [
        "restrict default limited kod",
        "restrict -6 default limited kod",
        "limit average 0.05 burst 2 kod 100",
      ],
    });
  });
  after(async () => {
    await ntpd?.stop();
    await sandbox?.close();
  });

  it("sends real RATE kisses, and each makes the client's next request come at least twice as late", {
    timeout: 60_000,
  }, async () => {
    const argv = sandbox!.wrap([
      process.execPath,
      `${REPO_ROOT}/test/client/ntpd-driver.ts`,
      "127.0.0.1",
      "123",
      "6",
      "3",
    ]);
    const r = await run(argv, 30_000);
    assert.equal(r.code, 0, r.output);
    const lines: Line[] = r.stdout
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Line);
    const exchanges = lines.filter((l) => EXCHANGES.has(l.event.kind));
    assert.equal(exchanges.length, 6, r.output);
    const rates = exchanges.filter((l) => l.event.kind === "kiss" && l.event.code === "RATE");
    assert.ok(rates.length >= 2, `ntpd sent ${rates.length} RATE kisses\n${r.stdout}\n${ntpd!.output()}`);
    for (const rate of rates) {
      const i = exchanges.indexOf(rate);
      const before = exchanges[i - 1];
      const e = rate.event as Extract<ClientEvent, { kind: "kiss" }>;
      assert.equal(e.address, "127.0.0.1");
      assert.equal(e.action, "reduce");
      // The interval in force when the kiss came: the one the previous exchange set, or minpoll (64 s).
      const previous = before ? (before.event as { intervalS: number }).intervalS : 64;
      assert.ok(e.intervalS >= 2 * previous, `interval ${e.intervalS} s after RATE, was ${previous} s`);
      assert.ok(e.nextS >= e.intervalS, `next in ${e.nextS} s`);
      const next = exchanges[i + 1];
      if (next) {
        assert.ok(next.atS - rate.atS >= e.nextS - 1e-6, `next request ${next.atS - rate.atS} s later`);
      }
    }
    // No burst request ever followed a kiss (the burst of 3 was configured, ntpd never answered usefully).
    assert.ok(!lines.some((l) => l.event.kind === "sample"));
    const times = exchanges.map((l) => l.atS);
    assert.ok(
      times.slice(1).every((t, i) => t - times[i]! >= 60),
      `times ${times}`,
    );
  });
});
