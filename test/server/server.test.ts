// The server shell, really started on loopback: worker threads, sockets, counters, reload, and garbage that
// never stops it.
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { availableParallelism } from "node:os";
import { after, before, describe, it } from "node:test";
import { defaultConfig } from "../../src/config/index.ts";
import { ServeError } from "../../src/server/errors.ts";
import { createLogger } from "../../src/server/log.ts";
import { NtpServer, type ServerSettings } from "../../src/server/server.ts";
import { clientRequest, exchange } from "../helpers/ntp.ts";

function settings(over: Partial<ServerSettings> = {}): ServerSettings {
  return {
    listen: [{ host: "127.0.0.1", port: 0, family: 4 }],
    threads: 2,
    user: "",
    answerSymmetric: true,
    precision: 0,
    clock: {
      stratum: 7,
      refid: "TEST",
      rootDelay: 0,
      rootDispersion: 0.01,
      upstream: [],
      poll: 64,
      holdTime: 1800,
      correctOffset: false,
    },
    config: defaultConfig(),
    ...over,
  };
}

const quiet = createLogger("error", () => {});

// Both ways of moving packets ([server] io): the native addon (built by `npm ci`; "native" fails rather than
// falls back) and node:dgram.
for (const io of ["native", "dgram"] as const)
  describe(`NtpServer on loopback (io ${io})`, () => {
    let server: NtpServer;
    let port: number;
    const withIo = (over: Partial<ServerSettings> = {}) =>
      settings({ config: { ...defaultConfig(), server: { ...defaultConfig().server, io } }, ...over });

    before(async () => {
      server = new NtpServer(withIo(), quiet);
      await server.start();
      port = server.addresses[0]!.port;
    });
    after(async () => {
      await server.stop();
    });

    it("answers a client request with the configured stratum and refid and the right origin", async () => {
      const [reply] = await exchange(port, [clientRequest()]);
      assert.ok(reply, "a reply came");
      assert.equal(reply.length, 48);
      assert.equal(reply[0]! & 7, 4);
      assert.equal(reply[1], 7);
      assert.equal(reply.toString("latin1", 12, 16), "TEST");
      assert.equal(reply.readUInt32BE(24), 0xdeadbeef);
      assert.equal(reply.readUInt32BE(28), 0x01234567);
      const transmitS = reply.readUInt32BE(40) - 2208988800;
      assert.ok(Math.abs(transmitS - Date.now() / 1000) < 2, "serves the system clock");
    });

    it("counts and drops every kind of malformed packet and keeps serving", async () => {
      const before = server.stats();
      const junk = [
        Buffer.alloc(0),
        Buffer.alloc(1, 0x23),
        Buffer.alloc(47, 0x23),
        Buffer.from(clientRequest(0)),
        Buffer.from(clientRequest(6)),
        Buffer.concat([clientRequest(), Buffer.alloc(3)]), // not a multiple of 4
        Buffer.concat([clientRequest(), Buffer.from([0, 1, 0, 8, 0, 0, 0, 0])]), // extension field too short
        Buffer.alloc(2000, 0x23), // too long
        Buffer.alloc(3000, 0x23), // longer than any request buffer: cut short by the kernel, still counted
        clientRequest(4, 4), // a server reply we never asked for
        clientRequest(2, 7), // monlist: never
      ];
      const replies = await exchange(port, [...junk, clientRequest()], 400);
      assert.equal(replies.length, 1, "only the well-formed request is answered");
      const after = server.stats();
      assert.equal(after.received - before.received, junk.length + 1);
      assert.equal(after.byResponse.dropped - before.byResponse.dropped, junk.length);
      assert.equal(after.byResponse.served - before.byResponse.served, 1);
      assert.ok(after.byReason.malformed_too_short! - before.byReason.malformed_too_short! >= 3);
      assert.equal(after.byReason.drop_mode_private! - before.byReason.drop_mode_private!, 1);
      assert.equal(after.byReason.malformed_too_long! - before.byReason.malformed_too_long!, 2);
    });

    it("reloads the clock settings without a restart", async () => {
      const restart = server.reload(withIo({ clock: { ...settings().clock, stratum: 3, refid: "GPS" } }));
      assert.deepEqual(restart, []);
      await new Promise((r) => setTimeout(r, 50));
      const [reply] = await exchange(port, [clientRequest()]);
      assert.equal(reply?.[1], 3);
      assert.equal(reply?.toString("latin1", 12, 15), "GPS");
      assert.deepEqual(server.reload(withIo({ threads: 4 })), ["server.threads"]);
      // Keys the schema marks "restart" are reported and keep their running values; the rest apply.
      const base = withIo().config;
      const next = {
        ...base,
        server: { ...base.server, io: io === "native" ? ("dgram" as const) : ("native" as const) },
        mru: { ...base.mru, maxEntries: 5 },
        callgap: { ...base.callgap, leak: 0 },
      };
      assert.deepEqual(server.reload(withIo({ config: next })).sort(), ["mru.max-entries", "server.io"]);
      const running = (server as unknown as { settings: { config: typeof base } }).settings.config;
      assert.equal(running.server.io, io);
      assert.equal(running.mru.maxEntries, base.mru.maxEntries);
      assert.equal(running.callgap.leak, 0, "a live key applies at once");
    });
  });

describe("NtpServer start-up errors", () => {
  it("names the address when it is already in use", async () => {
    const holder = dgram.createSocket("udp4");
    await new Promise<void>((r) => holder.bind(0, "127.0.0.1", () => r()));
    const taken = holder.address().port;
    const s = new NtpServer(settings({ listen: [{ host: "127.0.0.1", port: taken, family: 4 }] }), quiet);
    await assert.rejects(
      s.start(),
      (e: unknown) =>
        e instanceof ServeError && e.code === "ERR_BIND_IN_USE" && e.message.includes(`127.0.0.1:${taken}`),
    );
    holder.close();
  });

  it("says an address is not local", async () => {
    const s = new NtpServer(settings({ listen: [{ host: "192.0.2.1", port: 0, family: 4 }] }), quiet);
    await assert.rejects(
      s.start(),
      (e: unknown) => e instanceof ServeError && e.code === "ERR_BIND_NOT_AVAILABLE",
    );
  });

  it("serves IPv6 on ::1", async () => {
    const s = new NtpServer(settings({ listen: [{ host: "::1", port: 0, family: 6 }], threads: 1 }), quiet);
    await s.start();
    try {
      const [reply] = await exchange(s.addresses[0]!.port, [clientRequest()], 300, "::1");
      assert.equal(reply?.[1], 7);
    } finally {
      await s.stop();
    }
  });
});

describe("NtpServer threads and cores", () => {
  /** Starts a server with `threads` workers, and returns the warnings it logged, then stops it. */
  async function warnings(threads: number): Promise<Record<string, unknown>[]> {
    const lines: string[] = [];
    const s = new NtpServer(
      settings({ threads }),
      createLogger("warn", (l) => lines.push(l)),
    );
    await s.start();
    try {
      const [reply] = await exchange(s.addresses[0]!.port, [clientRequest()]);
      assert.equal(reply?.[1], 7, "it serves");
    } finally {
      await s.stop();
    }
    return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  it("more workers than cores is legal, with a warning saying what each costs in memory", async () => {
    const cores = availableParallelism();
    const logged = await warnings(cores + 2);
    assert.equal(logged.length, 1, JSON.stringify(logged));
    const w = logged[0]!;
    assert.equal(w["level"], "warn");
    assert.match(String(w["msg"]), /more worker threads than cores/);
    assert.equal(w["threads"], cores + 2);
    assert.equal(w["cores"], cores);
    const m = /^about (\d+) MiB each, about (\d+) MiB for (\d+)$/.exec(String(w["memory"]));
    assert.ok(m, String(w["memory"]));
    assert.ok(Number(m[1]) >= 1 && Number(m[1]) < 1024, `a worker's memory is plausible: ${m[1]} MiB`);
    assert.equal(Number(m[2]), Number(m[1]) * (cores + 2));
  });

  it("as many workers as cores, or fewer, says nothing", async () => {
    assert.deepEqual(await warnings(Math.min(2, availableParallelism())), []);
  });
});

describe("NtpServer stopped during start-up", () => {
  /** Binds the port alone (no SO_REUSEPORT): fails while any worker still holds a socket on it. */
  async function portIsFree(port: number): Promise<boolean> {
    const sock = dgram.createSocket("udp4");
    const ok = await new Promise<boolean>((r) => {
      sock.once("error", () => r(false));
      sock.bind({ port, address: "127.0.0.1", exclusive: true }, () => r(true));
    });
    sock.close();
    return ok;
  }

  // 8 workers on this machine's cores: at 0 ms the addresses are being probed, later the workers spawn
  // (one alone first when they outnumber the cores), at the longest start() may have finished.
  for (const delayMs of [0, 20, 100, 250, 500]) {
    it(`a stop() ${delayMs} ms into start() ends it with ERR_STOPPED and leaves no worker`, async () => {
      const s = new NtpServer(settings({ threads: 8 }), quiet);
      let finished = false;
      const started = s.start().then(
        () => {
          finished = true;
          return undefined;
        },
        (e: unknown) => e,
      );
      await new Promise((r) => setTimeout(r, delayMs));
      const overtaken = !finished;
      const t0 = Date.now();
      await s.stop();
      const outcome = await Promise.race([
        started,
        new Promise((r) => setTimeout(() => r("start() never settled"), 10_000)),
      ]);
      assert.ok(Date.now() - t0 < 10_000, "stops within 10 s");
      if (overtaken) {
        assert.ok(
          outcome instanceof ServeError && outcome.code === "ERR_STOPPED",
          `start() ends with ERR_STOPPED, got ${String(outcome)}`,
        );
      } else {
        assert.equal(outcome, undefined, "start() had finished");
      }
      if (s.addresses.length > 0)
        assert.ok(await portIsFree(s.addresses[0]!.port), "no worker holds the port");
      // A second stop is the same stop.
      await s.stop();
    });
  }
});

describe("NtpServer worker restart", () => {
  it("a worker restarted after a crash starts from the current blocklist, changes since start included", async () => {
    const config = {
      ...defaultConfig(),
      blocklist: { ...defaultConfig().blocklist, enabled: true, path: ":memory:" },
    };
    const s = new NtpServer(settings({ config, threads: 1 }), quiet);
    await s.start();
    try {
      const port = s.addresses[0]!.port;
      s.blockAddress({ address: "127.0.0.71", reason: "test", source: "manual" });
      // The one worker dies; the server starts another in its place.
      const slots = (
        s as unknown as { slots: { worker: { terminate(): Promise<number>; threadId: number } }[] }
      ).slots;
      const before = slots[0]!.worker.threadId;
      await slots[0]!.worker.terminate();
      for (let i = 0; i < 100 && slots[0]!.worker.threadId === before; i++)
        await new Promise((r) => setTimeout(r, 20));
      assert.notEqual(slots[0]!.worker.threadId, before, "a new worker");
      // Answers again (from the new worker), but not to the address blocked after the start.
      let served: Buffer[] = [];
      for (let i = 0; i < 50 && served.length === 0; i++)
        served = await exchange(port, [clientRequest()], 100);
      assert.equal(served.length, 1, "the new worker serves");
      const blocked = await exchangeFrom("127.0.0.71", port, [clientRequest()], 300);
      assert.equal(blocked.length, 0, "the blocked address stays blocked in the new worker");
    } finally {
      await s.stop();
    }
  });
});

/** Like exchange(), from a chosen loopback source address. */
async function exchangeFrom(
  from: string,
  port: number,
  packets: Buffer[],
  waitMs: number,
): Promise<Buffer[]> {
  const sock = dgram.createSocket("udp4");
  const got: Buffer[] = [];
  sock.on("message", (m) => got.push(m));
  await new Promise<void>((r) => sock.bind(0, from, () => r()));
  for (const p of packets) sock.send(p, port, "127.0.0.1");
  await new Promise((r) => setTimeout(r, waitMs));
  await new Promise<void>((r) => sock.close(() => r()));
  return got;
}
