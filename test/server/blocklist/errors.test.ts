// What the blocklist database says when it cannot be used: a missing file, a directory that is not
// there, a file that is not SQLite, another program's database, a newer schema. Each error has its code
// and a message that names the file.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, describe, it } from "node:test";
import {
  BlocklistStore,
  type BlocklistStoreError,
  blocklistPathProblem,
} from "../../../src/server/blocklist/index.ts";

const dir = mkdtempSync(join(tmpdir(), "ntpshield-blocklist-errors-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const freshFile = () => join(dir, `store-${++files}.db`);

const isStoreError = (code: string, re?: RegExp) => (e: unknown) => {
  assert.equal((e as BlocklistStoreError).code, code, (e as Error).message);
  if (re) assert.match((e as Error).message, re);
  return true;
};

describe("BlocklistStoreError", () => {
  it("says clearly when the file is missing, unreachable, or not a blocklist", () => {
    const missing = join(dir, "missing.db");
    assert.throws(
      () => BlocklistStore.open(missing, { create: false }),
      isStoreError("ERR_BLOCKLIST_MISSING", /no blocklist database at .*missing\.db/),
    );
    assert.throws(
      () => BlocklistStore.open(join(dir, "no-such-dir", "x.db")),
      isStoreError("ERR_BLOCKLIST_OPEN", /the directory .*no-such-dir does not exist/),
    );
    const junk = join(dir, "junk.db");
    writeFileSync(junk, "this is not an SQLite file, but it is long enough to look like one".repeat(20));
    assert.throws(() => BlocklistStore.open(junk), isStoreError("ERR_BLOCKLIST_NOT_OURS", /junk\.db/));
    const foreign = join(dir, "foreign.db");
    const f = new DatabaseSync(foreign);
    f.exec("CREATE TABLE accounts (id INTEGER)");
    f.close();
    assert.throws(
      () => BlocklistStore.open(foreign),
      isStoreError("ERR_BLOCKLIST_NOT_OURS", /not an ntpshield blocklist/),
    );
    const newer = freshFile();
    BlocklistStore.open(newer, { pruneIntervalMs: 0 }).close();
    const n = new DatabaseSync(newer);
    n.exec("PRAGMA user_version = 99");
    n.close();
    assert.throws(
      () => BlocklistStore.open(newer),
      isStoreError("ERR_BLOCKLIST_NOT_OURS", /newer ntpshield/),
    );
  });

  it("says what a path is when it is not a file SQLite can open: a directory, a device", () => {
    assert.throws(
      () => BlocklistStore.open(dir),
      isStoreError("ERR_BLOCKLIST_OPEN", /: it is a directory, not a database file$/),
    );
    assert.throws(
      () => BlocklistStore.open("/dev/null"),
      isStoreError(
        "ERR_BLOCKLIST_OPEN",
        /^cannot open blocklist database \/dev\/null: it is a character device/,
      ),
    );
  });

  it("blocklistPathProblem finds the same without opening or creating anything", () => {
    const fresh = freshFile();
    assert.equal(blocklistPathProblem(fresh), undefined, "a new file in a writable directory");
    assert.equal(existsSync(fresh), false);
    assert.equal(blocklistPathProblem(":memory:"), undefined);
    assert.match(blocklistPathProblem(join(dir, "no-such-dir", "x.db")) ?? "", /does not exist/);
    assert.equal(blocklistPathProblem(dir), "it is a directory, not a database file");
    assert.equal(blocklistPathProblem("/dev/null"), "it is a character device, not a database file");
    const junk = join(dir, "junk-header.db");
    writeFileSync(junk, "not SQLite at all");
    assert.equal(blocklistPathProblem(junk), "it is not an SQLite database");
    const ours = freshFile();
    BlocklistStore.open(ours, { pruneIntervalMs: 0 }).close();
    assert.equal(blocklistPathProblem(ours), undefined, "an existing blocklist");
  });
});
