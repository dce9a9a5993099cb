// NTS's cookie keys in a running server (RFC 8915 §6, docs/nts.md) and the NTS-KE server's limits: keys
// rotated in the main thread reach every worker, a replaced key opens cookies for `keep` more seconds and
// then NTS NAK; the key file follows; connections, handshake time. On 127.0.40.0/24.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ntsKeyExchange, ntsQuery } from "../../src/client/nts.ts";
import { parseKeyFile } from "../../src/nts/keys.ts";
import { metric, parsePrometheus } from "../helpers/monitor.ts";
import {
  makeNtsCertificates,
  type NtsCertificates,
  ntsKeAddress,
  ntsTable,
  rawKe,
  startNtsServer,
} from "../helpers/nts.ts";
import { freeUdpPort, killAllPeers, type Ntpshield, startNtpshield, waitFor } from "../helpers/peers.ts";

const HOST = "127.0.40.31";
let dir: string;
let certs: NtsCertificates;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ntpshield-ntsT-keys-"));
  certs = await makeNtsCertificates(dir, [HOST]);
});

after(async () => {
  await killAllPeers();
  await rm(dir, { recursive: true, force: true });
});

async function start(extra: string): Promise<{ s: Ntpshield; ke: { host: string; port: number } }> {
  const { server, ke } = await startNtsServer(HOST, certs, { nts: [extra] });
  return { s: server, ke };
}

async function count(s: Ntpshield, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${s.httpUrl}/metrics`)).text();
  return metric(parsePrometheus(text), name, labels);
}

describe("cookie keys in a running server", () => {
  it("rotation reaches the workers; a replaced key opens cookies for `keep`, then NTS NAK; the key file follows", async () => {
    const keyFile = join(dir, "rotating.keys");
    const { s, ke } = await start(`key-file = "${keyFile}"\nrotate = 1\nkeep = 2`);
    try {
      const ca = readFileSync(certs.ca);
      const old = await ntsKeyExchange({ host: ke.host, port: ke.port, ca });
      const firstId = Buffer.from(old.cookies[0]!.subarray(0, 4)).readUInt32BE(0);
      assert.equal(
        parseKeyFile(readFileSync(keyFile, "utf8"))[0]!.id,
        firstId,
        "the file holds the sealing key",
      );
      await sleep(1600); // rotated once: a new key seals, the first still opens
      const r1 = await ntsQuery(old, old.ntpHost);
      assert.equal(r1.outcome, "sample", r1.reason);
      const fresh = Buffer.from(old.cookies.at(-1)!.subarray(0, 4)).readUInt32BE(0);
      assert.notEqual(fresh, firstId, "the reply's new cookies are sealed with the new key");
      const ids = parseKeyFile(readFileSync(keyFile, "utf8")).map((k) => k.id);
      assert.ok(ids.includes(firstId) && ids.includes(fresh), `file: ${ids}`);
      // Keep only cookies of the first key, and wait until it is forgotten (replaced ~1 s in, kept 2 s).
      const stale = {
        ...old,
        cookies: old.cookies.filter((c) => Buffer.from(c.subarray(0, 4)).readUInt32BE(0) === firstId),
      };
      assert.ok(stale.cookies.length > 0);
      await sleep(3000);
      const r2 = await ntsQuery(stale, stale.ntpHost);
      assert.equal(r2.outcome, "nak", r2.reason);
      assert.equal(await count(s, "ntpshield_packets_total", { reason: "kiss_ntsn_unknown_key" }), 1);
      assert.ok(
        !parseKeyFile(readFileSync(keyFile, "utf8")).some((k) => k.id === firstId),
        "gone from the file",
      );
      // A new key exchange works again.
      const again = await ntsKeyExchange({ host: ke.host, port: ke.port, ca });
      assert.equal((await ntsQuery(again, again.ntpHost)).outcome, "sample");
    } finally {
      await s.stop();
    }
  });

  it("a certificate that cannot be read, or is not PEM, stops the start with a message naming the key", async () => {
    const missing = join(dir, "missing.crt");
    await assert.rejects(
      startNtpshield({
        listen: [`${HOST}:${await freeUdpPort(HOST)}`],
        http: "off",
        configToml: `[nts]\nenabled = true\nlisten = "${HOST}:0"\ncertificate = "${missing}"\nkey = "${certs.key}"\n`,
      }),
      (e: Error) => e.message.includes(`nts.certificate: cannot read ${missing}`),
    );
    await assert.rejects(
      startNtpshield({
        listen: [`${HOST}:${await freeUdpPort(HOST)}`],
        http: "off",
        configToml: `[nts]\nenabled = true\nlisten = "${HOST}:0"\ncertificate = "${certs.ca}"\nkey = "${certs.cert}"\n`,
      }),
      (e: Error) => /nts\.certificate \/ nts\.key: not a usable certificate and key/.test(e.message),
    );
  });

  it("a fleet member with rotate = 0 and no key file refuses to start, naming nts.key-file", async () => {
    await assert.rejects(start(`key-file = "${join(dir, "absent.keys")}"\nrotate = 0`), (e: Error) =>
      /nts\.key-file: .*does not exist, and nts\.rotate = 0 makes no keys/.test(e.message),
    );
  });
});

describe("a reload (SIGHUP)", () => {
  it("changes what NTS-KE hands out (cookies, server, port) without a restart; the listen address needs one", async () => {
    const file = join(dir, "reload.toml");
    const base = ntsTable(HOST, certs);
    await writeFile(file, `${base.join("\n")}\n`);
    const s = await startNtpshield({
      listen: [`${HOST}:${await freeUdpPort(HOST)}`],
      http: `${HOST}:0`,
      extraArgs: ["--config", file],
    });
    try {
      const { host, port } = ntsKeAddress(s);
      const ca = readFileSync(certs.ca);
      const before = await ntsKeyExchange({ host, port, ca });
      assert.equal(before.cookies.length, 8);
      assert.equal(before.ntpHost, host);
      await writeFile(
        file,
        `${[...base, "cookies = 3", 'server = "ntp9.example.net"', "port = 10123", 'listen = "127.0.40.32:4460"'].join("\n").replace(`listen = "${HOST}:0"\n`, "")}\n`,
      );
      const reloaded = s.records.length;
      s.child.kill("SIGHUP");
      await waitFor(
        "the reload",
        async () => s.records.slice(reloaded).find((r) => r["msg"] === "configuration reloaded"),
        5000,
        50,
      );
      const line = s.records.slice(reloaded).find((r) => r["msg"] === "configuration reloaded")!;
      assert.deepEqual(line["needsRestart"], ["nts.listen"]);
      const after = await ntsKeyExchange({ host, port, ca });
      assert.equal(after.cookies.length, 3);
      assert.equal(after.ntpHost, "ntp9.example.net");
      assert.equal(after.ntpPort, 10123);
    } finally {
      await s.stop();
    }
  });
});

describe("the defences first", () => {
  it("an NTS client that asks too often gets the call-gap's RATE kiss, unauthenticated, and its client reports it", async () => {
    const { server: s, ke } = await startNtsServer(HOST, certs, {
      callgap: ["minimum = 2", "average = 8", "burst = 1"],
    });
    try {
      const session = await ntsKeyExchange({ host: ke.host, port: ke.port, ca: readFileSync(certs.ca) });
      const outcomes: string[] = [];
      for (let i = 0; i < 12; i++) {
        const r = await ntsQuery(session, session.ntpHost, { timeout: 0.3 });
        outcomes.push(r.outcome === "kiss" ? `kiss ${r.kiss}` : r.outcome);
      }
      assert.equal(outcomes[0], "sample");
      assert.ok(outcomes.includes("kiss RATE"), outcomes.join(", "));
      assert.ok((await count(s, "ntpshield_packets_total", { reason: "kiss_rate" })) >= 1);
      // No request the call-gap refused was opened: every NTS reason adds up to the samples.
      assert.equal(
        await count(s, "ntpshield_packets_total", { reason: "served_nts" }),
        outcomes.filter((o) => o === "sample").length,
      );
    } finally {
      await s.stop();
    }
  });
});

describe("both I/O paths", () => {
  it("the node:dgram path answers NTS as the native one does: authenticated, the UID echoed, new cookies", async () => {
    const { server: dgramServer, ke } = await startNtsServer(HOST, certs, {
      head: ["[server]", 'io = "dgram"'],
    });
    try {
      const rec = dgramServer.records.find((r) => r["msg"] === "listening")!;
      assert.equal(rec["io"], "dgram");
      const session = await ntsKeyExchange({ host: ke.host, port: ke.port, ca: readFileSync(certs.ca) });
      for (let i = 0; i < 2; i++) {
        const r = await ntsQuery(session, session.ntpHost);
        assert.equal(r.outcome, "sample", r.reason);
        assert.equal(r.newCookies, 1);
      }
      assert.equal(await count(dgramServer, "ntpshield_packets_total", { reason: "served_nts" }), 2);
    } finally {
      await dgramServer.stop();
    }
  });
});

describe("NTS-KE limits", () => {
  it("beyond max-connections a connection is closed at once; a silent client is cut after handshake-timeout", async () => {
    const { s, ke } = await start("max-connections = 2\nhandshake-timeout = 0.5");
    try {
      const hold = [connect(ke.port, ke.host), connect(ke.port, ke.host)];
      await Promise.all(hold.map((c) => new Promise((r) => c.once("connect", r))));
      await sleep(100);
      const third = connect(ke.port, ke.host);
      const closedAt = await new Promise<number>((r) => {
        const t0 = Date.now();
        third.on("error", () => {});
        third.once("close", () => r(Date.now() - t0));
      });
      assert.ok(closedAt < 400, `closed at once (${closedAt} ms)`);
      // The two silent ones: cut by the handshake timeout.
      const cut = await Promise.all(
        hold.map(
          (c) =>
            new Promise<number>((r) => {
              const t0 = Date.now();
              c.on("error", () => {});
              c.once("close", () => r(Date.now() - t0));
            }),
        ),
      );
      assert.ok(
        cut.every((ms) => ms < 2000),
        `cut: ${cut}`,
      );
      await sleep(200);
      assert.ok((await count(s, "ntpshield_nts_ke_total", { outcome: "refused_max_connections" })) >= 1);
      assert.ok((await count(s, "ntpshield_nts_ke_total", { outcome: "timeout" })) >= 2);
      // After TLS, a client that never sends its request is cut too.
      const silent = await rawKe(ke.host, ke.port, readFileSync(certs.ca), new Uint8Array(0), {
        waitMs: 3000,
      });
      assert.equal(silent.received.length, 0);
      assert.ok((await count(s, "ntpshield_nts_ke_total", { outcome: "timeout" })) >= 3);
      // And the server still serves.
      const ok = await ntsKeyExchange({ host: ke.host, port: ke.port, ca: readFileSync(certs.ca) });
      assert.equal(ok.cookies.length, 8);
    } finally {
      await s.stop();
    }
  });
});
