// The monitoring endpoint (docs/monitoring.md) of a real server on loopback, under real NTP traffic from
// several 127/8 addresses whose fate the defaults make exact (leak = 0): /metrics parses as Prometheus text
// and counts what was sent, /api/clients shows the MRU list with ntpq's filters and sort orders,
// /api/snapshot is what the survey reads, and the blocklist can be read by anyone who reaches the socket
// but changed only from [control] allow (403 from 127.0.0.2), and says 409 when it is disabled.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseSnapshot } from "../../../src/survey/validate.ts";
import { httpRequest, metric, parsePrometheus, sendFrom, waitUntil } from "../../helpers/monitor.ts";
import {
  freeUdpPort,
  killAllPeers,
  type Ntpshield,
  openPort123Sandbox,
  type PortSandbox,
  REPO_ROOT,
  run,
  startNtpshield,
} from "../../helpers/peers.ts";

after(killAllPeers);

interface Row {
  address: string;
  port: number;
  lstint: number;
  avgint: number;
  rstr: number;
  r: string;
  mode: number;
  version: number;
  count: number;
  drop: number;
  kods: number;
  firstSeen: number;
  lastSeen: number;
  lastReason: string;
}

async function getJson<T>(url: string): Promise<T> {
  const r = await fetch(url);
  assert.equal(r.status, 200, `${url}: ${r.status} ${await r.clone().text()}`);
  assert.match(r.headers.get("content-type") ?? "", /^application\/json/);
  return (await r.json()) as T;
}

async function clients(base: string, query = ""): Promise<Row[]> {
  return (await getJson<{ clients: Row[] }>(`${base}/api/clients${query}`)).clients;
}

describe("monitoring endpoint under real traffic", () => {
  let server: Ntpshield;
  let base: string;
  let port: number;
  const replies = new Map<string, Buffer[]>();

  before(async () => {
    port = await freeUdpPort();
    server = await startNtpshield({
      listen: [`127.0.0.1:${port}`],
      threads: 2,
      // leak = 0: every gapped request is refused, so each client's fate is exact (requests sent at once:
      // 3 answered by the fast allowance, then a RATE KoD, then drops until callgap.average has passed).
      configToml: [
        "[callgap]",
        "leak = 0",
        "[blocklist]",
        "enabled = true",
        'path = "blocklist.db"',
        "[[acl.rule]]",
        'address = "127.0.0.15"',
        'flags = ["noserve"]',
        "[[acl.rule]]",
        'address = "127.0.0.16"',
        'flags = ["ignore"]',
      ].join("\n"),
    });
    assert.ok(server.httpUrl, "the listening record names the endpoint");
    base = server.httpUrl;
    replies.set("127.0.0.11", await sendFrom("127.0.0.11", port, 1));
    replies.set("127.0.0.12", await sendFrom("127.0.0.12", port, 20));
    replies.set("127.0.0.13", await sendFrom("127.0.0.13", port, 3));
    replies.set("127.0.0.14", await sendFrom("127.0.0.14", port, 1, { packet: Buffer.alloc(10, 0x23) }));
    replies.set("127.0.0.15", await sendFrom("127.0.0.15", port, 2));
    replies.set("127.0.0.16", await sendFrom("127.0.0.16", port, 2));
    replies.set("127.0.0.17", await sendFrom("127.0.0.17", port, 4));
  });
  after(async () => {
    await server?.stop();
  });

  test("the listening record names the bound port, and the client saw what the server says it did", () => {
    const rec = server.records.find((r) => r["msg"] === "listening")!;
    assert.match(String(rec["http"]), /^127\.0\.0\.1:[1-9][0-9]*$/);
    assert.notEqual(rec["http"], "127.0.0.1:11124", "port 0 asked for a free port");
    assert.equal(replies.get("127.0.0.11")!.length, 1);
    assert.equal(replies.get("127.0.0.12")!.length, 4, "3 answers and one RATE kiss");
    const kiss = replies.get("127.0.0.12")!.find((b) => b[1] === 0);
    assert.ok(kiss, "a kiss-o'-death (stratum 0) among the replies");
    assert.equal(kiss.toString("latin1", 12, 16), "RATE");
    assert.equal(replies.get("127.0.0.14")!.length, 0);
    assert.equal(replies.get("127.0.0.15")!.length, 0);
    assert.equal(replies.get("127.0.0.16")!.length, 0);
  });

  test("/metrics is Prometheus text and counts exactly what was sent", async () => {
    const r = await fetch(`${base}/metrics`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    const m = parsePrometheus(await r.text());
    for (const [name, f] of m) {
      assert.ok(f.type !== "" && f.help !== "", `${name} has TYPE and HELP`);
      assert.ok(f.samples.length > 0, `${name} has samples`);
      if (f.type === "counter") assert.match(name, /_total$/, `${name}: counters end in _total`);
    }
    // 1 + 20 + 3 + 1 + 2 + 2 + 4 datagrams.
    assert.equal(metric(m, "ntp_server_received_packets_total"), 33);
    assert.equal(metric(m, "ntp_server_accepted_packets_total"), 1 + 3 + 3 + 3);
    assert.equal(
      metric(m, "ntp_server_rate_limited_packets_total"),
      17 + 1,
      "all of .12's gapped, .17's last",
    );
    assert.equal(metric(m, "ntp_server_denied_packets_total"), 2, "127.0.0.15 is noserve");
    assert.equal(metric(m, "ntp_server_ignored_packets_total"), 1 + 2, "the runt and 127.0.0.16 (ignore)");
    assert.equal(metric(m, "ntp_server_kod_packets_total", { code: "RATE" }), 2);
    assert.equal(metric(m, "ntp_server_kod_packets_total", { code: "RSTR" }), 0);
    assert.equal(metric(m, "ntp_server_kod_limited_packets_total"), 16);
    assert.equal(metric(m, "ntp_server_response_send_errors_total"), 0);
    assert.equal(metric(m, "ntpshield_packets_total", { reason: "malformed_too_short" }), 1);
    assert.equal(metric(m, "ntpshield_packets_total", { reason: "drop_acl_ignore" }), 2);
    const byReason = m.get("ntpshield_packets_total")!.samples.reduce((a, s) => a + s.value, 0);
    assert.equal(byReason, 33, "the reasons add up to received");
    assert.equal(
      metric(m, "ntpshield_mru_records"),
      5,
      ".11 .12 .13 .15 .17: no record for a runt or ignore",
    );
    assert.equal(metric(m, "ntpshield_mru_capacity"), 100_000);
    assert.equal(metric(m, "ntpshield_mru_evicted_total"), 0);
    assert.equal(metric(m, "ntpshield_blocklist_enabled"), 1);
    assert.equal(metric(m, "ntpshield_blocklist_entries"), 0);
    assert.equal(metric(m, "ntp_system_stratum"), 10);
    assert.ok(metric(m, "ntp_uptime_seconds", { version: "0.1.0" }) > 0);
  });

  test("/api/stats says the same as /metrics", async () => {
    const s = await getJson<{
      packets: Record<string, unknown>;
      responses: Record<string, number>;
      mru: { size: number };
      clock: { stratum: number; refid: string };
      addresses: string[];
      threads: number;
    }>(`${base}/api/stats`);
    assert.deepEqual(s.packets, {
      received: 33,
      accepted: 10,
      denied: 2,
      rateLimited: 18,
      ignored: 3,
      kod: { RATE: 2, RSTR: 0, DENY: 0 },
      kodLimited: 16,
      sendErrors: 0,
      socketErrors: 0,
      kernelDrops: 0,
    });
    assert.deepEqual(s.responses, { served: 10, kissed: 2, dropped: 21 });
    assert.equal(s.mru.size, 5);
    // At stratum 10 the refid names an upstream: the configured "LOCL" is shown as the address it spells.
    assert.deepEqual(s.clock && [s.clock.stratum, s.clock.refid], [10, "76.79.67.76"]);
    assert.deepEqual(s.addresses, [`127.0.0.1:${port}`]);
    assert.equal(s.threads, 2);
  });

  test("/api/clients: the MRU list in mrulist's columns, newest first", async () => {
    const rows = await clients(base);
    assert.deepEqual(
      rows.map((c) => c.address),
      ["127.0.0.17", "127.0.0.15", "127.0.0.13", "127.0.0.12", "127.0.0.11"],
    );
    const by = new Map(rows.map((c) => [c.address, c]));
    const e = by.get("127.0.0.12")!;
    assert.equal(e.count, 20);
    assert.equal(e.drop, 17, "refused by the call-gap: the kissed one and the 16 after it");
    assert.equal(e.kods, 1);
    assert.equal(e.rstr, 0x20, "last packet: limited, no KoD (the limiter held it back)");
    assert.equal(e.r, "L");
    assert.equal(e.lastReason, "drop_kod_limited");
    assert.equal([e.mode, e.version].join(), "3,4");
    assert.ok(e.lstint >= 0 && e.lstint < 60, `lstint ${e.lstint}`);
    assert.ok(Math.abs(e.avgint - (e.lastSeen - e.firstSeen) / 19) < 1e-9, "ntpq's avgint");
    const k = by.get("127.0.0.17")!;
    assert.equal(k.rstr, 0x420, "last packet kissed: limited and kod");
    assert.equal(k.r, "K");
    assert.equal(by.get("127.0.0.15")!.rstr, 0x2, "noserve");
    assert.equal(by.get("127.0.0.11")!.r, ".");
    assert.ok(!by.has("127.0.0.14") && !by.has("127.0.0.16"));
  });

  test("/api/clients: ntpq's filters, sort orders and a limit", async () => {
    const addrs = async (q: string) => (await clients(base, q)).map((c) => c.address);
    assert.deepEqual(await addrs("?limited"), ["127.0.0.17", "127.0.0.12"]);
    assert.deepEqual(await addrs("?kod=1"), ["127.0.0.17"]);
    assert.deepEqual(await addrs("?mincount=3"), ["127.0.0.17", "127.0.0.13", "127.0.0.12"]);
    assert.deepEqual(await addrs("?mindrop=2"), ["127.0.0.12"]);
    assert.deepEqual(await addrs("?sort=-count"), [
      "127.0.0.12",
      "127.0.0.17",
      "127.0.0.13",
      "127.0.0.15",
      "127.0.0.11",
    ]);
    assert.deepEqual(await addrs("?sort=count&limit=2"), ["127.0.0.11", "127.0.0.15"]);
    assert.deepEqual(await addrs("?sort=addr"), [
      "127.0.0.11",
      "127.0.0.12",
      "127.0.0.13",
      "127.0.0.15",
      "127.0.0.17",
    ]);
    assert.deepEqual((await addrs("?sort=-addr"))[0], "127.0.0.17");
    assert.deepEqual(await addrs("?sort=-lstint"), [
      "127.0.0.11",
      "127.0.0.12",
      "127.0.0.13",
      "127.0.0.15",
      "127.0.0.17",
    ]);
    const avg = (await clients(base, "?sort=avgint&mincount=2")).map((c) => c.avgint);
    assert.deepEqual(
      avg,
      [...avg].sort((a, b) => a - b),
    );
    assert.deepEqual(await addrs("?maxlstint=0.000001"), [], "nobody within a microsecond");
    assert.equal((await addrs("?minlstint=0.000001")).length, 5);
    for (const bad of ["?sort=score", "?mincount=-1", "?limit=x", "?frobnicate=1", "?kod=maybe"]) {
      const r = await fetch(`${base}/api/clients${bad}`);
      assert.equal(r.status, 400, bad);
      assert.equal(typeof ((await r.json()) as { error: unknown }).error, "string");
    }
  });

  test("/api/snapshot is a format-1 survey snapshot of the whole list", async () => {
    const raw = await getJson<unknown>(`${base}/api/snapshot`);
    const snap = parseSnapshot(raw, base);
    assert.equal(snap.format, 1);
    assert.equal(snap.server, `127.0.0.1:${port}`);
    assert.deepEqual(snap.counters, { received: 33, served: 10, kissed: 2, dropped: 21 });
    assert.equal(snap.clients.length, 5);
    assert.deepEqual(snap.mru, { capacity: 100_000, size: 5, evicted: 0, recycled: 0, refused: 0 });
    const e = snap.clients.find((c) => c.address === "127.0.0.12")!;
    assert.equal(e.count, 20);
    assert.equal(e.gapped, 17);
    assert.deepEqual(e.restrictions, ["limited", "kod"]);
    assert.ok(snap.takenAt >= e.lastSeen && snap.startedAt <= e.firstSeen);
    assert.ok(Math.abs(snap.takenAt - Date.now() / 1000) < 5);
  });

  test("pages, methods and unknown paths", async () => {
    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-security-policy") ?? "", /script-src 'self'/);
    const html = await page.text();
    assert.match(html, /<script src="\/dashboard\.js"/);
    assert.doesNotMatch(html, /https?:\/\//, "no asset from anywhere else");
    assert.equal((await fetch(`${base}/dashboard.js`)).status, 200);
    assert.equal((await fetch(`${base}/dashboard.css`)).status, 200);
    assert.equal((await fetch(`${base}/nothing`)).status, 404);
    const post = await fetch(`${base}/metrics`, { method: "POST" });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD");
    const head = await fetch(`${base}/api/stats`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), "");
  });

  test("the blocklist: add from 127.0.0.1 stops the address at once, 403 from 127.0.0.2, remove serves it again", async () => {
    const list = async () =>
      (await getJson<{ count: number; entries: { address: string }[] }>(`${base}/api/blocklist`)).entries.map(
        (e) => e.address,
      );
    assert.deepEqual(await list(), []);
    assert.equal((await sendFrom("127.0.0.18", port, 1)).length, 1, "served before");

    const add = await fetch(`${base}/api/blocklist`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ address: "127.0.0.18", reason: "test elephant", duration: "1h" }),
    });
    assert.equal(add.status, 201, await add.clone().text());
    const entry = (await add.json()) as {
      address: string;
      reason: string;
      source: string;
      expiresMs: number;
    };
    assert.equal(entry.address, "127.0.0.18");
    assert.equal(entry.reason, "test elephant");
    assert.equal(entry.source, "manual");
    assert.ok(Math.abs(entry.expiresMs - (Date.now() + 3_600_000)) < 60_000);
    await waitUntil(
      "127.0.0.18 dropped",
      async () => (await sendFrom("127.0.0.18", port, 1, { waitMs: 200 })).length === 0,
    );
    assert.deepEqual(await list(), ["127.0.0.18"]);
    const m = parsePrometheus(await (await fetch(`${base}/metrics`)).text());
    assert.equal(metric(m, "ntpshield_blocklist_entries"), 1);
    // The database's own figures: the manual add was one committed write, nothing queued, dropped or failed.
    assert.ok(metric(m, "ntpshield_blocklist_db_writes_total", { result: "committed" }) >= 1);
    assert.ok(metric(m, "ntpshield_blocklist_db_transactions_total") >= 1);
    assert.equal(metric(m, "ntpshield_blocklist_db_writes_total", { result: "dropped_queue_full" }), 0);
    assert.equal(metric(m, "ntpshield_blocklist_db_errors_total"), 0);
    assert.ok(metric(m, "ntpshield_blocklist_db_queued") >= 0);
    assert.ok(metric(m, "ntpshield_packets_total", { reason: "drop_blocklisted" }) >= 1);
    assert.ok(metric(m, "ntp_server_denied_packets_total") >= 3, "blocklisted packets are denied");

    // From an address outside [control] allow (127.0.0.1 and ::1 by default): refused, nothing changes.
    const other = await httpRequest(`${base}/api/blocklist?address=127.0.0.18`, {
      method: "DELETE",
      localAddress: "127.0.0.2",
    });
    assert.equal(other.status, 403, other.text);
    assert.match((other.json() as { error: string }).error, /127\.0\.0\.2.*\[control\] allow/);
    const otherAdd = await httpRequest(`${base}/api/blocklist`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ address: "127.0.0.19" }),
      localAddress: "127.0.0.2",
    });
    assert.equal(otherAdd.status, 403);
    const otherRead = await httpRequest(`${base}/api/blocklist`, { localAddress: "127.0.0.2" });
    assert.equal(otherRead.status, 200, "reading is not a control feature");
    assert.deepEqual(await list(), ["127.0.0.18"]);

    const del = await fetch(`${base}/api/blocklist?address=127.0.0.18`, { method: "DELETE" });
    assert.equal(del.status, 200);
    assert.deepEqual(await del.json(), { removed: true, address: "127.0.0.18" });
    await waitUntil(
      "127.0.0.18 served again",
      async () => (await sendFrom("127.0.0.18", port, 1)).length === 1,
    );
    assert.deepEqual(await list(), []);
    assert.equal((await fetch(`${base}/api/blocklist/127.0.0.18`, { method: "DELETE" })).status, 404);
  });

  test("blocklist writes are checked: JSON only, bounded, no cross-site or rebinding requests", async () => {
    const post = (body: string, headers: Record<string, string> = {}) =>
      httpRequest(`${base}/api/blocklist`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body,
      });
    assert.equal((await post('{"address":"127.0.0.19"}', { "content-type": "text/plain" })).status, 415);
    assert.equal(
      (await post("address=127.0.0.19", { "content-type": "application/x-www-form-urlencoded" })).status,
      415,
    );
    assert.equal((await post("{not json")).status, 400);
    assert.equal((await post('{"address":"not-an-address"}')).status, 400);
    assert.equal((await post('{"address":"127.0.0.19","duration":"forever"}')).status, 400);
    assert.equal((await post('{"address":"127.0.0.19","colour":"red"}')).status, 400);
    const big = JSON.stringify({ address: "127.0.0.19", reason: "x".repeat(5000) });
    assert.equal((await post(big)).status, 413, "declared too large");
    assert.equal((await post(big, { "transfer-encoding": "chunked" })).status, 413, "found too large");
    assert.equal((await post('{"address":"127.0.0.19"}', { origin: "http://evil.example" })).status, 403);
    assert.equal((await post('{"address":"127.0.0.19"}', { host: "evil.example" })).status, 403);
    const list = await getJson<{ count: number }>(`${base}/api/blocklist`);
    assert.equal(list.count, 0, "none of those wrote anything");
    const ok = await post('{"address":"::ffff:127.0.0.19"}', { host: "localhost" });
    assert.equal(ok.status, 201, ok.text);
    assert.equal((ok.json() as { address: string }).address, "127.0.0.19", "stored in canonical form");
    const warned = (ok.json() as { warnings: string[] }).warnings;
    assert.equal(warned.length, 1, "a warning before the operator blocks their own machine");
    assert.match(warned[0]!, /127\.0\.0\.19 is a loopback address \(given as ::ffff:127\.0\.0\.19/);
    assert.equal((await httpRequest(`${base}/api/blocklist/127.0.0.19`, { method: "DELETE" })).status, 200);
  });

  test("blocklist entries are checked as the CLI checks them: no unspecified, multicast or zoned address, a clean reason", async () => {
    const post = async (o: Record<string, unknown>) => {
      const r = await httpRequest(`${base}/api/blocklist`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(o),
      });
      return { status: r.status, error: (r.json() as { error?: string }).error ?? "" };
    };
    const refused: [Record<string, unknown>, RegExp][] = [
      [{ address: "0.0.0.0" }, /unspecified/],
      [{ address: "::" }, /unspecified/],
      [{ address: "255.255.255.255" }, /broadcast/],
      [{ address: "224.0.1.1" }, /multicast/],
      [{ address: "ff02::101" }, /multicast/],
      [{ address: "fe80::1%eth0" }, /zones are not kept/],
      [{ address: "192.0.2.1", reason: "x".repeat(201) }, /201 characters, at most 200/],
      [{ address: "192.0.2.1", reason: "bad\u0000router" }, /U\+0000 at position 4/],
      [{ address: "192.0.2.1", reason: "two\nlines" }, /U\+000A at position 4/],
    ];
    for (const [body, why] of refused) {
      const r = await post(body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(r.error, why);
    }
    assert.equal((await getJson<{ count: number }>(`${base}/api/blocklist`)).count, 0, "nothing written");
    const ok = await httpRequest(`${base}/api/blocklist`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ address: "192.0.2.1", reason: "y".repeat(200) }),
    });
    assert.equal(ok.status, 201, ok.text);
    assert.deepEqual((ok.json() as { warnings: string[] }).warnings, []);
    assert.equal((await httpRequest(`${base}/api/blocklist/192.0.2.1`, { method: "DELETE" })).status, 200);
  });
});

describe("monitoring endpoint: blocklist disabled, [control] allow reloaded", () => {
  const dir = mkdtempSync(join(tmpdir(), "ntpshield-http-"));
  const config = join(dir, "ntpshield.toml");
  let server: Ntpshield | undefined;
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("409 while the blocklist is off; a reloaded allow list takes effect at once", async () => {
    const port = await freeUdpPort();
    const write = (allow: string[]) =>
      writeFileSync(
        config,
        `[server]\nlisten = ["127.0.0.1:${port}"]\n[control]\nallow = ${JSON.stringify(allow)}\n`,
      );
    write(["127.0.0.1", "127.0.0.2/32"]);
    server = await startNtpshield({ listen: [], extraArgs: ["--config", config] });
    const base = server.httpUrl!;
    const get = await fetch(`${base}/api/blocklist`);
    assert.equal(get.status, 409);
    assert.match(((await get.json()) as { error: string }).error, /disabled/);
    const post = () =>
      httpRequest(`${base}/api/blocklist`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: '{"address":"192.0.2.1"}',
        localAddress: "127.0.0.2",
      });
    assert.equal((await post()).status, 409, "127.0.0.2 is allowed here: it hears that the list is off");
    const m = parsePrometheus(await (await fetch(`${base}/metrics`)).text());
    assert.equal(metric(m, "ntpshield_blocklist_enabled"), 0);

    write(["127.0.0.1"]);
    server.child.kill("SIGHUP");
    await waitUntil("the reload", () => server!.records.some((r) => r["msg"] === "configuration reloaded"));
    assert.equal((await post()).status, 403, "no longer allowed");
  });
});

describe("monitoring endpoint at start-up", () => {
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, ["src/cli/main.ts", ...args], {
      cwd: REPO_ROOT,
      encoding: "utf8",
      timeout: 15_000,
    });

  test("an HTTP address in use is a clear start-up error", async () => {
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(0, "127.0.0.1", () => r()));
    const httpPort = (holder.address() as { port: number }).port;
    try {
      const port = await freeUdpPort();
      const r = cli(
        "serve",
        "--listen",
        `127.0.0.1:${port}`,
        "--threads",
        "1",
        "--http",
        `127.0.0.1:${httpPort}`,
      );
      assert.equal(r.status, 1, r.stdout + r.stderr);
      assert.match(r.stderr, new RegExp(`monitoring endpoint 127\\.0\\.0\\.1:${httpPort}.*in use`));
      assert.match(r.stdout, /ERR_HTTP_BIND_IN_USE/);
    } finally {
      holder.close();
    }
  });

  test("a bad --http is a configuration error naming the flag", () => {
    const r = cli("serve", "--http", "localhost:80");
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--http: must be an IP address and port/);
  });

  test("--http off: no endpoint, and the listening record says so", async () => {
    const port = await freeUdpPort();
    const s = await startNtpshield({ listen: [`127.0.0.1:${port}`], http: "off" });
    try {
      assert.equal(s.httpUrl, undefined);
      assert.equal(s.records.find((r) => r["msg"] === "listening")?.["http"], "off");
    } finally {
      await s.stop();
    }
  });
});

describe("ntpq, ntpshield clients/stats and /metrics show the same picture", () => {
  let sandbox: PortSandbox | undefined;
  let server: Ntpshield | undefined;
  after(async () => {
    await server?.stop();
    await sandbox?.close();
  });

  test("the same clients, counts, flags and drops", { timeout: 90_000 }, async () => {
    // ntpq speaks only to port 123: the server runs on 127.0.x.y:123 (root) or in a network namespace,
    // and every command runs where it can reach it (sandbox.wrap).
    sandbox = await openPort123Sandbox();
    const sb = sandbox;
    server = await startNtpshield({
      listen: [`${sb.host}:123`],
      sandbox: sb,
      configToml: "[callgap]\nleak = 0\n",
    });
    const url = server.httpUrl!;
    const traffic = async (from: string, n: number) => {
      const script = `
const s = require("node:dgram").createSocket("udp4");
s.bind(0, ${JSON.stringify(from)}, () => {
  for (let i = 0; i < ${n}; i++) { const b = Buffer.alloc(48); b[0] = 0x23; b.writeUInt32BE(i, 44); s.send(b, 123, ${JSON.stringify(sb.host)}); }
  setTimeout(() => s.close(), 300);
});`;
      const r = await run(sb.wrap([process.execPath, "-e", script]), 15_000);
      assert.equal(r.code, 0, r.output);
    };
    await traffic("127.0.0.61", 12);
    await traffic("127.0.0.62", 3);
    const inside = async (argv: string[]) => {
      const r = await run(sb.wrap(argv), 30_000);
      assert.equal(r.code, 0, `${argv.join(" ")}:\n${r.output}`);
      return r.stdout;
    };
    const ntpq = await inside([join(REPO_ROOT, ".peers", "bin", "ntpq"), "-n", "-c", "mrulist", sb.host]);
    const ours = JSON.parse(
      await inside([process.execPath, join(REPO_ROOT, "src/cli/main.ts"), "clients", "--url", url, "--json"]),
    ) as { clients: Row[] };
    for (const address of ["127.0.0.61", "127.0.0.62"]) {
      // ntpq: lstint avgint rstr r m v count score drop rport remote-address
      const line = ntpq.split("\n").find((l) => l.trim().endsWith(` ${address}`));
      assert.ok(line, `ntpq lists ${address}:\n${ntpq}`);
      const [, , rstr, r, m, v, count, , drop] = line.trim().split(/\s+/);
      const mine = ours.clients.find((c) => c.address === address);
      assert.ok(mine, `ntpshield clients lists ${address}`);
      assert.deepEqual(
        [Number.parseInt(rstr!, 16), r, Number(m), Number(v), Number(count), Number(drop)],
        [mine.rstr, mine.r, mine.mode, mine.version, mine.count, mine.drop],
        `${address}: ntpq says ${line.trim()}`,
      );
    }
    const e = ours.clients.find((c) => c.address === "127.0.0.61")!;
    assert.deepEqual([e.count, e.drop, e.r], [12, 9, "L"]);
    const stats = JSON.parse(
      await inside([process.execPath, join(REPO_ROOT, "src/cli/main.ts"), "stats", "--url", url, "--json"]),
    ) as { packets: { rateLimited: number; kod: { RATE: number } } };
    const metrics = parsePrometheus(
      await inside([
        process.execPath,
        "-e",
        `fetch(${JSON.stringify(`${url}/metrics`)}).then((r) => r.text()).then((t) => process.stdout.write(t))`,
      ]),
    );
    assert.equal(metric(metrics, "ntp_server_rate_limited_packets_total"), stats.packets.rateLimited);
    assert.equal(metric(metrics, "ntp_server_kod_packets_total", { code: "RATE" }), stats.packets.kod.RATE);
    assert.equal(stats.packets.rateLimited, 9, "127.0.0.61's kissed request and the eight after it");
  });
});
