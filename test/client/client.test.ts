// The client shell (NtpClient, queryServer) over real UDP on loopback: against ntpshield itself and a real
// chronyd, and against small in-process servers that misbehave on purpose (forged kisses, replies from
// another address, DENY). The compressed clock (fast-clock.ts) runs the schedule's minutes in
// milliseconds; the exchanges themselves are real.

import assert from "node:assert/strict";
import dgram from "node:dgram";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { NtpClient, type NtpClientOptions, systemClock } from "../../src/client/client.ts";
import type { ClientEvent } from "../../src/client/events.ts";
import { queryServer } from "../../src/client/query.ts";
import { readStateFile } from "../../src/client/state-file.ts";
import { freeUdpPort, killAllPeers, startChronyServer, startNtpshield } from "../helpers/peers.ts";
import { fastClock } from "./fast-clock.ts";
import { makeReply, type ReplyFields } from "./sim.ts";

after(killAllPeers);
const dir = mkdtempSync(join(tmpdir(), "ntpshield-client-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs an NtpClient until `exchanges` exchanges have ended (or `limitMs` of real time); returns its events. */
async function runClient(
  o: Omit<NtpClientOptions, "onEvent">,
  exchanges: number,
  limitMs = 10_000,
): Promise<{ events: ClientEvent[]; warnings: string[]; client: NtpClient }> {
  const events: ClientEvent[] = [];
  const warnings: string[] = [];
  let done = 0;
  let finish: () => void = () => {};
  const finished = new Promise<void>((r) => {
    finish = r;
  });
  const client = new NtpClient({
    ...o,
    onEvent: (e) => {
      events.push(e);
      if (["sample", "no-reply", "unusable", "kiss"].includes(e.kind) && ++done >= exchanges) finish();
    },
    onWarning: (w) => warnings.push(w),
  });
  client.start();
  const timer = setTimeout(finish, limitMs);
  await finished;
  clearTimeout(timer);
  client.stop();
  return { events, warnings, client };
}

function samples(events: ClientEvent[]) {
  return events.filter((e): e is Extract<ClientEvent, { kind: "sample" }> => e.kind === "sample");
}

interface Fake {
  port: number;
  /** Source address and port of every request received. */
  seen: { address: string; port: number }[];
  close(): Promise<void>;
}

/** A UDP server on host:port (a free port if 0) whose `handle` decides what to send back, from which socket. */
async function fakeServer(
  handle: (req: Buffer, from: dgram.RemoteInfo, sock: dgram.Socket) => void,
  host = "127.0.0.1",
  port = 0,
): Promise<Fake> {
  const sock = dgram.createSocket("udp4");
  const seen: { address: string; port: number }[] = [];
  sock.on("message", (msg, rinfo) => {
    seen.push({ address: rinfo.address, port: rinfo.port });
    handle(msg, rinfo, sock);
  });
  await new Promise<void>((r) => sock.bind(port, host, () => r()));
  return { port: sock.address().port, seen, close: () => new Promise((r) => sock.close(() => r())) };
}

function reply(req: Buffer, f: ReplyFields = {}): Uint8Array {
  return makeReply(req, performance.timeOrigin + performance.now(), f);
}

describe("against ntpshield itself", () => {
  it("takes samples from ntpshield serve: stratum 10, refid LOCL, offset near zero", {
    timeout: 30_000,
  }, async () => {
    const port = await freeUdpPort();
    // The compressed clock sends the client's three polls, and then the query, back to back: to the
    // call-gap a measurement burst of 4, one more than its fast allowance answers by default.
    const server = await startNtpshield({
      listen: [`127.0.0.1:${port}`],
      configToml: "[callgap]\nfast = 4\n",
    });
    try {
      const { events } = await runClient(
        { servers: [{ host: "127.0.0.1", port }], startSpread: 1, clock: fastClock() },
        3,
      );
      const s = samples(events);
      assert.equal(s.length, 3, JSON.stringify(events));
      for (const e of s) {
        assert.equal(e.address, "127.0.0.1");
        assert.equal(e.sample.stratum, 10);
        assert.equal(e.sample.refId, 0x4c4f434c);
        assert.ok(Math.abs(e.sample.offsetMs) < 50, `offset ${e.sample.offsetMs} ms`);
        assert.ok(e.sample.delayMs >= 0 && e.sample.delayMs < 100);
      }
      const q = await queryServer({ host: "127.0.0.1", port });
      assert.equal(q.outcome, "sample");
      assert.equal(q.answeredBy, "127.0.0.1");
    } finally {
      await server.stop();
    }
  });

  it("with the real clock: the first request within the start spread, then nothing for 15 s or more", {
    timeout: 30_000,
  }, async () => {
    const port = await freeUdpPort();
    const server = await startNtpshield({ listen: [`127.0.0.1:${port}`] });
    try {
      const t0 = Date.now();
      const { events } = await runClient(
        { servers: [{ host: "127.0.0.1", port }], startSpread: 1, minpoll: 1, clock: systemClock() },
        2,
        3000,
      );
      const s = samples(events);
      assert.equal(s.length, 1, "one exchange in 3 s: the 1 s minpoll was raised to 15 s");
      assert.ok(s[0]!.nextS >= 15, `next in ${s[0]!.nextS} s`);
      assert.ok(Date.now() - t0 >= 2900);
    } finally {
      await server.stop();
    }
  });
});

describe("against chronyd", () => {
  it("takes samples from a chronyd serving local stratum 5", { timeout: 30_000 }, async () => {
    const port = await freeUdpPort();
    const chrony = await startChronyServer({ port, stratum: 5 });
    try {
      const { events } = await runClient(
        { servers: [{ host: "127.0.0.1", port }], startSpread: 1, clock: fastClock() },
        2,
      );
      const s = samples(events);
      assert.equal(s.length, 2, JSON.stringify(events));
      assert.ok(s.every((e) => e.sample.stratum === 5 && Math.abs(e.sample.offsetMs) < 50));
    } finally {
      await chrony.stop();
    }
  });
});

describe("over real sockets, against servers that misbehave on purpose", () => {
  it("every exchange leaves from a different random source port (RFC 9109)", async () => {
    const fake = await fakeServer((req, from, sock) => sock.send(reply(req), from.port, from.address));
    try {
      const { events } = await runClient(
        { servers: [{ host: "127.0.0.1", port: fake.port }], startSpread: 1, clock: fastClock() },
        8,
      );
      assert.equal(samples(events).length, 8);
      const ports = new Set(fake.seen.map((s) => s.port));
      assert.ok(ports.size >= 7, `source ports: ${[...ports]}`);
      assert.ok(!ports.has(123));
    } finally {
      await fake.close();
    }
  });

  it("a kiss-o'-death with a wrong origin timestamp is ignored; the real reply that follows is taken", async () => {
    const fake = await fakeServer((req, from, sock) => {
      sock.send(reply(req, { kiss: "DENY", origin: { seconds: 7, fraction: 7 } }), from.port, from.address);
      sock.send(
        reply(req, { kiss: "RATE", poll: 17, origin: { seconds: 8, fraction: 8 } }),
        from.port,
        from.address,
      );
      setTimeout(() => sock.send(reply(req), from.port, from.address), 20);
    });
    const state = join(dir, "forged.json");
    try {
      const { events } = await runClient(
        {
          servers: [{ host: "127.0.0.1", port: fake.port }],
          startSpread: 1,
          clock: fastClock(),
          stateFile: state,
        },
        3,
      );
      assert.equal(samples(events).length, 3);
      assert.equal(events.filter((e) => e.kind === "kiss").length, 0);
      const ignored = events.filter((e) => e.kind === "ignored");
      assert.equal(ignored.length, 6);
      assert.ok(ignored.every((e) => e.kind === "ignored" && e.reason === "origin-mismatch"));
      assert.deepEqual(readStateFile(state).refusals, []);
    } finally {
      await fake.close();
    }
  });

  it("a reply from another address: ignored by default, followed (and said) with followRedirects", async () => {
    // The request goes to 127.0.0.1; the answer comes from 127.0.0.2 (the paper's redirection, §8).
    const other = dgram.createSocket("udp4");
    const otherPort = await freeUdpPort("127.0.0.2");
    await new Promise<void>((r) => other.bind(otherPort, "127.0.0.2", () => r()));
    const fake = await fakeServer((req, from) => {
      other.send(reply(req), from.port, from.address);
    });
    try {
      const strict = await runClient(
        {
          servers: [{ host: "127.0.0.1", port: fake.port }],
          startSpread: 1,
          replyTimeout: 0.3,
          clock: fastClock(),
        },
        1,
      );
      assert.equal(strict.events.filter((e) => e.kind === "no-reply").length, 1);
      assert.ok(strict.events.some((e) => e.kind === "ignored" && e.reason === "unexpected-address"));
      // With followRedirects the client switches to 127.0.0.2:otherPort.
      const follow = await runClient(
        {
          servers: [{ host: "127.0.0.1", port: fake.port }],
          startSpread: 1,
          replyTimeout: 0.3,
          followRedirects: true,
          clock: fastClock(),
        },
        1,
      );
      const redirect = follow.events.find((e) => e.kind === "redirect");
      assert.ok(redirect && redirect.kind === "redirect");
      assert.deepEqual([redirect.from, redirect.to, redirect.port], ["127.0.0.1", "127.0.0.2", otherPort]);
      const s = samples(follow.events);
      assert.equal(s.length, 1);
      assert.ok(s[0]!.redirected);
      assert.equal(follow.client.status()[0]!.address, "127.0.0.2");
    } finally {
      await fake.close();
      await new Promise<void>((r) => other.close(() => r()));
    }
  });

  it("DENY: the address is remembered in the state file, and the next run never sends to it", async () => {
    const fake = await fakeServer((req, from, sock) =>
      sock.send(reply(req, { kiss: "DENY" }), from.port, from.address),
    );
    const state = join(dir, "deny.json");
    try {
      const first = await runClient(
        {
          servers: [{ host: "127.0.0.1", port: fake.port }],
          startSpread: 1,
          clock: fastClock(),
          stateFile: state,
        },
        1,
      );
      const kiss = first.events.find((e) => e.kind === "kiss");
      assert.ok(kiss && kiss.kind === "kiss" && kiss.code === "DENY" && kiss.action === "stop");
      const saved = readStateFile(state).refusals;
      assert.equal(saved.length, 1);
      assert.deepEqual([saved[0]!.address, saved[0]!.port, saved[0]!.code], ["127.0.0.1", fake.port, "DENY"]);
      assert.ok(saved[0]!.untilMs > Date.now() + 6 * 86400_000);
      assert.equal(JSON.parse(readFileSync(state, "utf8")).version, 1);
      // The next run: nothing is sent to that address; the source stops at its first poll.
      const before = fake.seen.length;
      const events: ClientEvent[] = [];
      const second = new NtpClient({
        servers: [{ host: "127.0.0.1", port: fake.port }],
        startSpread: 1,
        clock: fastClock(),
        stateFile: state,
        onEvent: (e) => events.push(e),
      });
      assert.equal(second.refusals().length, 1);
      second.start();
      await new Promise((r) => setTimeout(r, 300));
      second.stop();
      assert.equal(fake.seen.length, before, "no request reached the refusing server");
      assert.ok(events.some((e) => e.kind === "stopped"));
      assert.equal(second.core.usableSources(), 0);
    } finally {
      await fake.close();
    }
  });
});
