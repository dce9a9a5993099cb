// The fleet's shared blocklist store against a real redis-server (test/helpers/redis.ts): the RESP2 codec,
// the client's pipelining, timeouts and reconnection, then the same store-behaviour suite as SQLite's.
import assert from "node:assert/strict";
import { createServer, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import {
  parseRedisUrl,
  RedisClient,
  RedisUnavailableError,
} from "../../../src/server/blocklist/redis-client.ts";
import { compareStreamIds, RedisBlocklist } from "../../../src/server/blocklist/redis-store.ts";
import {
  encodeCommand,
  RespParser,
  RespProtocolError,
  RespReplyError,
} from "../../../src/server/blocklist/resp.ts";
import { waitFor } from "../../helpers/peers.ts";
import { type RedisPeer, startRedis } from "../../helpers/redis.ts";
import { storeBehaviour } from "./store-behaviour.ts";

describe("RESP2", () => {
  it("encodes a command as an array of bulk strings, UTF-8 lengths in bytes", () => {
    assert.equal(
      encodeCommand(["SET", "k", "é", 12]).toString(),
      "*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\né\r\n$2\r\n12\r\n",
    );
  });

  it("parses every reply type, whole or split at any byte", () => {
    const wire = Buffer.from(
      "+OK\r\n-ERR wrong\r\n:42\r\n$4\r\nhé!\r\n$-1\r\n*3\r\n:1\r\n*1\r\n$1\r\nx\r\n$0\r\n\r\n*-1\r\n",
    );
    const check = (values: unknown[]) => {
      assert.equal(values.length, 7);
      assert.equal(values[0], "OK");
      assert.ok(values[1] instanceof RespReplyError);
      assert.equal((values[1] as Error).message, "ERR wrong");
      assert.equal(values[2], 42);
      assert.equal(values[3], "hé!");
      assert.equal(values[4], null);
      assert.deepEqual(values[5], [1, ["x"], ""]);
      assert.equal(values[6], null);
    };
    check(new RespParser().push(wire));
    for (let cut = 1; cut < wire.length; cut++) {
      const p = new RespParser();
      check([...p.push(wire.subarray(0, cut)), ...p.push(wire.subarray(cut))]);
      assert.equal(p.pending, 0);
    }
    // One byte at a time.
    const p = new RespParser();
    const out: unknown[] = [];
    for (const b of wire) out.push(...p.push(Buffer.from([b])));
    check(out);
  });

  it("refuses what is not RESP", () => {
    assert.throws(() => new RespParser().push(Buffer.from("HTTP/1.1 400\r\n")), RespProtocolError);
    assert.throws(() => new RespParser().push(Buffer.from(":12x\r\n")), RespProtocolError);
    assert.throws(() => new RespParser().push(Buffer.from("$3\r\nabcd\r\n")), RespProtocolError);
  });
});

describe("parseRedisUrl", () => {
  it("reads host, port, database and login; names what is wrong", () => {
    assert.deepEqual(parseRedisUrl("redis://127.0.0.1:6380/2"), {
      host: "127.0.0.1",
      port: 6380,
      db: 2,
      username: undefined,
      password: undefined,
    });
    assert.deepEqual(parseRedisUrl("redis://u:p%40ss@[::1]"), {
      host: "::1",
      port: 6379,
      db: 0,
      username: "u",
      password: "p@ss",
    });
    assert.throws(() => parseRedisUrl("http://x"), /scheme must be redis/);
    assert.throws(() => parseRedisUrl("redis://x:0"), /bad port/);
    assert.throws(() => parseRedisUrl("redis://x/abc"), /database/);
    assert.throws(() => parseRedisUrl("nonsense"), /not a URL/);
  });
});

describe("RedisClient (real redis-server)", () => {
  let redis: RedisPeer;
  before(async () => {
    redis = await startRedis("127.0.50.1");
  });
  after(() => redis?.destroy());

  it("pipelines commands and matches replies in order; a reply error fails only its command", async () => {
    const c = new RedisClient(redis.url);
    try {
      await c.ready();
      const r = await c.pipeline([
        ["SET", "t:a", "1"],
        ["INCR", "t:a"],
        ["HSET", "t:a", "f", "v"],
        ["GET", "t:a"],
        ["GET", "t:missing"],
      ]);
      assert.equal(r[0], "OK");
      assert.equal(r[1], 2);
      assert.ok(r[2] instanceof RespReplyError, "WRONGTYPE comes back as its command's reply");
      assert.equal(r[3], "2");
      assert.equal(r[4], null);
      await assert.rejects(c.command(["NOSUCHCOMMAND"]), RespReplyError);
      assert.equal(await c.command(["PING"]), "PONG");
    } finally {
      c.close();
    }
  });

  it("fails commands at once while Redis is away, says so, and reconnects when it is back", async () => {
    const states: boolean[] = [];
    const c = new RedisClient(redis.url, {
      minBackoffMs: 20,
      maxBackoffMs: 100,
      onState: (up) => states.push(up),
    });
    try {
      await c.ready();
      await redis.stop();
      await waitFor("the client to see Redis gone", async () => (c.up ? undefined : true), 3000, 20);
      await assert.rejects(c.command(["PING"]), RedisUnavailableError);
      await redis.start();
      await waitFor("the client to reconnect", async () => (c.up ? true : undefined), 5000, 20);
      assert.equal(await c.command(["PING"]), "PONG");
      assert.deepEqual(states, [true, false, true]);
    } finally {
      c.close();
    }
  });

  it("drops a connection whose server stops answering, and fails its pending command", async () => {
    // A TCP server that takes the login's PING and then goes silent: a hung Redis.
    const sockets: Socket[] = [];
    let answered = 0;
    const mute = createServer((s) => {
      sockets.push(s);
      s.on("data", () => {
        if (answered++ === 0) s.write("+PONG\r\n");
      });
    });
    await new Promise<void>((r) => mute.listen(0, "127.0.50.2", () => r()));
    const port = (mute.address() as { port: number }).port;
    const c = new RedisClient(`redis://127.0.50.2:${port}`, { commandTimeoutMs: 200, minBackoffMs: 5000 });
    try {
      await c.ready();
      const t0 = Date.now();
      await assert.rejects(c.command(["GET", "x"]), /no reply within 200 ms/);
      assert.ok(Date.now() - t0 < 2000);
      assert.equal(c.up, false);
    } finally {
      c.close();
      for (const s of sockets) s.destroy();
      mute.close();
    }
  });
});

let prefixes = 0;
let shared: RedisPeer | undefined;
after(() => shared?.destroy());

storeBehaviour("Redis", async () => {
  shared ??= await startRedis("127.0.50.3");
  const client = new RedisClient(shared.url);
  await client.ready();
  const s = new RedisBlocklist(client, { key: `test${++prefixes}` });
  return {
    add: (w) => s.add(w),
    remove: (a) => s.remove(a),
    get: (a) => s.get(a),
    list: (o) => s.list(o),
    count: (n) => s.count(n),
    addHits: async (a, n, at) => {
      await s.addHits(a, n, at);
    },
    prune: (n) => s.prune(n),
    close: async () => client.close(),
  };
});

describe("RedisBlocklist: the changes stream and the epoch", () => {
  let redis: RedisPeer;
  before(async () => {
    redis = await startRedis("127.0.50.4");
  });
  after(() => redis?.destroy());

  it("records every add and removal, readable from any ID; the epoch stays until the data goes", async () => {
    const c = new RedisClient(redis.url, { minBackoffMs: 20 });
    try {
      await c.ready();
      const a = new RedisBlocklist(c, { origin: "a" });
      const epoch = await a.epoch();
      assert.match(epoch, /^[0-9a-f]{16}$/);
      assert.equal(await new RedisBlocklist(c, { origin: "b" }).epoch(), epoch);
      assert.deepEqual(await a.streamState(), { last: "0-0", maxDeleted: "0-0" });
      await a.add({ address: "192.0.2.1", reason: "r", source: "manual" });
      await a.addHits("192.0.2.1", 5);
      await a.remove("192.0.2.1");
      const all = await a.changesSince("0-0");
      assert.deepEqual(
        all.map((x) => [x.op, x.address, x.origin]),
        [
          ["upsert", "192.0.2.1", "a"],
          ["remove", "192.0.2.1", "a"],
        ],
        "hit counts are not streamed",
      );
      assert.equal(all[0]?.entry?.reason, "r");
      assert.deepEqual(await a.changesSince(all[0]!.id), [all[1]]);
      assert.equal((await a.streamState()).last, all[1]!.id);
      assert.ok(compareStreamIds(all[0]!.id, all[1]!.id) < 0);
      assert.ok((await a.removals()).has("192.0.2.1"));
      await redis.stop();
      await redis.start();
      await waitFor("reconnection", async () => (c.up ? true : undefined), 5000, 20);
      assert.notEqual(await a.epoch(), epoch, "an empty Redis gets a new epoch");
    } finally {
      c.close();
    }
  });

  it("seeds an entry only where Redis has none and no later removal", async () => {
    const c = new RedisClient(redis.url);
    try {
      await c.ready();
      const s = new RedisBlocklist(c, { key: "seed" });
      const e = {
        address: "192.0.2.7",
        reason: "x",
        addedMs: 1000,
        updatedMs: 2000,
        expiresMs: null,
        hits: 3,
        source: "auto" as const,
      };
      assert.deepEqual(await s.seed(e), e);
      assert.deepEqual(await s.get("192.0.2.7"), e);
      await s.remove("192.0.2.7", 3000);
      assert.equal(await s.seed(e), null, "removed after the entry was last written: the removal wins");
      assert.deepEqual(await s.seed({ ...e, updatedMs: 4000 }), { ...e, updatedMs: 4000 });
    } finally {
      c.close();
    }
  });
});
