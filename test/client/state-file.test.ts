// The DENY/RSTR memory across runs (src/client/state-file.ts).

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ClientError } from "../../src/client/errors.ts";
import {
  activeRefusals,
  addRefusal,
  defaultStatePath,
  MAX_REFUSALS,
  parseState,
  type Refusal,
  readStateFile,
  serializeState,
  writeStateFile,
} from "../../src/client/state-file.ts";

const dir = mkdtempSync(join(tmpdir(), "ntpshield-state-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const NOW = Date.UTC(2026, 0, 1);
const r = (address: string, untilMs: number, sinceMs = NOW): Refusal => ({
  address,
  port: 123,
  host: "ntp.example",
  code: "DENY",
  sinceMs,
  untilMs,
});

describe("state file", () => {
  it("round-trips through the file, creating its directory", () => {
    const file = join(dir, "a", "b", "client-state.json");
    const list = [r("192.0.2.1", NOW + 1000), { ...r("2001:db8::1", NOW + 2000), code: "RSTR" as const }];
    writeStateFile(file, list);
    const back = readStateFile(file);
    assert.deepEqual(back.problems, []);
    assert.deepEqual(
      back.refusals.sort((a, b) => a.address.localeCompare(b.address)),
      list.sort((a, b) => a.address.localeCompare(b.address)),
    );
    assert.match(readFileSync(file, "utf8"), /"until": "2026-01-01T00:00:01.000Z"/);
  });

  it("expired refusals are not in force", () => {
    const list = [r("192.0.2.1", NOW - 1), r("192.0.2.2", NOW + 1)];
    assert.deepEqual(
      activeRefusals(list, NOW).map((x) => x.address),
      ["192.0.2.2"],
    );
  });

  it("one entry per address and port: the latest kiss renews it", () => {
    const list = addRefusal([r("192.0.2.1", NOW + 5)], r("192.0.2.1", NOW + 99));
    assert.equal(list.length, 1);
    assert.equal(list[0]!.untilMs, NOW + 99);
  });

  it("a missing file is empty; a corrupt one is reported and read as empty; bad entries are dropped", () => {
    assert.deepEqual(readStateFile(join(dir, "none.json")), { refusals: [], problems: [] });
    const bad = join(dir, "bad.json");
    writeFileSync(bad, "{not json");
    const p = readStateFile(bad);
    assert.deepEqual(p.refusals, []);
    assert.match(p.problems[0]!, /not JSON/);
    const mixed = parseState(
      JSON.stringify({
        version: 1,
        refusals: [
          {
            address: "192.0.2.1",
            port: 123,
            host: "x",
            code: "DENY",
            since: "2026-01-01T00:00:00Z",
            until: "2026-01-08T00:00:00Z",
          },
          { address: "192.0.2.2", port: 99999, host: "x", code: "DENY", since: "x", until: "y" },
          {
            address: "192.0.2.3",
            port: 123,
            host: "x",
            code: "RATE",
            since: "2026-01-01T00:00:00Z",
            until: "2026-01-08T00:00:00Z",
          },
        ],
      }),
    );
    assert.equal(mixed.refusals.length, 1);
    assert.equal(mixed.problems.length, 2);
    assert.match(parseState('{"version":2,"refusals":[]}').problems[0]!, /version 1/);
  });

  it("an unreadable path is a ClientError with a stable code", () => {
    assert.throws(
      () => readStateFile(dir), // a directory
      (e: unknown) => e instanceof ClientError && e.code === "ERR_CLIENT_STATE_FILE",
    );
    assert.throws(
      () => writeStateFile(join(dir, "bad.json", "x.json"), []), // under a file
      (e: unknown) => e instanceof ClientError && e.code === "ERR_CLIENT_STATE_FILE",
    );
  });

  it("stays small: only the newest entries are kept", () => {
    const many = Array.from({ length: MAX_REFUSALS + 50 }, (_, i) =>
      r(`10.0.${i >> 8}.${i & 255}`, NOW + 1, NOW + i),
    );
    const parsed = parseState(serializeState(many));
    assert.equal(parsed.refusals.length, MAX_REFUSALS);
    assert.ok(parsed.refusals.every((x) => x.sinceMs >= NOW + 50));
  });

  it("lives in /var/lib for root and under XDG_STATE_HOME (or ~/.local/state) otherwise", () => {
    assert.equal(defaultStatePath({}, 0), "/var/lib/ntpshield/client-state.json");
    assert.equal(defaultStatePath({ XDG_STATE_HOME: "/x" }, 1000), "/x/ntpshield/client-state.json");
    assert.equal(
      defaultStatePath({ HOME: "/home/u" }, 1000),
      "/home/u/.local/state/ntpshield/client-state.json",
    );
  });
});
