// The survey's input: parseSnapshot (what the fetcher accepts as a format-1 snapshot, and the field it names
// when it refuses one) and snapshotFromMru (a snapshot built from the real MRU list after real touches).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseConfig } from "../../src/config/index.ts";
import { Defences } from "../../src/core/defences.ts";
import { type ServeState, unsynchronisedState } from "../../src/core/serve-state.ts";
import { addressKey } from "../../src/defence/address-key.ts";
import { MRU_FLAG_KOD, MRU_FLAG_LIMITED, MruList } from "../../src/defence/mru.ts";
import { createRng } from "../../src/defence/random.ts";
import { consolidate } from "../../src/survey/consolidate.ts";
import { SurveyError } from "../../src/survey/errors.ts";
import { snapshotFromMru } from "../../src/survey/from-mru.ts";
import { parseSnapshot } from "../../src/survey/validate.ts";
import { handSurvey } from "./fixtures.ts";

function refusal(value: unknown): string {
  try {
    parseSnapshot(value, "http://127.0.0.1:1/api/snapshot");
  } catch (e) {
    assert.ok(e instanceof SurveyError, String(e));
    assert.equal(e.code, "ERR_SURVEY_FORMAT");
    return e.message;
  }
  assert.fail("accepted");
}

describe("parseSnapshot", () => {
  it("accepts snapshots as JSON carries them, dropping unknown fields", () => {
    for (const s of handSurvey()) {
      const wire = JSON.parse(JSON.stringify({ ...s, extra: "from a newer server" }));
      wire.clients[0].future = 1;
      assert.deepEqual(parseSnapshot(wire, "x"), s);
    }
  });

  it("refuses what is not a format-1 snapshot, naming the field", () => {
    const good = () => JSON.parse(JSON.stringify(handSurvey()[0]));
    assert.match(refusal([]), /\(top level\): expected an object/);
    assert.match(
      refusal({ ...good(), format: 2 }),
      /format: format 2 is not understood \(this ntpshield reads format 1\)/,
    );
    assert.match(refusal({ ...good(), format: undefined }), /format: expected 1, got nothing/);
    assert.match(refusal({ ...good(), server: 7 }), /server: expected a string, got 7/);
    assert.match(refusal({ ...good(), takenAt: "now" }), /takenAt: expected a number, got "now"/);
    assert.match(refusal({ ...good(), startedAt: 2e9 }), /startedAt: 2000000000 is after takenAt/);
    assert.match(refusal({ ...good(), counters: null }), /counters: expected an object, got null/);
    assert.match(
      refusal({ ...good(), mru: { ...good().mru, refused: -1 } }),
      /mru\.refused: expected a number of at least 0/,
    );
    assert.match(refusal({ ...good(), clients: {} }), /clients: expected an array/);
    let s = good();
    s.clients[2].count = 0;
    assert.match(refusal(s), /clients\[2\]\.count: expected an integer of at least 1, got 0/);
    s = good();
    s.clients[1].lastSeen = s.clients[1].firstSeen - 1;
    assert.match(refusal(s), /clients\[1\]\.lastSeen: .* is before firstSeen/);
    s = good();
    s.clients[0].address = "10.0.0.256";
    assert.match(refusal(s), /clients\[0\]\.address: not an IP address: "10\.0\.0\.256"/);
    s = good();
    s.clients[0].restrictions = "limited";
    assert.match(refusal(s), /clients\[0\]\.restrictions: expected an array of strings/);
    assert.match(refusal(s), /^http:\/\/127\.0\.0\.1:1\/api\/snapshot: not a format-1 snapshot/);
  });
});

describe("snapshotFromMru: the real MRU list as a survey snapshot", () => {
  it("holds every record with its fields, the list's counters and the restriction names", () => {
    const list = MruList.create(
      { maxEntries: 4, maxAge: 1000, admitProbability: 1, hashSeed: 1 },
      createRng(3),
    );
    const key = (a: string) => addressKey(a)!;
    const t0 = 1_700_000_000;
    // 192.0.2.1 every 2 s from t0 to t0 + 10 (6 packets); 2001:db8::9 twice; three single packets after.
    const events: [string, number][] = [
      ["2001:db8::9", 1],
      ["2001:db8::9", 4],
    ];
    for (let i = 0; i <= 5; i++) events.push(["192.0.2.1", 2 * i]);
    events.sort((x, y) => x[1] - y[1]);
    for (const [a, t] of events) list.touch(key(a), t0 + t, 3, 4, a === "192.0.2.1" ? 40000 : 123);
    list.lock();
    const r = list.lookupLocked(key("192.0.2.1"));
    list.flags[r] = MRU_FLAG_LIMITED | MRU_FLAG_KOD;
    list.gapped[r] = 2;
    list.kods[r] = 1;
    list.unlock();
    list.touch(key("198.51.100.1"), t0 + 11, 3, 4, 1);
    list.touch(key("198.51.100.2"), t0 + 12, 3, 4, 2);
    list.touch(key("198.51.100.3"), t0 + 13, 3, 4, 3); // the list is full: evicts 2001:db8::9, the oldest

    const s = snapshotFromMru(list, {
      server: "test",
      takenAt: t0 + 14,
      startedAt: t0 - 1,
      counters: { received: 20, served: 17, kissed: 1, dropped: 2 },
    });
    assert.deepEqual(parseSnapshot(JSON.parse(JSON.stringify(s)), "x"), s, "a valid format-1 snapshot");
    assert.equal(s.server, "test");
    assert.deepEqual(s.mru, { capacity: 4, size: 4, evicted: 1, recycled: 0, refused: 0 });
    assert.deepEqual(
      s.clients.map((c) => c.address),
      ["198.51.100.3", "198.51.100.2", "198.51.100.1", "192.0.2.1"],
      "newest first",
    );
    const e = s.clients[3]!;
    assert.deepEqual(
      [e.firstSeen - t0, e.lastSeen - t0, e.count, e.avgInterval, e.port, e.gapped, e.kods, e.restrictions],
      [0, 10, 6, 2, 40000, 2, 1, ["limited", "kod"]],
    );
    // The list lost a record, so it covers from its oldest lastSeen (t0 + 10) to t0 + 14.
    const survey = consolidate([s]);
    assert.deepEqual([survey.window.start - t0, survey.window.end - t0], [10, 14]);
    assert.equal(survey.packets, 4);
    assert.equal(survey.bursters.clients, 1);
  });

  it("a client known by a prefix is one client of the survey, shown as the prefix", () => {
    const d = Defences.fromConfig(parseConfig("[callgap]\nenabled = false\n"), { rng: createRng(4) });
    const t0 = 1_700_000_000;
    const state: ServeState = {
      ...unsynchronisedState(-20, true),
      leap: 0,
      stratum: 2,
      refTimeMs: t0 * 1000,
    };
    const send = (address: string, t: number) => {
      const buf = new Uint8Array(48);
      buf[0] = (4 << 3) | 3;
      d.decide(buf, 48, addressKey(address)!, 123, (t0 + t) * 1000, state);
    };
    for (let i = 0; i < 10; i++) send(`2001:db8:1:2::${(i + 1).toString(16)}`, i);
    send("192.0.2.1", 3);
    const s = snapshotFromMru(d.mru, {
      server: "test",
      takenAt: t0 + 20,
      startedAt: t0 - 1,
      counters: { received: 11, served: 11, kissed: 0, dropped: 0 },
    });
    assert.deepEqual(
      s.clients.map((c) => [c.address, c.count]),
      [
        ["192.0.2.1", 1],
        ["2001:db8:1:2::/64", 10],
      ],
      "newest (last touched) first",
    );
    assert.deepEqual(
      parseSnapshot(JSON.parse(JSON.stringify(s)), "x"),
      s,
      "a prefix is a valid client address",
    );
    const bad = JSON.parse(JSON.stringify(s));
    bad.clients[0].address = "2001:db8:1:2::1/64";
    assert.match(refusal(bad), /clients\[0\]\.address: not an IP address: "2001:db8:1:2::1\/64"/);
    const survey = consolidate([s]);
    assert.equal(survey.packets, 11);
    assert.ok(survey.elephants.some((c) => c.address === "2001:db8:1:2::/64"));
  });
});
