// One server's rules (src/client/source.ts) in virtual time (test/client/sim.ts), through the ClientCore that
// owns the source: every per-server rule of the client that behaves, against virtual servers whose replies
// are built by the real codec. Each test fails if its rule is taken out of source.ts, match.ts or poll.ts.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ResolvedAddress } from "../../src/client/address.ts";
import type { ClientOptions } from "../../src/client/options.ts";
import { seededRandom } from "../../src/client/random.ts";
import type { Refusal } from "../../src/client/state-file.ts";
import { NTP_UNIX_EPOCH_OFFSET, readNtpTimestamp } from "../../src/protocol/index.ts";
import { answer, gaps, literal, type Network, type ReplyFields, Sim, type SimClient } from "./sim.ts";

// Virtual only: these documentation addresses (RFC 5737, RFC 3849) never reach a socket.
const A = "192.0.2.1";
const B = "192.0.2.2";
const C = "192.0.2.3";
const D = "192.0.2.4";
const HOUR = 3600;

const answering =
  (f: ReplyFields = {}): Network =>
  (send, _at, wall) => [answer(send, wall, f)];
const silent: Network = () => [];

function oneClient(
  network: Network,
  options: Partial<ClientOptions> = {},
  opts: {
    seed?: number;
    host?: string;
    resolve?: (h: string) => ResolvedAddress[] | { error: string };
    refusals?: Refusal[];
  } = {},
): { sim: Sim; c: SimClient } {
  const sim = new Sim();
  const c = sim.client(
    [{ host: opts.host ?? A, port: 123 }],
    options,
    seededRandom(opts.seed ?? 1),
    opts.resolve ?? literal,
    network,
    opts.refusals ?? [],
  );
  c.start();
  return { sim, c };
}

describe("measurement", () => {
  it("a valid reply gives a sample with the server's offset and the round-trip delay", () => {
    const { sim, c } = oneClient(answering({ offsetMs: 250, stratum: 3 }));
    sim.run(200);
    const s = c.eventsOf("sample");
    assert.ok(s.length >= 2);
    assert.ok(Math.abs(s[0]!.sample.offsetMs - 250) < 0.5, `${s[0]!.sample.offsetMs}`);
    assert.ok(Math.abs(s[0]!.sample.delayMs - 10) < 0.5, `${s[0]!.sample.delayMs}`);
    assert.equal(s[0]!.sample.stratum, 3);
  });

  for (const [what, f, reason] of [
    ["leap 3 (unsynchronised)", { leap: 3 }, "unsynchronised"],
    ["stratum 16", { stratum: 16 }, "bad-stratum"],
    ["a zero transmit timestamp", { zeroTransmit: true }, "zero-transmit"],
  ] as const) {
    it(`a reply with ${what} gives no sample, and the client backs off`, () => {
      const { sim, c } = oneClient(answering(f));
      sim.run(HOUR);
      assert.equal(c.eventsOf("sample").length, 0);
      const u = c.eventsOf("unusable");
      assert.ok(u.length >= 3);
      assert.ok(u.every((e) => e.reason === reason));
      assert.ok(c.sends.length <= 8, `${c.sends.length} requests in an hour`);
    });
  }

  it("an informative kiss (INIT, as an unsynchronised NTPsec sends) gives no sample, only backoff", () => {
    const { sim, c } = oneClient(answering({ kiss: "INIT" }));
    sim.run(HOUR);
    assert.equal(c.eventsOf("sample").length, 0);
    assert.ok(c.eventsOf("kiss").every((k) => k.code === "INIT" && k.action === "info"));
    assert.ok(c.sends.length <= 8);
  });

  it("requests carry our clock's seconds and 32 random bits in the transmit timestamp", () => {
    const sim = new Sim();
    const fractions = new Set<number>();
    for (let i = 0; i < 50; i++) {
      const c = sim.client(
        [{ host: A, port: 123 }],
        { startSpread: 1 },
        seededRandom(100 + i),
        literal,
        silent,
      );
      c.start();
      sim.run(sim.now + 1);
      const { packet, atS } = c.sends[0]!;
      const ts = readNtpTimestamp(packet, 40);
      assert.equal(ts.seconds, Math.floor(sim.wall0Ms / 1000 + atS) + NTP_UNIX_EPOCH_OFFSET);
      fractions.add(ts.fraction);
      assert.equal(packet[0], (4 << 3) | 3);
    }
    assert.equal(fractions.size, 50, "no two requests share their random bits");
  });
});

describe("polling", () => {
  it("the first request waits a random delay; then 64 s rising to 1024 s while the server is stable", () => {
    const { sim, c } = oneClient(answering());
    sim.run(4 * HOUR);
    const t = c.sends.map((s) => s.atS);
    assert.ok(t[0]! >= 0 && t[0]! < 64);
    const g = gaps(t);
    assert.ok(
      g.slice(0, 3).every((x) => x >= 57 && x <= 71),
      `${g.slice(0, 3)}`,
    );
    assert.ok(
      g.slice(-3).every((x) => x >= 920 && x <= 1127),
      `${g.slice(-3)}`,
    );
    assert.ok(Math.max(...g) < 1536);
  });

  it("an unanswered server sees the intervals grow to maxpoll (never the 1 s retry of §3)", () => {
    // 300 clients, for the average: the first delay at each longer interval J is uniform in [J/2, 3J/2).
    const means = [0, 0, 0, 0, 0, 0];
    const N = 300;
    for (let seed = 1; seed <= N; seed++) {
      const { sim, c } = oneClient(silent, {}, { seed });
      sim.run(6 * HOUR);
      const g = gaps(c.sends.map((s) => s.atS)).map((x) => x - 2); // less the 2 s reply wait
      const expected = [128, 256, 512, 1024, 1024, 1024];
      g.slice(0, 6).forEach((x, i) => {
        assert.ok(x >= expected[i]! / 2 - 1e-9 && x < expected[i]! * 1.5, `gap ${i}: ${x}`);
        means[i]! += x / N;
      });
      assert.ok(Math.min(...g) >= 64);
      assert.ok(c.sends.length < 30, `${c.sends.length} requests in 6 hours`);
    }
    [128, 256, 512, 1024, 1024, 1024].forEach((e, i) => {
      assert.ok(Math.abs(means[i]! - e) < e * 0.1, `mean gap ${i}: ${means[i]} for ${e}`);
    });
  });

  it("a DNS failure backs off too: no tight loop of lookups", () => {
    const { sim, c } = oneClient(
      answering(),
      {},
      { host: "ntp.example", resolve: () => ({ error: "ENOTFOUND" }) },
    );
    sim.run(2 * HOUR);
    assert.equal(c.sends.length, 0);
    assert.ok(c.resolves.length <= 11, `${c.resolves.length} lookups`);
    assert.ok(gaps(c.resolves.map((r) => r.atS)).every((g) => g >= 64));
  });

  it("a burst only if configured: 4 requests within ~10 s of the first, while the server answers", () => {
    const burst = oneClient(answering(), { burst: 3 });
    burst.sim.run(120);
    const t = burst.c.sends.map((s) => s.atS);
    assert.ok(t.length >= 4);
    assert.ok(t[3]! - t[0]! < 10, `${t}`);
    assert.ok(
      burst.c
        .eventsOf("sample")
        .slice(1, 4)
        .every((s) => s.burst),
    );
    const none = oneClient(answering());
    none.sim.run(120);
    assert.ok(gaps(none.c.sends.map((s) => s.atS)).every((g) => g > 50));
  });

  it("no burst toward a server that does not answer", () => {
    const { sim, c } = oneClient(silent, { burst: 7 });
    sim.run(HOUR);
    assert.ok(gaps(c.sends.map((s) => s.atS)).every((g) => g >= 64));
  });
});

describe("kiss-o'-death", () => {
  it("RATE: the next request comes at least max(server poll, 2 x interval) later, and the burst stops", () => {
    let n = 0;
    const net: Network = (send, _at, wall) => [
      answer(send, wall, ++n === 2 ? { kiss: "RATE", poll: 10 } : {}),
    ];
    const { sim, c } = oneClient(net, { burst: 3 });
    sim.run(3 * HOUR);
    const k = c.eventsOf("kiss");
    assert.equal(k.length, 1);
    assert.equal(k[0]!.code, "RATE");
    assert.equal(k[0]!.action, "reduce");
    const t = c.sends.map((s) => s.atS);
    // Request 2 (a burst request) was kissed; request 3 waits at least 2^10 s, and no burst request follows.
    assert.ok(t[2]! - t[1]! >= 1024, `${gaps(t)}`);
    assert.ok(
      gaps(t.slice(2)).every((g) => g >= 1024 * 0.9),
      `${gaps(t)}`,
    );
  });

  it("RATE without a usable poll field: at least twice the current interval", () => {
    let n = 0;
    const net: Network = (send, _at, wall) => [
      answer(send, wall, ++n === 3 ? { kiss: "RATE", poll: 0 } : {}),
    ];
    const { sim, c } = oneClient(net);
    sim.run(HOUR);
    const g = gaps(c.sends.map((s) => s.atS));
    assert.ok(g[0]! < 71 && g[1]! < 71);
    assert.ok(g[2]! >= 128, `${g}`);
  });

  it("DENY: that address is never asked again, the refusal is recorded with an expiry", () => {
    const { sim, c } = oneClient(answering({ kiss: "DENY" }), { refusalExpiry: 86400 });
    sim.run(6 * HOUR);
    assert.equal(c.sends.length, 1, "one request, then silence");
    const k = c.eventsOf("kiss")[0]!;
    assert.equal(k.action, "stop");
    assert.equal(k.untilMs, sim.wall0Ms + k.atS * 1000 + 86400_000);
    assert.equal(c.refusalWrites.length, 1);
    const r = c.refusalWrites[0]![0]!;
    assert.deepEqual([r.address, r.port, r.code], [A, 123, "DENY"]);
    assert.ok(c.eventsOf("stopped").length >= 1);
    assert.equal(c.core.usableSources(), 0);
    // It still looks the name up now and then (DNS only, in case it gets new addresses): hourly.
    assert.ok(c.resolves.length <= 7, `${c.resolves.length} lookups`);
  });

  it("RSTR on one address of a name: the name is resolved again and another address used", () => {
    const net: Network = (send, _at, wall) => [
      answer(send, wall, send.address === A ? { kiss: "RSTR" } : {}),
    ];
    const resolve = () => [A, B].map((a) => ({ address: a, family: 4 as const }));
    // Find a seed whose first random choice is A.
    for (let seed = 1; seed < 50; seed++) {
      const { sim, c } = oneClient(net, {}, { seed, host: "ntp.example", resolve });
      sim.run(2 * HOUR);
      if (c.sends[0]!.address !== A) continue;
      assert.ok(c.sends.slice(1).every((s) => s.address === B));
      assert.ok(c.sends.length > 4);
      assert.ok(c.resolves.length >= 2, "resolved again after the RSTR");
      assert.ok(c.eventsOf("sample").length > 3);
      return;
    }
    assert.fail("no seed chose A first");
  });

  it("a refusal remembered from an earlier run is honoured until it expires", () => {
    const wall0 = new Sim().wall0Ms;
    const refusal: Refusal = {
      address: A,
      port: 123,
      host: A,
      code: "DENY",
      sinceMs: wall0 - 3600_000,
      untilMs: wall0 + 2 * 3600_000,
    };
    const { sim, c } = oneClient(answering(), {}, { refusals: [refusal] });
    sim.run(2 * HOUR - 10);
    assert.equal(c.sends.length, 0, "no request while the refusal holds");
    sim.run(5 * HOUR);
    assert.ok(c.sends.length > 0, "asked again once it expired");
  });

  it("a kiss-o'-death whose origin timestamp is not ours is ignored (DENY, RATE with a 36 h poll)", () => {
    for (const kiss of ["DENY", "RATE"]) {
      const net: Network = (send, _at, wall) => [
        // A forged kiss arrives first, with a wrong origin, then the real reply.
        { ...answer(send, wall, { kiss, poll: 17, origin: { seconds: 1, fraction: 2 } }, 0.005) },
        answer(send, wall),
      ];
      const { sim, c } = oneClient(net);
      sim.run(HOUR);
      assert.equal(c.eventsOf("kiss").length, 0, kiss);
      assert.equal(c.refusalWrites.length, 0);
      assert.ok(c.eventsOf("ignored").every((e) => e.reason === "origin-mismatch"));
      assert.ok(c.eventsOf("ignored").length >= 5);
      assert.ok(c.sends.length >= 15, `${kiss}: ${c.sends.length} requests`);
      assert.ok(c.sends.every((s) => s.address === A));
    }
  });

  it("a forged reply with the right origin but from another address is ignored", () => {
    const net: Network = (send, _at, wall) => [
      { ...answer(send, wall, { kiss: "DENY" }, 0.005), from: { address: B, port: 123 } },
      answer(send, wall),
    ];
    const { sim, c } = oneClient(net);
    sim.run(HOUR);
    assert.equal(c.eventsOf("kiss").length, 0);
    assert.ok(c.eventsOf("ignored").every((e) => e.reason === "unexpected-address"));
    assert.ok(c.eventsOf("sample").length >= 10);
  });
});

describe("redirection (paper §8)", () => {
  const redirecting: Network = (send, _at, wall) => [
    { ...answer(send, wall), from: { address: send.address === A ? B : send.address, port: 123 } },
  ];

  it("without follow-redirects, a reply from another address is not taken", () => {
    const { sim, c } = oneClient(redirecting);
    sim.run(HOUR);
    assert.equal(c.eventsOf("sample").length, 0);
    assert.ok(c.eventsOf("no-reply").length >= 3);
  });

  it("with follow-redirects, the exact origin from another address is accepted and the client switches", () => {
    const { sim, c } = oneClient(redirecting, { followRedirects: true });
    sim.run(HOUR);
    const r = c.eventsOf("redirect");
    assert.equal(r.length, 1);
    assert.deepEqual([r[0]!.from, r[0]!.to], [A, B]);
    assert.equal(c.sends[0]!.address, A);
    assert.ok(c.sends.slice(1).every((s) => s.address === B));
    assert.ok(c.eventsOf("sample")[0]!.redirected);
  });

  it("a redirect to a refused address is ignored", () => {
    const wall0 = new Sim().wall0Ms;
    const refusals: Refusal[] = [
      { address: B, port: 123, host: B, code: "RSTR", sinceMs: wall0, untilMs: wall0 + 86400_000 },
    ];
    const { sim, c } = oneClient(redirecting, { followRedirects: true }, { refusals });
    sim.run(HOUR);
    assert.equal(c.eventsOf("redirect").length, 0);
    assert.ok(c.eventsOf("ignored").every((e) => e.reason === "refused-address"));
  });
});

describe("server choice (paper §7)", () => {
  it("all addresses are considered and one chosen at random", () => {
    const counts = new Map<string, number>();
    const sim = new Sim();
    const addrs = [A, B, C, D].map((a) => ({ address: a, family: 4 as const }));
    for (let i = 0; i < 400; i++) {
      const c = sim.client(
        [{ host: "pool.example", port: 123 }],
        {},
        seededRandom(i + 1),
        () => addrs,
        silent,
      );
      c.start();
      sim.run(sim.now + 64);
      const a = c.sends[0]!.address;
      counts.set(a, (counts.get(a) ?? 0) + 1);
    }
    assert.equal(counts.size, 4);
    for (const [a, n] of counts) assert.ok(n > 60 && n < 140, `${a}: ${n}`);
  });

  it("the name is resolved again at each selection: after repeated failures another address is taken", () => {
    const addrs = [A, B].map((a) => ({ address: a, family: 4 as const }));
    let lookups = 0;
    const net: Network = (send, _at, wall) => (send.address === B ? [answer(send, wall)] : []);
    for (let seed = 1; seed < 50; seed++) {
      lookups = 0;
      const { sim, c } = oneClient(
        net,
        {},
        {
          seed,
          host: "pool.example",
          resolve: () => {
            lookups++;
            return addrs;
          },
        },
      );
      sim.run(3 * HOUR);
      if (c.sends[0]!.address !== A) continue;
      // Four failures on A, then a fresh lookup and B (the other address) from then on.
      assert.deepEqual(
        c.sends.slice(0, 5).map((s) => s.address),
        [A, A, A, A, B],
      );
      assert.equal(lookups, 2);
      assert.ok(c.sends.slice(4).every((s) => s.address === B));
      return;
    }
    assert.fail("no seed chose A first");
  });
});
