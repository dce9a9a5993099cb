// NTPsec's ntpq against the real server (not a test responder): `rv` shows the system variables, `mrulist`
// shows the clients that sent requests, and an address not on the control allow list gets nothing. ntpq
// only speaks to port 123: the server runs on 127.0.x.y:123 (root) or in a network namespace.

import assert from "node:assert/strict";
import { accessSync, constants } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  killAllPeers,
  type Ntpshield,
  openPort123Sandbox,
  PeerError,
  type PortSandbox,
  REPO_ROOT,
  run,
  startNtpshield,
} from "../helpers/peers.ts";

after(killAllPeers);

const NTPQ = join(REPO_ROOT, ".peers", "bin", "ntpq");

function ntpqPath(): string {
  try {
    accessSync(NTPQ, constants.X_OK);
    return NTPQ;
  } catch {
    throw new PeerError(
      "PEER_MISSING",
      `${NTPQ} is missing: run scripts/install-peers.sh as root (docs/testing.md)`,
    );
  }
}

async function ntpq(sandbox: PortSandbox, command: string): Promise<string> {
  const r = await run(sandbox.wrap([ntpqPath(), "-n", "-c", command, sandbox.host]), 20_000);
  if (r.signal) throw new PeerError("PEER_TIMEOUT", `ntpq -c ${command} did not finish`, r.output);
  return r.output;
}

/** Sends `n` NTP client requests from `from` (inside the sandbox), 10 ms apart, with a small Node script. */
async function traffic(sandbox: PortSandbox, from: string, n: number): Promise<void> {
  const script = `
const dgram = require("node:dgram");
const s = dgram.createSocket("udp4");
s.bind(0, ${JSON.stringify(from)}, async () => {
  for (let i = 0; i < ${n}; i++) {
    const b = Buffer.alloc(48); b[0] = 0x23; b.writeUInt32BE(i, 44);
    s.send(b, 123, ${JSON.stringify(sandbox.host)});
    await new Promise((r) => setTimeout(r, 10));
  }
  setTimeout(() => s.close(), 200);
});`;
  const r = await run(sandbox.wrap([process.execPath, "-e", script]), 15_000);
  assert.equal(r.code, 0, r.output);
}

describe("ntpq against ntpshield", () => {
  let sandbox: PortSandbox | undefined;
  let server: Ntpshield | undefined;
  after(async () => {
    await server?.stop();
    await sandbox?.close();
  });

  test("rv and mrulist work from an allowed address; others get nothing", { timeout: 90_000 }, async () => {
    sandbox = await openPort123Sandbox();
    server = await startNtpshield({
      listen: [`${sandbox.host}:123`],
      sandbox,
      configToml: '[clock]\nstratum = 1\nrefid = "GPS"\n',
    });
    await traffic(sandbox, "127.0.0.21", 12);
    await traffic(sandbox, "127.0.0.22", 3);

    const rv = await ntpq(sandbox, "rv");
    assert.match(rv, /stratum=1/, rv);
    assert.match(rv, /refid=GPS/, rv);
    assert.match(rv, /version="?ntpshield/, rv);

    const mru = await ntpq(sandbox, "mrulist");
    const row = (address: string) =>
      mru.split("\n").find((l) => l.trim().endsWith(address) || l.includes(` ${address}`));
    const r21 = row("127.0.0.21");
    const r22 = row("127.0.0.22");
    assert.ok(r21 && r22, mru);
    // Columns: lstint avgint rstr r m v count rport remote address. 12 requests 10 ms apart: call-gapped and
    // kissed (the default rule is limited kod), so rstr shows L and K flags and the count is 12.
    assert.match(r21, /\s12\s/, r21);
    assert.match(r22, /\s3\s/, r22);
    await server.stop();
    server = undefined;

    // Only 127.0.0.2 may ask now: ntpq (from 127.0.0.1) hears nothing.
    server = await startNtpshield({
      listen: [`${sandbox.host}:123`],
      sandbox,
      configToml: '[control]\nallow = ["127.0.0.2"]\n',
    });
    const denied = await ntpq(sandbox, "rv");
    assert.doesNotMatch(denied, /stratum=/, denied);
    assert.match(denied, /timed out|Request timed out|no response/i, denied);
  });
});
