import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { defaultConfig } from "../../src/config/index.ts";
import { Defences } from "../../src/core/defences.ts";
import {
  R_DROP_OVERLOAD,
  R_KISS_RATE,
  R_MALFORMED_TOO_SHORT,
  R_SERVED_CLIENT,
  R_SERVED_LEAK,
} from "../../src/core/reasons.ts";
import { unsynchronisedState } from "../../src/core/serve-state.ts";
import { warmDecisionPath } from "../../src/core/warmup.ts";

const state = { ...unsynchronisedState(-20, false), stratum: 2, leap: 0, refTimeMs: 1_700_000_000_000 };

describe("warming the decision path", () => {
  it("takes every branch a flood takes: new sources past the list's size, the call-gap, KoD, the withheld", () => {
    const r = warmDecisionPath(defaultConfig(), state);
    assert.ok(r.packets > 10_000, `${r.packets} requests`);
    for (const [name, reason] of [
      ["served", R_SERVED_CLIENT],
      ["withheld past the redline", R_DROP_OVERLOAD],
      ["kissed", R_KISS_RATE],
      ["leaked", R_SERVED_LEAK],
      ["malformed", R_MALFORMED_TOO_SHORT],
    ] as const) {
      assert.ok(r.reasons[reason]! > 0, `${name}: ${r.reasons[reason]}`);
    }
    let total = 0;
    for (const n of r.reasons) total += n;
    assert.equal(total, r.packets, "each request ends in one reason");
  });

  it("trains on the operator's options but not with the access list, which could ignore every source", () => {
    const config = defaultConfig();
    const ignoring = {
      ...config,
      acl: { ...config.acl, default: ["ignore"] },
    } as typeof config;
    const r = warmDecisionPath(ignoring, state);
    assert.ok(r.reasons[R_SERVED_CLIENT]! > 0);
    assert.ok(r.reasons[R_DROP_OVERLOAD]! > 0);
  });

  it("leaves the server's own defences untouched", () => {
    const config = defaultConfig();
    const server = Defences.fromConfig(config, { workers: 1 });
    const before = { records: server.mru.size, overload: server.overload.stats() };
    warmDecisionPath(config, state);
    assert.equal(server.mru.size, before.records);
    assert.deepEqual(server.overload.stats(), before.overload);
  });
});
