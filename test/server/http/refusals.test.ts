// How the monitoring endpoint refuses (docs/monitoring.md), over real sockets to an HttpMonitor in this
// process: a header over 8 KiB is answered 431 and the connection closed, a body declared too large with
// `Expect: 100-continue` is refused (413) before the client is invited to send it, and a blocklist database
// that fails answers 503 to reads as to writes.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseConfig } from "../../../src/config/index.ts";
import { BlocklistStore } from "../../../src/server/blocklist/index.ts";
import { HttpMonitor, type MonitorSource } from "../../../src/server/http/index.ts";
import { createLogger } from "../../../src/server/log.ts";
import { httpRequest } from "../../helpers/monitor.ts";

interface RawAnswer {
  /** Everything the server wrote. */
  text: string;
  /** The connection was closed by the server (it did not wait for us to close it). */
  closedByServer: boolean;
}

/** Writes `request` as is and collects what comes back until the server closes or `ms` pass. */
function raw(port: number, request: string, ms = 3000): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    let text = "";
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closedByServer: false });
    }, ms);
    socket.on("data", (d: Buffer) => {
      text += d.toString("latin1");
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ text, closedByServer: true });
    });
    socket.on("end", () => socket.end());
    socket.write(request);
  });
}

const statusLines = (text: string) => text.match(/^HTTP\/1\.1 \d{3} [^\r]*/gm) ?? [];

describe("monitoring endpoint: refusals", () => {
  const dir = mkdtempSync(join(tmpdir(), "ntpshield-http-refusals-"));
  // A blocklist database that fails: opened, then closed under the server's feet.
  const store = BlocklistStore.open(join(dir, "blocklist.db"), { pruneIntervalMs: 0 });
  store.close();
  const source: MonitorSource = {
    addresses: [],
    threads: 1,
    defences: undefined,
    blocklistStore: store,
    state: undefined,
    stats: () => {
      throw new Error("not read here");
    },
    blockAddress: (write) => store.add(write),
    unblockAddress: (address) => store.remove(address),
  };
  const monitor = new HttpMonitor({
    source,
    config: parseConfig('[http]\nlisten = "127.0.0.1:0"\n[blocklist]\nenabled = true\n'),
    log: createLogger("error", () => {}),
    startedAtMs: Date.now(),
  });
  let base: string;
  let port: number;
  before(async () => {
    base = `http://${await monitor.listen()}`;
    port = Number(new URL(base).port);
  });
  after(async () => {
    await monitor.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("a blocklist database failure is 503 for GET as for POST and DELETE", async () => {
    const get = await httpRequest(`${base}/api/blocklist`);
    assert.equal(get.status, 503, get.text);
    assert.match((get.json() as { error: string }).error, /blocklist database failed/);
    const post = await httpRequest(`${base}/api/blocklist`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"address":"192.0.2.1"}',
    });
    assert.equal(post.status, 503, post.text);
    const del = await httpRequest(`${base}/api/blocklist?address=192.0.2.1`, { method: "DELETE" });
    assert.equal(del.status, 503, del.text);
  });

  test("a header over 8 KiB is answered 431 and the connection closed", async () => {
    const r = await raw(
      port,
      `GET /favicon.ico HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${"x".repeat(10_000)}\r\n\r\n`,
    );
    assert.deepEqual(statusLines(r.text), ["HTTP/1.1 431 Request Header Fields Too Large"]);
    assert.ok(r.closedByServer, "closed by the server");
    const ok = await raw(port, "GET /favicon.ico HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    assert.deepEqual(statusLines(ok.text), ["HTTP/1.1 204 No Content"], "a header within bounds is answered");
  });

  test("Expect: 100-continue: a body declared too large is refused before it is invited", async () => {
    const head = (length: number, extra = "") =>
      "POST /api/blocklist HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
      `Content-Length: ${length}\r\nExpect: 100-continue\r\n${extra}\r\n`;
    const big = await raw(port, head(10 * 1024 * 1024));
    assert.deepEqual(statusLines(big.text), ["HTTP/1.1 413 Payload Too Large"], "413, never 100 Continue");
    assert.match(big.text, /a request body is at most 4096 bytes/);
    assert.ok(big.closedByServer, "and the connection closed");
    // A body within bounds is invited, then answered (503: this database fails).
    const body = '{"address":"192.0.2.1"}';
    const small = await raw(port, `${head(body.length, "Connection: close\r\n")}${body}`);
    assert.deepEqual(statusLines(small.text), ["HTTP/1.1 100 Continue", "HTTP/1.1 503 Service Unavailable"]);
  });
});
