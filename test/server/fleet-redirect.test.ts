// Active redirection between real ntpshield servers over real sockets (paper §8; docs/fleet.md):
// - forwarding: A forwards every request to B, which answers the client from its own address; the client
//   library takes that reply only with follow-redirects (the exact origin ties it to the question), and
//   B's MRU list records the real client, not A;
// - B takes forwarded requests only from the fleet's addresses: the same wrapping from elsewhere is dropped
//   and counted, so B is no relay for a forged victim;
// - a forged reply from a third address with a wrong origin, arriving first, is ignored;
// - the redirection field: D names B in its replies where the request has room, and the client reads it.
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { after, before, describe, test } from "node:test";
import { queryServer } from "../../src/client/query.ts";
import { parseAddressKey } from "../../src/defence/address-key.ts";
import { Fleet } from "../../src/server/fleet.ts";
import { metric, ntpRequest, parsePrometheus } from "../helpers/monitor.ts";
import { freeUdpPort, killAllPeers, type Ntpshield, startNtpshield } from "../helpers/peers.ts";

const HOST_A = "127.0.50.31";
const HOST_B = "127.0.50.32";
const HOST_S = "127.0.50.34"; // a test-made front server that forwards by hand
const HOST_FORGER = "127.0.50.35";
const HOST_D = "127.0.50.36";
const HOST_STRANGER = "127.0.50.33";
const HOST_E = "127.0.50.37";
const VICTIM = "127.51.9.9";

const servers: Ntpshield[] = [];
let portA = 0;
let portB = 0;
let portD = 0;
let portE = 0;
let a: Ntpshield;
let b: Ntpshield;
let d: Ntpshield;
let e: Ntpshield;

async function serve(host: string, port: number, fleet: string[]): Promise<Ntpshield> {
  const s = await startNtpshield({
    listen: [`${host}:${port}`],
    configToml: ["[fleet]", ...fleet].join("\n"),
  });
  servers.push(s);
  return s;
}

async function fleetCount(s: Ntpshield, event: string): Promise<number> {
  const text = await (await fetch(`${s.httpUrl}/metrics`)).text();
  return metric(parsePrometheus(text), "ntpshield_fleet_requests_total", { event });
}

async function bound(host: string): Promise<dgram.Socket> {
  const sock = dgram.createSocket("udp4");
  await new Promise<void>((r) => sock.bind(0, host, () => r()));
  return sock;
}

const close = (s: dgram.Socket) => new Promise<void>((r) => s.close(() => r()));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A request wrapped as a fleet peer forwards it, naming `client`:`port`. */
function wrapped(client: string, port: number, request: Uint8Array): Buffer {
  const key = new Uint32Array(4);
  assert.ok(parseAddressKey(client, key));
  return new Fleet({ peers: [], forwardShare: 0, forwardWithheld: false, redirectShare: 0 }).wrap(
    request,
    request.length,
    key,
    port,
    4,
  );
}

describe("active redirection in a fleet of real servers", () => {
  before(async () => {
    [portA, portB, portD, portE] = await Promise.all([
      freeUdpPort(HOST_A),
      freeUdpPort(HOST_B),
      freeUdpPort(HOST_D),
      freeUdpPort(HOST_E),
    ]);
    b = await serve(HOST_B, portB, [`peers = ["${HOST_A}:${portA}", "${HOST_S}:123", "${HOST_E}:${portE}"]`]);
    a = await serve(HOST_A, portA, [`peers = ["${HOST_B}:${portB}"]`, "forward-share = 1"]);
    d = await serve(HOST_D, portD, [`peers = ["${HOST_B}:${portB}"]`, "redirect-share = 1"]);
    // E: a redline of 20 requests a second, and what overload control withholds goes to B.
    e = await startNtpshield({
      listen: [`${HOST_E}:${portE}`],
      configToml: [
        "[fleet]",
        `peers = ["${HOST_B}:${portB}"]`,
        "forward-withheld = true",
        "[overload]",
        "redline = 20",
      ].join("\n"),
    });
    servers.push(e);
  });
  after(async () => {
    for (const s of servers) await s.stop();
    await killAllPeers();
  });

  test("A forwards, B answers from its own address: followed with follow-redirects, and B sees the real client", async () => {
    const r = await queryServer({ host: HOST_A, port: portA }, { followRedirects: true, timeout: 2 });
    assert.equal(r.outcome, "sample", JSON.stringify(r));
    assert.equal(r.redirected, true);
    assert.equal(r.answeredBy, HOST_B);
    assert.equal(r.answeredPort, portB);
    assert.ok((await fleetCount(a, "forwarded")) >= 1);
    assert.ok((await fleetCount(b, "taken")) >= 1);
    const mru = (await (await fetch(`${b.httpUrl}/api/clients`)).json()) as {
      clients: { address: string }[];
    };
    const seen = mru.clients.map((c) => c.address);
    assert.ok(seen.includes("127.0.0.1"), `B's MRU list: ${seen.join(", ")}`);
    assert.ok(!seen.includes(HOST_A), "the forwarding server is not taken for the client");
  });

  test("without follow-redirects the client does not take B's reply", async () => {
    const r = await queryServer({ host: HOST_A, port: portA }, { timeout: 1 });
    assert.equal(r.outcome, "no-reply");
    assert.ok(r.ignored >= 1, "B's reply came, from an address not asked");
  });

  test("B takes a forwarded request only from the fleet: from a stranger it is dropped and counted", async () => {
    const victim = await bound(VICTIM);
    const got: string[] = [];
    victim.on("message", (_m, from) => got.push(from.address));
    const victimPort = victim.address().port;
    const refusedBefore = await fleetCount(b, "refused");
    const stranger = await bound(HOST_STRANGER);
    stranger.send(wrapped(VICTIM, victimPort, ntpRequest(1)), portB, HOST_B);
    await sleep(500);
    assert.deepEqual(got, [], "no reply reached the address the stranger named");
    assert.equal(await fleetCount(b, "refused"), refusedBefore + 1);
    // The same bytes from A's address (a fleet peer) are taken: the source alone made the difference.
    const peer = await bound(HOST_A);
    peer.send(wrapped(VICTIM, victimPort, ntpRequest(2)), portB, HOST_B);
    await sleep(500);
    assert.deepEqual(got, [HOST_B]);
    await Promise.all([close(victim), close(stranger), close(peer)]);
  });

  test("a forged reply from a third address with a wrong origin, arriving first, is ignored", async () => {
    // S stands in for a forwarding server: on each request it has the forger answer first with a wrong
    // origin, then forwards the request to B (B takes S's forwards: S is in its peers).
    const front = await bound(HOST_S);
    const forger = await bound(HOST_FORGER);
    front.on("message", (req, from) => {
      const fake = Buffer.from(ntpRequest(3));
      fake[0] = (4 << 3) | 4; // a server-mode reply
      fake[1] = 2;
      fake.writeUInt32BE(0x12345678, 24); // an origin that is not the request's transmit timestamp
      fake.writeUInt32BE(0xec000000, 40);
      forger.send(fake, from.port, from.address);
      setTimeout(() => front.send(wrapped(from.address, from.port, req), portB, HOST_B), 50);
    });
    try {
      const r = await queryServer(
        { host: HOST_S, port: front.address().port },
        { followRedirects: true, timeout: 2 },
      );
      assert.equal(r.outcome, "sample", JSON.stringify(r));
      assert.equal(r.answeredBy, HOST_B, "the genuine reply, not the forger's");
      assert.ok(r.ignored >= 1, "the forged reply was seen and ignored");
    } finally {
      await Promise.all([close(front), close(forger)]);
    }
  });

  test("D names B in the redirection field where the request has room; the reply is no larger than it", async () => {
    const r = await queryServer({ host: HOST_D, port: portD }, { followRedirects: true, timeout: 2 });
    assert.equal(r.outcome, "sample");
    assert.equal(r.answeredBy, HOST_D);
    assert.equal(r.redirectTo, `${HOST_B}:${portB}`);
    assert.ok((await fleetCount(d, "redirected")) >= 1);
    // Without the room (a plain 48-octet request) the reply is the header alone.
    const sock = await bound("127.0.0.1");
    const sizes: number[] = [];
    sock.on("message", (m) => sizes.push(m.length));
    sock.send(ntpRequest(9), portD, HOST_D);
    await sleep(300);
    await close(sock);
    assert.deepEqual(sizes, [48]);
    const plain = await queryServer({ host: HOST_D, port: portD }, { timeout: 2 });
    assert.equal(plain.redirectTo, undefined);
  });

  test("past its redline E forwards what overload control withholds to B, which answers the client", async () => {
    // A flood of newcomers, 300 a second from 127.51.20.x for as long as the test asks, keeps E past its
    // redline of 20.
    const flood = await Promise.all(Array.from({ length: 30 }, (_, i) => bound(`127.51.20.${i + 1}`)));
    let flooding = true;
    const floodDone = (async () => {
      for (let k = 0; flooding; k++) {
        for (const f of flood) f.send(ntpRequest(k), portE, HOST_E);
        await sleep(100);
      }
    })();
    try {
      await sleep(1500);
      const results = [];
      for (let i = 0; i < 6; i++) {
        results.push(await queryServer({ host: HOST_E, port: portE }, { followRedirects: true, timeout: 1 }));
      }
      const viaB = results.filter((r) => r.outcome === "sample" && r.answeredBy === HOST_B);
      assert.ok(
        viaB.length >= 1,
        `some queries withheld by E were answered by B: ${results.map((r) => r.answeredBy).join(", ")}`,
      );
      assert.ok(viaB.every((r) => r.redirected));
    } finally {
      flooding = false;
      await floodDone;
      await Promise.all(flood.map(close));
    }
    assert.ok((await fleetCount(e, "forwarded")) > 0);
    const text = await (await fetch(`${e.httpUrl}/metrics`)).text();
    const withheld = metric(parsePrometheus(text), "ntpshield_packets_total", { reason: "drop_overload" });
    assert.ok(withheld > 0, "they were withheld first");
  });
});
