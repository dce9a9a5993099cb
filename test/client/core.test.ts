// The system's selection among several servers (src/client/core.ts over select.ts) in virtual time
// (test/client/sim.ts): falsetickers rejected, the best `keep` kept, the rest on standby and woken when too
// few are healthy. The per-server rules are in source.test.ts.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { seededRandom } from "../../src/client/random.ts";
import { answer, literal, type Network, type ReplyFields, Sim } from "./sim.ts";

// Virtual only: these documentation addresses (RFC 5737) never reach a socket.
const A = "192.0.2.1";
const B = "192.0.2.2";
const C = "192.0.2.3";
const D = "192.0.2.4";
const HOUR = 3600;

describe("several servers: selection (RFC 5905 §11.2)", () => {
  // Five servers; E is a falseticker 5 s off with the lowest root distance of all, so ranking by
  // distance alone would keep it first.
  const E = "192.0.2.5";
  const fields: Record<string, ReplyFields> = {
    [A]: { rootDelay: 0.02, rootDispersion: 0.01 },
    [B]: { rootDelay: 0.04, rootDispersion: 0.02 },
    [C]: { rootDelay: 0.06, rootDispersion: 0.03 },
    [D]: { rootDelay: 0.2, rootDispersion: 0.1 },
    [E]: { rootDelay: 0.001, rootDispersion: 0.001, offsetMs: 5000 },
  };
  const net: Network = (send, _at, wall) => [answer(send, wall, fields[send.address])];

  it("rejects the falseticker, keeps the three with the lowest root distance, stops polling the rest", () => {
    const sim = new Sim();
    const c = sim.client(
      [A, B, C, D, E].map((host) => ({ host, port: 123 })),
      {},
      seededRandom(3),
      literal,
      net,
    );
    c.start();
    sim.run(3 * HOUR);
    const selections = c.eventsOf("selection");
    const flagged = selections.find((e) => e.falsetickers.length > 0)!;
    assert.deepEqual(flagged.falsetickers, ["192.0.2.5:123"]);
    assert.equal(flagged.majority, true);
    const last = selections.at(-1)!;
    assert.equal(last.majority, true);
    assert.deepEqual(last.kept, ["192.0.2.1:123", "192.0.2.2:123", "192.0.2.3:123"]);
    assert.equal(last.systemPeer, "192.0.2.1:123");
    assert.ok(Math.abs(last.offsetS!) < 0.001);
    // After the first round, only the kept three are asked.
    const late = c.sends.filter((s) => s.atS > 600).map((s) => s.address);
    assert.ok(late.length > 10);
    assert.deepEqual([...new Set(late)].sort(), [A, B, C]);
    const st = c.core.status();
    assert.equal(st.find((s) => s.address === E)!.role, "falseticker");
    assert.equal(st.find((s) => s.address === D)!.role, "surplus");
    assert.ok(Math.abs(c.core.estimate(sim.now)!.offsetS) < 0.001);
  });

  it("wakes a surplus server, resolved again, when a kept one goes silent", () => {
    const sim = new Sim();
    let cDead = false;
    const dying: Network = (send, at, wall, client) =>
      cDead && send.address === C ? [] : net(send, at, wall, client);
    const c = sim.client(
      [A, B, C, D].map((host) => ({ host, port: 123 })),
      {},
      seededRandom(4),
      literal,
      dying,
    );
    c.start();
    sim.run(HOUR);
    assert.ok(c.sends.filter((s) => s.atS > 1800).every((s) => s.address !== D));
    cDead = true;
    sim.run(6 * HOUR);
    const woken = c.eventsOf("woken");
    assert.equal(woken.length, 1);
    assert.equal(woken[0]!.source, "192.0.2.4:123");
    assert.ok(c.sends.some((s) => s.address === D && s.atS > woken[0]!.atS));
    assert.ok(c.resolves.filter((r) => r.host === D).length >= 2);
  });
});
