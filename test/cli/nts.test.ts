// `ntpshield query --nts` and `ntpshield sync --nts` (RFC 8915) against ntpshield's own NTS server on
// 127.0.40.0/24, with a test CA made by openssl; their usage errors.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { makeNtsCertificates, type NtsCertificates, startNtsServer } from "../helpers/nts.ts";
import { freeUdpPort, killAllPeers, type Ntpshield, REPO_ROOT, run } from "../helpers/peers.ts";

const MAIN = `${REPO_ROOT}/src/cli/main.ts`;
const cli = (...args: string[]) => run([process.execPath, MAIN, ...args], 30_000);
const HOST = "127.0.40.21";

let dir: string;
let certs: NtsCertificates;
let server: Ntpshield;
let ke: string;
let ntpPort: number;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ntpshield-ntsT-cli-"));
  certs = await makeNtsCertificates(dir, [HOST]);
  ntpPort = await freeUdpPort(HOST);
  const started = await startNtsServer(HOST, certs, { ntpPort });
  server = started.server;
  ke = `${started.ke.host}:${started.ke.port}`;
});

after(async () => {
  await server?.stop();
  await killAllPeers();
  await rm(dir, { recursive: true, force: true });
});

describe("ntpshield query --nts / sync --nts", () => {
  it("query --nts: NTS-KE, then an authenticated exchange with the negotiated port; exit 0", async () => {
    const r = await cli("query", "--nts", "--nts-ca", certs.ca, "--json", ke);
    assert.equal(r.code, 0, r.output);
    const [res] = JSON.parse(r.stdout) as Record<string, unknown>[];
    assert.equal(res!["ok"], true);
    assert.equal(res!["server"], ke);
    assert.equal(res!["answeredBy"], HOST);
    assert.equal(res!["answeredPort"], ntpPort, "the port NTS-KE negotiated, not 123");
    assert.ok(Math.abs(res!["offset"] as number) < 0.5);
  });

  it("query --nts without the CA: the certificate is refused, exit 1, nothing sent", async () => {
    const r = await cli("query", "--nts", ke);
    assert.equal(r.code, 1, r.output);
    assert.match(r.stdout, /NTS-KE: .*certificate/);
  });

  it("sync --nts: polls with authenticated requests, a line per poll", async () => {
    const r = await cli(
      "sync",
      "--nts",
      "--nts-ca",
      certs.ca,
      "--server",
      ke,
      "--start-spread",
      "1",
      "--count",
      "1",
      "--no-state",
    );
    assert.equal(r.code, 0, r.output);
    assert.match(r.stdout, /NTS-authenticated/);
    assert.match(
      r.stdout,
      new RegExp(
        `${HOST.replaceAll(".", "\\.")}:${ntpPort}\\s+${HOST.replaceAll(".", "\\.")}\\s+offset [+-]`,
      ),
    );
  });

  it("usage errors: an unreadable CA file, --nts-ca without --nts", async () => {
    const q = await cli("query", "--nts", "--nts-ca", join(dir, "missing.pem"), ke);
    assert.equal(q.code, 2, q.output);
    assert.match(q.stderr, /--nts-ca/);
    const s = await cli("sync", "--nts-ca", certs.ca, "--server", ke, "--no-state");
    assert.equal(s.code, 2, s.output);
    assert.match(s.stderr, /--nts-ca needs --nts/);
  });
});
