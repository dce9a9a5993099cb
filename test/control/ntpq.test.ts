// NTPsec's real ntpq against the mode 6 handler. ntpq only talks to port 123, so the responder (a tiny UDP
// server around handleControl, test/control/fixtures/mode6-peer.ts) runs on 127.0.x.y:123 as root, or in a
// private network namespace otherwise (openPort123Sandbox). Every wait is bounded.

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { R_DROP_GAPPED, R_KISS_RATE } from "../../src/core/reasons.ts";
import {
  killAllPeers,
  openPort123Sandbox,
  PeerError,
  type PortSandbox,
  REPO_ROOT,
  run,
  waitFor,
} from "../helpers/peers.ts";
import type { PeerClient, PeerConfig } from "./fixtures/mode6-peer.ts";

const NTPQ = join(REPO_ROOT, ".peers", "bin", "ntpq");
const PEER = join(import.meta.dirname, "fixtures", "mode6-peer.ts");

function ntpqPath(): string {
  try {
    accessSync(NTPQ, constants.X_OK);
  } catch {
    throw new PeerError(
      "PEER_MISSING",
      `${NTPQ} not found: run scripts/install-peers.sh as root (see docs/testing.md)`,
    );
  }
  return NTPQ;
}

interface LogLine {
  from: string;
  port: number;
  length: number;
  opcode: number;
  result: string;
  replies: number[];
}

/** A responder process and what it logged. */
class Responder {
  readonly log: LogLine[] = [];
  private out = "";
  private readonly child: ChildProcess;

  constructor(sandbox: PortSandbox, config: PeerConfig) {
    const argv = sandbox.wrap([process.execPath, PEER, "serve", sandbox.host, "123", JSON.stringify(config)]);
    this.child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    this.child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      this.out += d;
      let nl = this.out.indexOf("\n");
      while (nl >= 0) {
        const line = this.out.slice(0, nl);
        this.out = this.out.slice(nl + 1);
        if (line.startsWith("{")) this.log.push(JSON.parse(line) as LogLine);
        else if (line === "ready") this.ready = true;
        nl = this.out.indexOf("\n");
      }
    });
    this.child.stderr!.setEncoding("utf8").on("data", (d: string) => {
      this.errors += d;
    });
  }

  ready = false;
  errors = "";

  async started(): Promise<void> {
    try {
      await waitFor("the mode 6 responder", async () => (this.ready ? true : undefined), 15_000, 50);
    } catch (e) {
      throw new PeerError("PEER_FAILED", `mode6-peer.ts did not start: ${(e as Error).message}`, this.errors);
    }
  }

  /** Waits until the responder has logged `n` datagrams from `from` (they did arrive), and returns them. */
  async datagramsFrom(from: string, n: number): Promise<LogLine[]> {
    return waitFor(
      `${n} datagrams from ${from} at the responder`,
      async () => {
        const got = this.log.filter((l) => l.from === from);
        return got.length >= n ? got : undefined;
      },
      5000,
      50,
    );
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = new Promise<void>((res) => this.child.once("exit", () => res()));
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 2000);
    await gone;
    clearTimeout(timer);
  }
}

/** Runs ntpq (numeric: -n, so no DNS lookups) with the given commands; throws with its output on failure. */
async function ntpq(sandbox: PortSandbox, commands: string[], timeoutMs = 20_000): Promise<string> {
  const argv = [ntpqPath(), "-n", ...commands.flatMap((c) => ["-c", c]), sandbox.host];
  const r = await run(sandbox.wrap(argv), timeoutMs);
  if (r.signal) throw new PeerError("PEER_TIMEOUT", `ntpq ${commands.join("; ")} did not finish`, r.output);
  return r.output;
}

/** A mode 6 request as raw hex: LI 3, version 2, the opcode, sequence 1, no data. */
function rawRequest(opcode: number): string {
  return `d6${opcode.toString(16).padStart(2, "0")}0001${"00".repeat(8)}`;
}

/** ntpd's monlist request (mode 7, MON_GETLIST_1), 48 octets. */
const MONLIST = `1700032a${"00".repeat(44)}`;

/** Sends the datagrams (hex) from `from` and returns every reply that came back within a second. */
async function probe(sandbox: PortSandbox, from: string, ...hex: string[]): Promise<string[]> {
  const argv = [process.execPath, PEER, "probe", from, sandbox.host, "123", hex.join(","), "1000"];
  const r = await run(sandbox.wrap(argv), 15_000);
  const line = r.stdout.trim().split("\n").at(-1) ?? "";
  try {
    return (JSON.parse(line) as { replies: string[] }).replies;
  } catch {
    throw new PeerError("PEER_BAD_OUTPUT", "the probe printed no result", r.output);
  }
}

// The clients: three with known histories, newest last, and 297 older ones so that ntpq needs several rounds.
const SPECIAL: PeerClient[] = [
  { address: "192.0.2.10", port: 123, mode: 3, version: 4, ago: [100, 50, 10] },
  {
    address: "2001:db8::5",
    port: 40000,
    mode: 3,
    version: 3,
    ago: [30, 20, 5],
    lastReason: R_KISS_RATE,
    gapped: 2,
  },
  {
    address: "198.51.100.7",
    port: 5555,
    mode: 1,
    version: 4,
    ago: [3],
    lastReason: R_DROP_GAPPED,
    gapped: 1,
  },
];
const FILLERS: PeerClient[] = Array.from({ length: 297 }, (_, i) => ({
  address: `10.3.${i >> 8}.${i & 255}`,
  port: 1024 + i,
  mode: 3,
  version: 4,
  ago: i % 3 === 0 ? [2000 - i * 2, 1999 - i * 2] : [2000 - i * 2],
}));

const SYSTEM: PeerConfig["system"] = {
  version: "ntpshield 0.1.0",
  leap: 0,
  stratum: 2,
  precision: -20,
  rootDelay: 0.0125,
  rootDispersion: 0.002,
  refId: 0xc0000201,
  refTimeAgoS: 30,
  poll: 6,
  uptimeS: 3600,
  received: 1000,
  byReason: { served_client: 900, kiss_rate: 10, drop_gapped: 50, malformed_too_short: 3 },
};

interface Row {
  lstint: number;
  rstr: string;
  r: string;
  m: number;
  v: number;
  count: number;
  drop: string;
  rport: number;
  address: string;
}

const ROW_RE =
  /^\s*(\d+)\s+(\S+)\s+([0-9a-f]+)\s+([.LK])\s+(\d)\s+(\d)\s+(\d+)\s+(\S+)\s+(\S+)\s+(\d+)\s+(\S+)\s*$/;

function rows(output: string): Row[] {
  const out: Row[] = [];
  for (const line of output.split("\n")) {
    const m = ROW_RE.exec(line);
    if (!m) continue;
    out.push({
      lstint: Number(m[1]),
      rstr: m[3]!,
      r: m[4]!,
      m: Number(m[5]),
      v: Number(m[6]),
      count: Number(m[7]),
      drop: m[9]!,
      rport: Number(m[10]),
      address: m[11]!,
    });
  }
  return out;
}

describe("NTPsec ntpq against handleControl", () => {
  let sandbox: PortSandbox;
  let responder: Responder;
  let startedAt = 0;

  before(async () => {
    ntpqPath();
    sandbox = await openPort123Sandbox();
    startedAt = Date.now();
    responder = new Responder(sandbox, {
      allow: ["127.0.0.1", "::1"],
      clients: [...FILLERS, ...SPECIAL],
      system: SYSTEM,
      lifetimeMs: 120_000,
    });
    await responder.started();
  });

  after(async () => {
    await responder?.stop();
    await sandbox?.close();
    await killAllPeers();
  });

  test("ntpq -c rv shows the system variables served", async () => {
    const out = await ntpq(sandbox, ["rv"]);
    assert.match(out, /associd=0 status=0600 leap_none, sync_ntp/, out);
    for (const want of [
      'version="ntpshield 0.1.0"',
      "leap=00",
      "stratum=2",
      "precision=-20",
      "rootdelay=12.5",
      "rootdisp=2.0",
      "refid=192.0.2.1",
      "peer=0",
      "tc=6",
      "ss_uptime=3600",
      "ss_received=1000",
      "ss_processed=900",
      "ss_kodsent=10",
      "ss_badformat=3",
    ]) {
      assert.ok(out.includes(want), `missing ${want} in:\n${out}`);
    }
    assert.match(out, /reftime=[0-9a-f]{8}\.[0-9a-f]{8} \d{4}-\d\d-\d\dT/);
    const [rv] = await responder.datagramsFrom("127.0.0.1", 1);
    assert.equal(rv!.opcode, 2);
    assert.equal(rv!.result, "answered");
  });

  test("ntpq -c mrulist lists every client, newest first, with counts, modes, ports and rate flags", async () => {
    const before = responder.log.length;
    const out = await ntpq(sandbox, ["mrulist"]);
    const elapsed = (Date.now() - startedAt) / 1000;
    const got = rows(out);
    assert.equal(got.length, 300, out.slice(-2000));
    assert.match(out, /# Collected 300 slots/);
    assert.deepEqual(
      got.slice(0, 3).map((r) => r.address),
      ["198.51.100.7", "2001:db8::5", "192.0.2.10"],
    );
    const by = new Map(got.map((r) => [r.address, r]));
    const c = by.get("198.51.100.7")!;
    assert.deepEqual([c.rstr, c.r, c.m, c.v, c.count, c.drop, c.rport], ["20", "L", 1, 4, 1, "1", 5555]);
    const b = by.get("2001:db8::5")!;
    assert.deepEqual([b.rstr, b.r, b.m, b.v, b.count, b.drop, b.rport], ["420", "K", 3, 3, 3, "2", 40000]);
    const a = by.get("192.0.2.10")!;
    assert.deepEqual([a.rstr, a.r, a.m, a.v, a.count, a.drop, a.rport], ["0", ".", 3, 4, 3, "0", 123]);
    // lstint = the server's clock at the end minus the last packet: at least its age when filled in.
    for (const [row, ago] of [
      [a, 10],
      [b, 5],
      [c, 3],
    ] as const) {
      assert.ok(row.lstint >= ago && row.lstint <= ago + elapsed + 2, `${row.address} lstint ${row.lstint}`);
    }
    for (const f of FILLERS) {
      const row = by.get(f.address);
      assert.ok(row, f.address);
      assert.equal(row.count, f.ago.length);
      assert.equal(row.rport, f.port);
    }
    // The nonce first, then several READ_MRU rounds (300 rows do not fit in one reply of 32 datagrams).
    const session = responder.log.slice(before).filter((l) => l.from === "127.0.0.1");
    assert.equal(session[0]!.opcode, 12);
    const reads = session.filter((l) => l.opcode === 10);
    assert.ok(reads.length >= 3, `${reads.length} READ_MRU rounds`);
    for (const l of reads) {
      assert.equal(l.result, "answered");
      assert.ok(l.replies.length <= 32);
    }
  });

  test("mrulist filters reach the server: kod, limited, mincount", async () => {
    const kod = rows(await ntpq(sandbox, ["mrulist kod"]));
    assert.deepEqual(
      kod.map((r) => r.address),
      ["2001:db8::5"],
    );
    const limited = rows(await ntpq(sandbox, ["mrulist limited"]));
    assert.deepEqual(
      limited.map((r) => r.address),
      ["198.51.100.7", "2001:db8::5"],
    );
    const busy = rows(await ntpq(sandbox, ["mrulist mincount=3"]));
    assert.deepEqual(
      busy.map((r) => r.address),
      ["2001:db8::5", "192.0.2.10"],
    );
  });

  test("sysstats and monstats read the counters by name", async () => {
    const out = await ntpq(sandbox, ["sysstats", "monstats"]);
    assert.match(out, /packets received:\s+1000/, out);
    assert.match(out, /KoD responses:\s+10/, out);
    assert.match(out, /addresses in use:\s+300/, out);
  });

  test("127.0.0.2 is not allowed: its rv, nonce and READ_MRU requests arrive and get nothing", async () => {
    assert.deepEqual(await probe(sandbox, "127.0.0.2", rawRequest(2), rawRequest(12), rawRequest(10)), []);
    const seen = await responder.datagramsFrom("127.0.0.2", 3);
    assert.deepEqual(
      seen.map((l) => [l.opcode, l.result, l.replies.length]),
      [
        [2, "denied", 0],
        [12, "denied", 0],
        [10, "denied", 0],
      ],
    );
    // The same rv request from 127.0.0.1 is answered, so silence above is the access decision.
    assert.ok((await probe(sandbox, "127.0.0.1", rawRequest(2))).length > 0);
  });

  test("mode 7 monlist from an allowed address gets nothing", async () => {
    const before = responder.log.length;
    assert.deepEqual(await probe(sandbox, "127.0.0.1", MONLIST), []);
    const line = await waitFor(
      "the monlist request at the responder",
      async () => responder.log.slice(before).find((l) => l.length === 48),
      5000,
      50,
    );
    assert.equal(line.result, "not_control");
    assert.deepEqual(line.replies, []);
  });
});

describe("ntpq from an address the server does not allow", () => {
  let sandbox: PortSandbox;
  let responder: Responder;

  before(async () => {
    ntpqPath();
    sandbox = await openPort123Sandbox();
    responder = new Responder(sandbox, {
      allow: ["127.0.0.2"],
      clients: SPECIAL,
      system: SYSTEM,
      lifetimeMs: 60_000,
    });
    await responder.started();
  });

  after(async () => {
    await responder?.stop();
    await sandbox?.close();
    await killAllPeers();
  });

  test("only 127.0.0.2 allowed: ntpq (from 127.0.0.1) times out on rv and mrulist", async () => {
    const out = await ntpq(sandbox, ["timeout 400", "rv", "mrulist"]);
    assert.match(out, /Request timed out/, out);
    assert.doesNotMatch(out, /ntpshield|stratum=/, out);
    const seen = await responder.datagramsFrom("127.0.0.1", 2);
    for (const l of seen) {
      assert.equal(l.result, "denied");
      assert.deepEqual(l.replies, []);
    }
  });
});
