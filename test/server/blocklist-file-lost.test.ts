// The blocklist database deleted under a running server: the server notices (before a write, and within a
// couple of seconds without one), logs it, recreates the file at its path with every entry, and an address
// added over HTTP afterwards is in that file, and still there after a restart.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { BlocklistStore } from "../../src/server/blocklist/index.ts";
import { waitUntil } from "../helpers/monitor.ts";
import { freeUdpPort, type Ntpshield, startNtpshield } from "../helpers/peers.ts";

const dir = mkdtempSync(join(tmpdir(), "ntpshield-bl-lost-"));
const db = join(dir, "bl.db");
after(() => rmSync(dir, { recursive: true, force: true }));

async function start(): Promise<Ntpshield> {
  const port = await freeUdpPort();
  return startNtpshield({
    listen: [`127.0.0.1:${port}`],
    configToml: ["[blocklist]", "enabled = true", `path = ${JSON.stringify(db)}`].join("\n"),
  });
}

function post(base: string, address: string): Promise<Response> {
  return fetch(`${base}/api/blocklist`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ address, reason: `test ${address}` }),
  });
}

function onDisk(): string[] {
  const store = BlocklistStore.open(db, { create: false, pruneIntervalMs: 0 });
  try {
    return store.list().map((e) => e.address);
  } finally {
    store.close();
  }
}

function deleteFiles(): void {
  for (const f of [db, `${db}-wal`, `${db}-shm`]) rmSync(f, { force: true });
}

describe("blocklist database deleted under a running server", () => {
  test("recreated with every entry; a write after it lands in the file at the path, kept across a restart", async () => {
    let server = await start();
    try {
      const base = server.httpUrl!;
      assert.equal((await post(base, "192.0.2.50")).status, 201);
      deleteFiles();
      const r = await post(base, "192.0.2.51");
      assert.equal(r.status, 201, await r.text());
      assert.ok(existsSync(db), "the file is back at its path");
      assert.deepEqual(onDisk().sort(), ["192.0.2.50", "192.0.2.51"]);
      assert.ok(
        server.records.some(
          (x) => String(x["msg"]).includes("no longer at its path") && x["level"] === "error",
        ),
        "logged as an error",
      );

      // Without a write: the periodic check finds it.
      deleteFiles();
      await waitUntil("recreated by the timer", async () => existsSync(db), 6000);
      assert.deepEqual(onDisk().sort(), ["192.0.2.50", "192.0.2.51"]);
      assert.equal((await post(base, "192.0.2.52")).status, 201);
    } finally {
      await server.stop();
    }
    server = await start();
    try {
      const list = (await (await fetch(`${server.httpUrl}/api/blocklist`)).json()) as {
        entries: { address: string }[];
      };
      assert.deepEqual(list.entries.map((e) => e.address).sort(), ["192.0.2.50", "192.0.2.51", "192.0.2.52"]);
    } finally {
      await server.stop();
    }
  });

  test("a file that cannot be recreated (a directory now stands at its path): writes answer 503, nothing is acknowledged", async () => {
    const server = await start();
    try {
      const base = server.httpUrl!;
      assert.equal((await post(base, "192.0.2.60")).status, 201);
      deleteFiles();
      // Even root cannot make a database where a directory is.
      mkdirSync(db);
      try {
        const r = await post(base, "192.0.2.61");
        assert.equal(r.status, 503, await r.text());
        const del = await fetch(`${base}/api/blocklist?address=192.0.2.60`, { method: "DELETE" });
        assert.equal(del.status, 503, await del.text());
      } finally {
        rmSync(db, { recursive: true, force: true });
      }
      // The path free again: the next write recreates the file with what was acknowledged, and itself.
      const again = await post(base, "192.0.2.62");
      assert.equal(again.status, 201, await again.text());
      assert.deepEqual(onDisk().sort(), [
        "192.0.2.50",
        "192.0.2.51",
        "192.0.2.52",
        "192.0.2.60",
        "192.0.2.62",
      ]);
    } finally {
      await server.stop();
    }
  });
});
