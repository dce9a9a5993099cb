// The survey's balance figures (a fleet behind a balancer, paper §7, §12): each server's share of the
// window's clients, max/mean and the coefficient of variation, in the result and in both reports.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { balanceOf, consolidate } from "../../src/survey/consolidate.ts";
import { htmlReport, textReport } from "../../src/survey/report.ts";
import { client, S, snapshot, T } from "./fixtures.ts";

const near = (actual: number, expected: number, what: string) =>
  assert.ok(Math.abs(actual - expected) < 1e-9, `${what}: ${actual}, expected ${expected}`);

/** `n` clients of 4 packets each in the window, addresses from 192.0.2.`from`. */
function clients(from: number, n: number) {
  return Array.from({ length: n }, (_, i) => client(`192.0.2.${from + i}`, T - 40, T - 10, 4));
}

describe("survey balance over the servers", () => {
  it("source-hashed: every client on one server; shares, max/mean and CV by hand", () => {
    // 6, 3 and 3 clients: mean 4, max 6, max/mean 1.5; deviations 2, -1, -1: sd sqrt(2), CV sqrt(2)/4.
    const r = consolidate([
      snapshot("a", T, S, clients(1, 6)),
      snapshot("b", T, S, clients(11, 3)),
      snapshot("c", T, S, clients(21, 3)),
    ]);
    const b = r.balance;
    assert.deepEqual(
      b.servers.map((x) => [x.server, x.clients, x.packets]),
      [
        ["a", 6, 24],
        ["b", 3, 12],
        ["c", 3, 12],
      ],
    );
    near(b.servers[0]!.share, 0.5, "a's share");
    near(b.servers[1]!.packetShare, 0.25, "b's packet share");
    near(b.mean, 4, "mean");
    assert.equal(b.max, 6);
    near(b.maxOverMean, 1.5, "max/mean");
    near(b.cv, Math.sqrt(2) / 4, "CV");
    near(b.packetsCv, Math.sqrt(2) / 4, "packets CV");
    assert.equal(r.sharedClients, 0);
  });

  it("round robin: every client on every server, perfectly even and all shared", () => {
    const all = clients(1, 5);
    const r = consolidate([snapshot("a", T, S, all), snapshot("b", T, S, all), snapshot("c", T, S, all)]);
    near(r.balance.maxOverMean, 1, "max/mean");
    near(r.balance.cv, 0, "CV");
    assert.equal(r.sharedClients, 5);
    assert.equal(r.clients, 5, "each client counted once");
  });

  it("an idle fleet gives zeros, not NaN", () => {
    const b = balanceOf([]);
    assert.deepEqual([b.mean, b.max, b.maxOverMean, b.cv], [0, 0, 0, 0]);
  });

  it("is in the text and HTML reports with more than one server, and not with one", () => {
    const r = consolidate([snapshot("a", T, S, clients(1, 6)), snapshot("b", T, S, clients(11, 2))]);
    const text = textReport(r);
    assert.match(text, /Balance over the servers/);
    assert.match(text, /max\/mean 1\.50, coefficient of variation 0\.50/);
    assert.match(text, /\ba\s+6\s+75\.0%/);
    assert.match(htmlReport(r), /<h2>Balance over the servers<\/h2>/);
    const one = consolidate([snapshot("a", T, S, clients(1, 6))]);
    assert.doesNotMatch(textReport(one), /Balance over the servers/);
    assert.equal(one.balance.servers.length, 1);
  });
});
