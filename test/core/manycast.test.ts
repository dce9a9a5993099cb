// The manycast server's decision (src/core/manycast.ts, paper §9): a request to a group is answered only
// while synchronised, never to a multicast or broadcast source, only in mode 3, and otherwise exactly as
// the unicast pipeline would (access lists, call-gap, KoD).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Defences } from "../../src/core/defences.ts";
import { decideManycast, isGroupOrBroadcastKey } from "../../src/core/manycast.ts";
import {
  R_DROP_ACL_IGNORE,
  R_DROP_MANYCAST_MODE,
  R_DROP_MANYCAST_SOURCE,
  R_DROP_MANYCAST_UNSYNCHRONISED,
  R_KISS_RATE,
  R_KISS_RSTR,
  R_SERVED_CLIENT,
  R_SERVED_MANYCAST,
  REASON_NAMES,
  REASON_REPLY,
  REPLY_STAMPED,
} from "../../src/core/reasons.ts";
import type { ServeState } from "../../src/core/serve-state.ts";
import { unsynchronisedState } from "../../src/core/serve-state.ts";
import { defences, key, request, syncedState } from "../helpers/core.ts";

const T0 = Date.UTC(2026, 11, 5, 1, 0, 0);

function synced(): ServeState {
  return syncedState(T0);
}

function ask(d: Defences, address: string, t: number, o: { mode?: number; state?: ServeState } = {}) {
  const buf = request(o.mode ?? 3, (t * 1000) >>> 0);
  d.time[0] = T0 + t * 1000;
  const reason = decideManycast(d, buf, buf.length, key(address), 40000, o.state ?? synced());
  return { reason, buf };
}

describe("decideManycast", () => {
  it("answers a client's request to a group while synchronised, with a unicast reply to its origin", () => {
    const { reason, buf } = ask(defences(), "192.0.2.1", 0);
    assert.equal(reason, R_SERVED_MANYCAST);
    assert.equal(REASON_NAMES[reason], "served_manycast");
    assert.equal(REASON_REPLY[reason], REPLY_STAMPED);
    assert.equal(buf[0]! & 7, 4, "mode 4");
    assert.equal(buf[1], 2, "stratum");
    assert.deepEqual(
      [...buf.subarray(24, 32)],
      [0xec, 0, 0, 0, 0, 0, 0, 0],
      "origin = the request's transmit",
    );
  });

  it("stays silent while unsynchronised (leap alarm, stratum 16)", () => {
    const d = defences();
    assert.equal(
      ask(d, "192.0.2.1", 0, { state: unsynchronisedState(-20, true) }).reason,
      R_DROP_MANYCAST_UNSYNCHRONISED,
    );
    assert.equal(
      ask(d, "192.0.2.1", 10, { state: { ...synced(), leap: 3 } }).reason,
      R_DROP_MANYCAST_UNSYNCHRONISED,
    );
    assert.equal(
      ask(d, "192.0.2.1", 20, { state: { ...synced(), stratum: 16 } }).reason,
      R_DROP_MANYCAST_UNSYNCHRONISED,
    );
  });

  it("never answers a multicast or broadcast source, whatever else holds", () => {
    for (const a of ["224.0.1.1", "239.1.2.3", "255.255.255.255", "ff02::101", "ff05::101"]) {
      assert.ok(isGroupOrBroadcastKey(key(a)), a);
      assert.equal(ask(defences(), a, 0).reason, R_DROP_MANYCAST_SOURCE, a);
      assert.equal(ask(defences(), a, 0, { mode: 6 }).reason, R_DROP_MANYCAST_SOURCE, a);
    }
    for (const a of ["192.0.2.1", "223.255.255.255", "240.0.0.1", "2001:db8::1", "::ffff:192.0.2.1"])
      assert.ok(!isGroupOrBroadcastKey(key(a)), a);
  });

  it("answers only mode 3 on a group: ntpq's mode 6 and symmetric mode 1 are dropped", () => {
    assert.equal(ask(defences(), "192.0.2.1", 0, { mode: 6 }).reason, R_DROP_MANYCAST_MODE);
    assert.equal(ask(defences(), "192.0.2.1", 0, { mode: 1 }).reason, R_DROP_MANYCAST_MODE);
    assert.equal(ask(defences(), "192.0.2.1", 0, { mode: 7 }).reason, R_DROP_MANYCAST_MODE);
  });

  it("applies the access list as to unicast", () => {
    const toml =
      '[[acl.rule]]\naddress = "192.0.2.0/28"\nflags = ["ignore"]\n' +
      '[[acl.rule]]\naddress = "192.0.2.16/28"\nflags = ["noserve", "kod"]\n';
    assert.equal(ask(defences(toml), "192.0.2.1", 0).reason, R_DROP_ACL_IGNORE);
    assert.equal(ask(defences(toml), "192.0.2.17", 0).reason, R_KISS_RSTR);
    assert.equal(ask(defences(toml), "192.0.2.33", 0).reason, R_SERVED_MANYCAST);
  });

  it("gaps and kisses a client that asks too often exactly as unicast does", () => {
    const many = defences();
    const uni = defences();
    const viaGroup: number[] = [];
    const viaUnicast: number[] = [];
    for (let i = 0; i < 40; i++) {
      const t = i * 0.25;
      const r = ask(many, "192.0.2.7", t).reason;
      viaGroup.push(r === R_SERVED_MANYCAST ? R_SERVED_CLIENT : r);
      const buf = request(3, (t * 1000) >>> 0);
      viaUnicast.push(uni.decide(buf, buf.length, key("192.0.2.7"), 40000, T0 + t * 1000, synced()));
    }
    assert.deepEqual(viaGroup, viaUnicast);
    assert.ok(viaGroup.includes(R_KISS_RATE), "a RATE kiss-o'-death among them");
  });
});
