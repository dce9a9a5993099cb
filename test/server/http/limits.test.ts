// The monitoring endpoint's connection limits (docs/monitoring.md, "Limits") with real sockets against a
// real server: a connection that has not sent its whole header within [http] header-timeout is answered
// 408 and closed however long it keeps sending, a silent one is closed after [http] idle-timeout, and one
// address holds at most [http] max-connections-per-address, so slow connections from one address never
// take the endpoint from the others, and those from many addresses hold it for at most the header time.
// The slow clients keep their side open after the server's FIN (allowHalfOpen), as an attacker would.

import assert from "node:assert/strict";
import { request } from "node:http";
import { connect, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { parseConfig } from "../../../src/config/index.ts";
import { HttpMonitor, type MonitorSource } from "../../../src/server/http/index.ts";
import { createLogger } from "../../../src/server/log.ts";
import { freeUdpPort, killAllPeers, type Ntpshield, startNtpshield } from "../../helpers/peers.ts";

after(killAllPeers);

const HEADER_MS = 1000;
const IDLE_MS = 300;
const PER_ADDRESS = 8;
const MAX_CONNECTIONS = 128;
/** Room for a loaded test machine on every deadline. */
const SLACK_MS = 750;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Slow {
  socket: Socket;
  /** performance.now() at connect (NaN if it never connected). */
  connectedAt: number;
  /** performance.now() when the server closed its side (FIN), once it has. */
  endedAt: number | undefined;
  /** performance.now() when the server was found to have destroyed its side (a reset), once it was. */
  closedAt: number | undefined;
  closed: Promise<void>;
  /** What the server wrote to it. */
  received: string;
}

/**
 * A connection from `localAddress` that sends a request line and then one header byte every 250 ms, never
 * ending its header (or, with `silent`, sends nothing at all). Resolves once connected (or closed); it is
 * closed only when the server has destroyed its end.
 */
function slowConnection(port: number, localAddress: string, silent = false): Promise<Slow> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port, localAddress, allowHalfOpen: true });
    let timer: NodeJS.Timeout | undefined;
    const slow: Slow = {
      socket,
      connectedAt: Number.NaN,
      endedAt: undefined,
      closedAt: undefined,
      closed: Promise.resolve(),
      received: "",
    };
    slow.closed = new Promise<void>((r) =>
      socket.once("close", () => {
        clearInterval(timer);
        slow.closedAt = performance.now();
        r();
        resolve(slow);
      }),
    );
    socket.on("error", () => {});
    // After the server's FIN it goes on writing: a socket the server destroyed answers with a reset, which
    // closes ours; one it only ended (half-closed) takes the bytes, and ours stays open.
    socket.on("end", () => {
      slow.endedAt = performance.now();
      timer ??= setInterval(() => socket.write("a"), 100);
    });
    socket.on("data", (d: Buffer) => {
      slow.received += d.toString("latin1");
    });
    socket.once("connect", () => {
      slow.connectedAt = performance.now();
      if (!silent) {
        socket.write("GET /api/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
        timer = setInterval(() => socket.write("a"), 250);
      }
      resolve(slow);
    });
  });
}

/** A GET on a connection of its own; the status, or 0 when refused, reset or unanswered in `timeoutMs`. */
function status(url: string, timeoutMs = 2000, localAddress?: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      url,
      { agent: false, timeout: timeoutMs, ...(localAddress !== undefined && { localAddress }) },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
        res.on("error", () => resolve(0));
      },
    );
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(0));
    req.end();
  });
}

/** Connected, and the server has not closed it (it holds a connection slot). */
const isHeld = (s: Slow) =>
  !Number.isNaN(s.connectedAt) && s.endedAt === undefined && s.closedAt === undefined;

describe("monitoring endpoint: slow and silent connections", () => {
  let server: Ntpshield;
  let port: number;
  let stats: string;

  before(async () => {
    server = await startNtpshield({
      listen: [`127.0.0.1:${await freeUdpPort()}`],
      configToml: [
        "[http]",
        `header-timeout = ${HEADER_MS / 1000}`,
        `idle-timeout = ${IDLE_MS / 1000}`,
        `max-connections = ${MAX_CONNECTIONS}`,
        `max-connections-per-address = ${PER_ADDRESS}`,
      ].join("\n"),
    });
    stats = `${server.httpUrl!}/api/stats`;
    port = Number(new URL(server.httpUrl!).port);
    assert.equal(await status(stats), 200);
  });
  after(async () => {
    await server?.stop();
  });

  test("a slow header is answered 408 and closed within the header time; a silent connection sooner", async () => {
    const [silent, slow] = await Promise.all([
      slowConnection(port, "127.0.0.31", true),
      slowConnection(port, "127.0.0.32"),
    ]);
    const deadline = sleep(HEADER_MS + 3 * SLACK_MS);
    await Promise.race([Promise.all([silent.closed, slow.closed]), deadline]);
    assert.ok(silent.closedAt !== undefined, "the silent connection was destroyed");
    assert.ok(slow.closedAt !== undefined, "the slow connection was destroyed although it kept sending");
    // When the server let go (its FIN); the reset that proves it destroyed the socket follows a write later.
    const silentMs = silent.endedAt! - silent.connectedAt;
    const slowMs = slow.endedAt! - slow.connectedAt;
    assert.ok(
      silentMs >= IDLE_MS - 50 && silentMs < IDLE_MS + SLACK_MS,
      `silent: closed after ${silentMs} ms`,
    );
    assert.ok(slowMs >= HEADER_MS / 2 && slowMs <= HEADER_MS + SLACK_MS, `slow: closed after ${slowMs} ms`);
    assert.match(slow.received, /^HTTP\/1\.1 408 /);
    assert.equal(silent.received, "");
  });

  test("200 slow connections from one address: it holds a few, and another address is always answered", async () => {
    const from = "127.0.0.50";
    const all: Slow[] = [];
    let holding = true;
    // An attacker that reconnects whenever a connection is closed, keeping 200 going for the whole hold.
    const hold = async (): Promise<void> => {
      while (holding) {
        const s = await slowConnection(port, from);
        all.push(s);
        await s.closed;
        await sleep(100);
      }
    };
    const holders = Array.from({ length: 200 }, () => hold());
    try {
      await waitUntil(() => all.length >= 200);
      await sleep(300);
      const held = all.filter(isHeld).length;
      assert.ok(held >= 1 && held <= PER_ADDRESS, `${held} of 200 held; at most ${PER_ADDRESS}`);

      // Asked a fixed number of times across at least three header timeouts (the holders reconnect all the
      // while), so that a slow machine asks as often as a fast one.
      let asked = 0;
      let answered = 0;
      const end = performance.now() + 3 * HEADER_MS;
      while (asked < 6 || performance.now() < end) {
        asked++;
        if ((await status(stats)) === 200) answered++;
        await sleep(100);
      }
      assert.equal(answered, asked, `answered ${answered} of ${asked} during the hold`);
    } finally {
      holding = false;
      for (const s of all) s.socket.destroy();
      await Promise.all(holders);
    }
  });

  test("128 slow connections from 128 addresses hold the endpoint for at most the header time", async () => {
    const slows = await Promise.all(
      Array.from({ length: MAX_CONNECTIONS }, (_, i) => slowConnection(port, `127.0.1.${i + 1}`)),
    );
    const held = performance.now();
    try {
      assert.equal(await status(stats, 500), 0, "every slot taken: refused");
      let firstAnswer = Number.NaN;
      while (performance.now() < held + HEADER_MS + 3 * SLACK_MS) {
        if ((await status(stats, 500)) === 200) {
          firstAnswer = performance.now() - held;
          break;
        }
        await sleep(50);
      }
      assert.ok(firstAnswer <= HEADER_MS + SLACK_MS, `answered again after ${firstAnswer} ms`);
      for (let i = 0; i < 5; i++) assert.equal(await status(stats), 200, "and from then on");
      await Promise.race([Promise.all(slows.map((s) => s.closed)), sleep(SLACK_MS)]);
      assert.equal(slows.filter(isHeld).length, 0, "every slow connection closed");
    } finally {
      for (const s of slows) s.socket.destroy();
    }
  });
});

describe("monitoring endpoint: limits follow a reload", () => {
  const quiet = createLogger("error", () => {});
  const source: MonitorSource = {
    addresses: [],
    threads: 1,
    defences: undefined,
    blocklistStore: undefined,
    state: undefined,
    stats: () => {
      throw new Error("not read here");
    },
    blockAddress: () => {
      throw new Error("not written here");
    },
    unblockAddress: () => false,
  };
  const config = (perAddress: number) =>
    parseConfig(`[http]\nlisten = "127.0.0.1:0"\nmax-connections-per-address = ${perAddress}\n`);
  let monitor: HttpMonitor | undefined;
  after(async () => {
    await monitor?.close();
  });

  test("max-connections-per-address lowered by reconfigure() refuses the next connection", async () => {
    monitor = new HttpMonitor({ source, config: config(4), log: quiet, startedAtMs: Date.now() });
    const port = Number((await monitor.listen()).split(":").pop());
    const first = await slowConnection(port, "127.0.0.70");
    const second = await slowConnection(port, "127.0.0.70");
    await sleep(100);
    assert.ok(isHeld(first) && isHeld(second), "4 allowed: both held");
    monitor.reconfigure(config(2));
    const third = await slowConnection(port, "127.0.0.70");
    await Promise.race([third.closed, sleep(1000)]);
    assert.ok(!isHeld(third), "2 allowed now: the third is closed at once");
    assert.equal(third.received, "", "without an answer");
    assert.equal(await status(`http://127.0.0.1:${port}/favicon.ico`, 2000, "127.0.0.71"), 204);
    for (const s of [first, second, third]) s.socket.destroy();
  });
});

async function waitUntil(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await sleep(20);
  }
}
