// The batched UDP addon (native/udpio.c through src/server/native-udp.ts), against real node:dgram clients
// on loopback: datagrams arrive whole with the source key, port and kernel time the defences need, replies
// go back to the right client, batches are bounded, and what a third party can provoke (oversized
// datagrams, replies to closed ports, ICMP errors, a full receive buffer) is counted, never thrown.
// The addon is built first when missing or stale; on Linux a failed build fails every test here.
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { after, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { buildNative, NATIVE_BINARY, nativeIsStale } from "../../scripts/build-native.ts";
import { KEY_WORDS, parseAddressKey } from "../../src/defence/address-key.ts";
import { type NativeUdp, type NativeUdpSocket, tryLoadNativeUdp } from "../../src/server/native-udp.ts";

const MODULE_URL = pathToFileURL(new URL("../../src/server/native-udp.ts", import.meta.url).pathname).href;

// Built and loaded at import, so that a failure fails this file outright rather than cancelling its tests.
assert.equal(process.platform, "linux", "the UDP addon is built and tested on Linux");
if (nativeIsStale()) buildNative();
assert.equal(nativeIsStale(), false, `${NATIVE_BINARY} is still stale after building`);
const loaded = tryLoadNativeUdp(NATIVE_BINARY);
if (!loaded.ok) assert.fail(`the addon does not load: ${loaded.reason}`);
const udp: NativeUdp = loaded.udp;
const opened: NativeUdpSocket[] = [];
const clients: dgram.Socket[] = [];

after(async () => {
  for (const s of opened) s.close();
  await Promise.all(clients.map((c) => new Promise<void>((res) => c.close(() => res()))));
});

function open(host: string, family: 4 | 6, options = {}, port = 0): NativeUdpSocket {
  const s = udp.open(host, port, family, options);
  opened.push(s);
  return s;
}

async function client(host: string): Promise<dgram.Socket> {
  const c = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
  clients.push(c);
  await new Promise<void>((res, rej) => {
    c.once("error", rej);
    c.bind(0, host, () => res());
  });
  return c;
}

function sendFrom(c: dgram.Socket, payload: Uint8Array, port: number, host: string): Promise<void> {
  return new Promise((res, rej) => c.send(payload, port, host, (err) => (err ? rej(err) : res())));
}

/** Replies a client receives, with their source. */
function collect(c: dgram.Socket): { msg: Buffer; rinfo: dgram.RemoteInfo }[] {
  const got: { msg: Buffer; rinfo: dgram.RemoteInfo }[] = [];
  c.on("message", (msg, rinfo) => got.push({ msg, rinfo }));
  return got;
}

async function until(what: string, check: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** One received datagram, copied out of its slot. */
interface Received {
  slot: number;
  length: number;
  bytes: Buffer;
  key: number[];
  port: number;
  stamp: number;
}

/** Receives until `want` datagrams came (at most 40 tries of 50 ms); answers nothing. */
function receive(s: NativeUdpSocket, want: number): { got: Received[]; batches: number[] } {
  const got: Received[] = [];
  const batches: number[] = [];
  for (let tries = 0; tries < 40 && got.length < want; tries++) {
    const n = s.recv(50);
    if (n > 0) batches.push(n);
    for (let i = 0; i < n; i++) got.push(read(s, i));
  }
  return { got, batches };
}

function read(s: NativeUdpSocket, i: number): Received {
  const length = s.lengths[i]!;
  return {
    slot: i,
    length,
    bytes: Buffer.from(s.slots[i]!.subarray(0, Math.max(0, length))),
    key: Array.from(s.keys.subarray(i * KEY_WORDS, (i + 1) * KEY_WORDS)),
    port: s.ports[i]!,
    stamp: s.stamps[i]!,
  };
}

function keyOf(address: string): number[] {
  const out = new Uint32Array(KEY_WORDS);
  assert.ok(parseAddressKey(address, out), address);
  return Array.from(out);
}

/** Writes "re:" + the request over slot i and marks it for sending. */
function answer(s: NativeUdpSocket, i: number): void {
  const length = s.lengths[i]!;
  const slot = s.slots[i]!;
  slot.copyWithin(3, 0, length);
  slot.set([0x72, 0x65, 0x3a]); // "re:"
  s.replyLengths[i] = length + 3;
}

/** Receives and answers until `want` datagrams came; returns them. */
function echo(s: NativeUdpSocket, want: number): Received[] {
  const got: Received[] = [];
  for (let tries = 0; tries < 40 && got.length < want; tries++) {
    const n = s.recv(50);
    for (let i = 0; i < n; i++) {
      got.push(read(s, i));
      answer(s, i);
    }
    if (n > 0) assert.equal(s.send(n), n, "every reply accepted by the kernel");
  }
  return got;
}

const errorWith = (fields: Record<string, unknown>) => (e: unknown) => {
  for (const [k, v] of Object.entries(fields))
    assert.equal((e as Record<string, unknown>)[k], v, `${k} of ${e}`);
  return true;
};

describe("native UDP: building and loading", () => {
  it("is built, up to date, and rebuilding it is skipped", () => {
    const r = buildNative();
    assert.equal(r.built, false, "a second build of the same source is skipped");
    assert.equal(r.path, NATIVE_BINARY);
    assert.equal(udp.slotBytes, 2048);
    assert.equal(udp.defaultBatch, 64);
  });

  it("reports why it is unavailable instead of throwing", () => {
    const r = tryLoadNativeUdp("/nonexistent/udpio.node");
    assert.equal(r.ok, false);
    if (!r.ok) assert.match(r.reason, /does not exist/);
  });
});

for (const [family, host] of [
  [4, "127.0.0.1"],
  [6, "::1"],
] as const) {
  describe(`native UDP echo over ${host}`, () => {
    it("delivers contents, source key, port and kernel time, and replies to each client", async () => {
      const s = open(host, family);
      assert.equal(s.family, family);
      assert.ok(s.port > 0);
      assert.equal(s.kernelTimestamps, true);
      const cs = await Promise.all([client(host), client(host), client(host)]);
      const replies = cs.map(collect);
      const before = Date.now();
      for (const [k, c] of cs.entries())
        await sendFrom(c, Buffer.from(`hello ${k} `.repeat(k + 1)), s.port, host);
      const got = echo(s, cs.length);
      const afterRecv = Date.now();
      assert.equal(got.length, cs.length);
      for (const [k, c] of cs.entries()) {
        const { address, port } = c.address();
        const r = got.find((g) => g.port === port);
        assert.ok(r, `datagram from port ${port}`);
        assert.equal(r.bytes.toString(), `hello ${k} `.repeat(k + 1));
        assert.equal(r.length, r.bytes.length);
        assert.deepEqual(r.key, keyOf(address), "the key parseAddressKey gives the client's address");
        assert.ok(
          r.stamp >= before - 5 && r.stamp <= afterRecv + 5,
          `stamp ${r.stamp} in [${before}, ${afterRecv}]`,
        );
        assert.notEqual(Math.trunc(r.stamp), r.stamp, "sub-millisecond part kept");
      }
      await until("the replies", () => replies.every((r) => r.length === 1));
      for (const [k, r] of replies.entries()) {
        assert.equal(r[0]!.msg.toString(), `re:${`hello ${k} `.repeat(k + 1)}`);
        assert.equal(r[0]!.rinfo.port, s.port);
        assert.equal(r[0]!.rinfo.address, host);
      }
      const counters = s.counters();
      assert.equal(counters.received, 3);
      assert.equal(counters.sent, 3);
      assert.equal(counters.sendErrors, 0);
      assert.equal(counters.noTimestamp, 0);
    });

    it("takes several clients' datagrams in one batch, and no more than the batch size", async () => {
      const s = open(host, family, { batch: 4 });
      assert.equal(s.batch, 4);
      const cs = await Promise.all(Array.from({ length: 7 }, () => client(host)));
      for (const c of cs) await sendFrom(c, Buffer.from("x"), s.port, host);
      await new Promise((r) => setTimeout(r, 20));
      const { got, batches } = receive(s, 7);
      assert.deepEqual(batches, [4, 3], "one full batch of 4, then the other 3");
      assert.deepEqual(
        got.map((g) => g.port).sort(),
        cs.map((c) => c.address().port).sort(),
        "each client exactly once",
      );
    });
  });
}

describe("native UDP: the clock", () => {
  it("realtime writes the system clock, in Unix ms with the fraction, into the cell", () => {
    const cell = new Float64Array(1);
    const fractions = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const before = Date.now();
      udp.realtime(cell);
      const after = Date.now();
      assert.ok(cell[0]! >= before - 1 && cell[0]! <= after + 1, `${cell[0]} within [${before}, ${after}]`);
      fractions.add(cell[0]! % 1);
    }
    assert.ok(fractions.size > 1, "sub-millisecond digits");
    assert.throws(() => udp.realtime(new Float32Array(1) as unknown as Float64Array), /Float64Array/);
    assert.throws(() => udp.realtime(new Float64Array(0)), /Float64Array/);
  });
});

describe("native UDP: replies of their own (mode 6 fragments)", () => {
  it("reply sends several datagrams of any size to a slot's source, from the server's port", async () => {
    const s = open("127.0.0.1", 4);
    const c = await client("127.0.0.1");
    const got = collect(c);
    await sendFrom(c, Buffer.from("ask"), s.port, "127.0.0.1");
    const { got: req } = receive(s, 1);
    assert.equal(req.length, 1);
    const big = new Uint8Array(500).fill(7);
    assert.equal(s.reply(0, Buffer.from("part one")), true);
    assert.equal(s.reply(0, big, 300), true);
    s.send(1); // nothing in place (reply length 0): the batch is closed
    await until("two replies", () => got.length === 2);
    assert.equal(got[0]!.msg.toString(), "part one");
    assert.equal(got[1]!.msg.length, 300);
    assert.equal(got[1]!.rinfo.port, s.port);
    // Only slots of the current batch, before its send().
    assert.throws(() => s.reply(0, big), /slot must be one the last recv filled/);
    assert.throws(() => s.reply(0, big, 5000), RangeError);
  });
});

describe("native UDP: limits and misuse", () => {
  it("returns 0 after the timeout, and at once with timeout 0", () => {
    const s = open("127.0.0.1", 4);
    let t = performance.now();
    assert.equal(s.recv(60), 0);
    const waited = performance.now() - t;
    assert.ok(waited >= 55 && waited < 1000, `waited ${waited} ms for a 60 ms timeout`);
    t = performance.now();
    assert.equal(s.recv(0), 0);
    assert.ok(performance.now() - t < 20);
    assert.equal(s.counters().recvCalls, 2);
  });

  it("reports a datagram longer than a slot as length -1 and counts it", async () => {
    const s = open("127.0.0.1", 4);
    const c = await client("127.0.0.1");
    await sendFrom(c, Buffer.alloc(3000, 1), s.port, "127.0.0.1");
    await sendFrom(c, Buffer.alloc(2048, 2), s.port, "127.0.0.1");
    const { got } = receive(s, 2);
    assert.deepEqual(
      got.map((g) => g.length),
      [-1, 2048],
    );
    assert.equal(
      got[1]!.bytes.every((b) => b === 2),
      true,
    );
    assert.equal(s.counters().truncated, 1);
  });

  it("clears reply lengths on receive, skips zero, counts a reply longer than a slot", async () => {
    const s = open("127.0.0.1", 4);
    const c = await client("127.0.0.1");
    const replies = collect(c);
    s.replyLengths.fill(99); // left over from an imaginary earlier batch
    for (const text of ["a", "b", "c"]) await sendFrom(c, Buffer.from(text), s.port, "127.0.0.1");
    const { got } = receive(s, 3);
    assert.equal(got.length, 3);
    assert.deepEqual(Array.from(s.replyLengths.subarray(0, 3)), [0, 0, 0]);
    s.replyLengths[0] = 1; // echo "a"
    s.replyLengths[2] = 4096; // more than a slot: refused
    assert.equal(s.send(3), 1);
    await until("the one reply", () => replies.length === 1);
    assert.equal(replies[0]!.msg.toString(), got[0]!.bytes.toString());
    assert.equal(s.counters().sendErrors, 1);
    assert.equal(s.counters().lastSendErrno, 90); // EMSGSIZE
  });

  it("refuses to send more slots than received, or a batch twice", async () => {
    const s = open("127.0.0.1", 4);
    assert.throws(() => s.send(1), errorWith({ code: "ERR_OUT_OF_RANGE" }));
    const c = await client("127.0.0.1");
    await sendFrom(c, Buffer.from("q"), s.port, "127.0.0.1");
    assert.equal(receive(s, 1).got.length, 1);
    assert.throws(() => s.send(2), errorWith({ code: "ERR_OUT_OF_RANGE" }));
    assert.equal(s.send(1), 0); // reply length 0: nothing to send
    assert.throws(() => s.send(1), errorWith({ code: "ERR_OUT_OF_RANGE" }), "a batch is sent once");
    assert.throws(() => s.recv(-1), errorWith({ code: "ERR_OUT_OF_RANGE" }));
    assert.throws(() => s.recv(60_001), errorWith({ code: "ERR_OUT_OF_RANGE" }));
  });

  it("rejects bad arguments to open", () => {
    assert.throws(() => udp.open("localhost", 0, 4), errorWith({ code: "ERR_INVALID_IP_ADDRESS" }));
    assert.throws(() => udp.open("::1", 0, 4), errorWith({ code: "ERR_INVALID_IP_ADDRESS" }));
    assert.throws(() => udp.open("127.0.0.1", 0, 6), errorWith({ code: "ERR_INVALID_IP_ADDRESS" }));
    assert.throws(() => udp.open("127.0.0.1", 70000, 4), errorWith({ code: "ERR_SOCKET_BAD_PORT" }));
    assert.throws(() => udp.open("127.0.0.1", 0, 5 as 4), errorWith({ code: "ERR_INVALID_ARG_VALUE" }));
    assert.throws(() => udp.open("127.0.0.1", 0, 4, { batch: 0 }), errorWith({ code: "ERR_OUT_OF_RANGE" }));
    assert.throws(
      () => udp.open("127.0.0.1", 0, 4, { reusePort: "yes" as unknown as boolean }),
      errorWith({ code: "ERR_INVALID_ARG_TYPE" }),
    );
  });

  it("closes: idempotent, later calls throw, the port is free again", () => {
    const s = udp.open("127.0.0.1", 0, 4);
    const port = s.port;
    s.close();
    s.close();
    assert.equal(s.closed, true);
    assert.throws(() => s.recv(0), errorWith({ code: "ERR_SOCKET_CLOSED" }));
    assert.throws(() => s.send(0), errorWith({ code: "ERR_SOCKET_CLOSED" }));
    open("127.0.0.1", 4, {}, port); // would be EADDRINUSE if the first were still open
  });

  it("refuses to use its shared memory once JavaScript detached it", () => {
    const s = open("127.0.0.1", 4);
    (s.data.buffer as ArrayBuffer).transfer();
    assert.throws(() => s.recv(0), errorWith({ code: "ERR_NATIVE_UDP_DETACHED" }));
  });
});

describe("native UDP: binding", () => {
  it("throws EADDRINUSE like Node when the port is taken and reusePort is off", async () => {
    const s = open("127.0.0.1", 4);
    assert.throws(
      () => udp.open("127.0.0.1", s.port, 4),
      errorWith({ code: "EADDRINUSE", syscall: "bind", errno: -98, address: "127.0.0.1", port: s.port }),
    );
    assert.throws(
      () => udp.open("127.0.0.1", s.port, 4, { reusePort: true }),
      errorWith({ code: "EADDRINUSE" }),
    );
    const c = await client("127.0.0.1");
    assert.throws(
      () => udp.open("127.0.0.1", c.address().port, 4),
      (e: Error) => /^bind EADDRINUSE 127\.0\.0\.1:\d+$/.test(e.message),
    );
  });

  it("throws EADDRNOTAVAIL for an address that is not this host's", () => {
    // 192.0.2.1 (TEST-NET-1, RFC 5737): only bound to, never sent to.
    assert.throws(() => udp.open("192.0.2.1", 0, 4), errorWith({ code: "EADDRNOTAVAIL", syscall: "bind" }));
  });

  it("shares one port between two reusePort sockets, each answering its own clients", async () => {
    const a = open("127.0.0.1", 4, { reusePort: true });
    const b = open("127.0.0.1", 4, { reusePort: true }, a.port);
    assert.equal(b.port, a.port);
    const cs = await Promise.all(Array.from({ length: 32 }, () => client("127.0.0.1")));
    const replies = cs.map(collect);
    for (const c of cs) await sendFrom(c, Buffer.from("t"), a.port, "127.0.0.1");
    const got: Received[] = [];
    const perSocket = [0, 0];
    for (let tries = 0; tries < 40 && got.length < cs.length; tries++) {
      for (const [k, s] of [a, b].entries()) {
        const n = s.recv(10);
        perSocket[k]! += n;
        for (let i = 0; i < n; i++) {
          got.push(read(s, i));
          answer(s, i);
        }
        if (n > 0) s.send(n);
      }
    }
    assert.equal(got.length, 32);
    assert.ok(perSocket[0]! > 0 && perSocket[1]! > 0, `the kernel spread 32 clients: ${perSocket}`);
    await until("a reply for every client", () => replies.every((r) => r.length === 1));
    assert.ok(replies.every((r) => r[0]!.rinfo.port === a.port && r[0]!.msg.toString() === "re:t"));
  });

  it("answers from the address the request was sent to when bound to 0.0.0.0", async () => {
    const s = open("0.0.0.0", 4);
    assert.equal(s.replyFromDestination, true);
    const c = await client("127.0.0.1");
    const replies = collect(c);
    await sendFrom(c, Buffer.from("to .2"), s.port, "127.0.0.2");
    await sendFrom(c, Buffer.from("to .3"), s.port, "127.0.0.3");
    assert.equal(echo(s, 2).length, 2);
    await until("both replies", () => replies.length === 2);
    const from = Object.fromEntries(replies.map((r) => [r.msg.toString(), r.rinfo.address]));
    assert.deepEqual(from, { "re:to .2": "127.0.0.2", "re:to .3": "127.0.0.3" });
  });

  it("serves ::1 on a socket bound to ::, IPv6 only", async () => {
    const s = open("::", 6);
    assert.equal(s.replyFromDestination, true);
    const c = await client("::1");
    const replies = collect(c);
    await sendFrom(c, Buffer.from("six"), s.port, "::1");
    const got = echo(s, 1);
    assert.deepEqual(got[0]!.key, keyOf("::1"));
    await until("the reply", () => replies.length === 1);
    assert.equal(replies[0]!.rinfo.address, "::1");
    // IPV6_V6ONLY: an IPv4 client on the same port reaches nothing here.
    const c4 = await client("127.0.0.1");
    await sendFrom(c4, Buffer.from("four"), s.port, "127.0.0.1").catch(() => undefined);
    assert.equal(s.recv(30), 0);
  });
});

describe("native UDP: what third parties can provoke", () => {
  it("sends to a closed port without throwing, and keeps serving", async () => {
    for (const icmpErrors of [false, true]) {
      const s = open("127.0.0.1", 4, { icmpErrors });
      const gone = await client("127.0.0.1");
      await sendFrom(gone, Buffer.from("bye"), s.port, "127.0.0.1");
      assert.equal(receive(s, 1).got.length, 1);
      await new Promise<void>((res) => gone.close(() => res()));
      clients.splice(clients.indexOf(gone), 1);
      s.replyLengths[0] = 3;
      assert.equal(s.send(1), 1, "the kernel takes the reply; the port unreachable comes back later");
      // The ICMP error arrives; with icmpErrors it is read and counted, without it Linux reports nothing
      // to an unconnected socket. Either way the next recv neither throws nor loses the next client.
      assert.equal(s.recv(30), 0);
      const counters = s.counters();
      if (icmpErrors) assert.ok(counters.icmpErrors >= 1, `icmpErrors ${counters.icmpErrors}`);
      else assert.equal(counters.icmpErrors + counters.recvErrors, 0);
      const c = await client("127.0.0.1");
      const replies = collect(c);
      await sendFrom(c, Buffer.from("next"), s.port, "127.0.0.1");
      assert.equal(echo(s, 1).length, 1);
      await until("the next client's reply", () => replies.length === 1);
      assert.equal(s.counters().sendErrors, 0);
    }
  });

  it("counts the datagrams the kernel dropped at a full receive buffer", async () => {
    const s = open("127.0.0.1", 4, { recvBufferBytes: 1 }); // the kernel's minimum: a few datagrams
    assert.equal(s.stats().kernelDrops, 0);
    const c = await client("127.0.0.1");
    for (let k = 0; k < 200; k++) await sendFrom(c, Buffer.alloc(200, k), s.port, "127.0.0.1");
    const drops = s.stats().kernelDrops;
    assert.ok(drops > 0, "200 datagrams overflow the smallest buffer");
    let queued = 0;
    for (let k = 0; k < 20; k++) {
      const n = s.recv(0);
      if (n === 0) break;
      queued += n;
    }
    assert.ok(queued > 0 && queued + drops === 200, `received ${queued} + dropped ${drops} = 200`);
    // The drop count also rides on the next datagram (SO_RXQ_OVFL), with no extra call.
    await sendFrom(c, Buffer.from("after"), s.port, "127.0.0.1");
    assert.equal(receive(s, 1).got.length, 1);
    assert.equal(s.counters().kernelDrops, drops);
  });

  it("after a full batch, knows the drops of now, not those of the datagrams' time", async () => {
    const s = open("127.0.0.1", 4, { recvBufferBytes: 8192, batch: 4 }); // room for a few batches, not 200
    const c = await client("127.0.0.1");
    for (let k = 0; k < 200; k++) await sendFrom(c, Buffer.alloc(200, k), s.port, "127.0.0.1");
    assert.equal(s.counters().kernelDrops, 0, "nothing read yet");
    // The first four datagrams were queued before anything was dropped: the count they carry is 0.
    assert.equal(s.recv(0), 4, "a full batch");
    const after = s.counters();
    const drops = s.stats().kernelDrops;
    assert.ok(drops > 0, "200 datagrams overflow the smallest buffer");
    assert.equal(after.kernelDrops, drops, "the full batch read the current count");
    // The datagrams behind carry older counts; the counter never goes back.
    while (s.recv(0) > 0) assert.equal(s.counters().kernelDrops, drops);
  });
});

describe("native UDP: one thread, several sockets", () => {
  it("waits on all of them and says which are readable", async () => {
    const s4 = open("127.0.0.1", 4);
    const s6 = open("::1", 6, { icmpErrors: true });
    const group = udp.group([s4, s6]);
    const t = performance.now();
    assert.equal(group.wait(40), 0, "nothing queued: timeout");
    assert.ok(performance.now() - t >= 35);
    const c6 = await client("::1");
    await sendFrom(c6, Buffer.from("six"), s6.port, "::1");
    assert.equal(group.wait(500), 0b10);
    assert.equal(s6.recv(0), 1);
    const c4 = await client("127.0.0.1");
    await sendFrom(c4, Buffer.from("four"), s4.port, "127.0.0.1");
    await sendFrom(c6, Buffer.from("six"), s6.port, "::1");
    assert.equal(group.wait(500), 0b11);
    assert.equal(s4.recv(0) + s6.recv(0), 2);
    // A queued ICMP error is read and counted by wait, and does not make the socket look readable.
    s6.replyLengths[0] = 3;
    await new Promise<void>((res) => c6.close(() => res()));
    clients.splice(clients.indexOf(c6), 1);
    assert.equal(s6.send(1), 1);
    assert.equal(group.wait(40), 0);
    assert.ok(s6.counters().icmpErrors >= 1, "the port unreachable was read");
    assert.throws(() => udp.group([]), RangeError);
    s4.close();
    assert.throws(() => group.wait(0), errorWith({ code: "ERR_SOCKET_CLOSED" }));
  });
});

describe("native UDP in a worker thread", () => {
  it("loads and serves in a worker while the main thread has it loaded too", async () => {
    const code = `
      const { parentPort, workerData } = require("node:worker_threads");
      import(workerData.module).then(({ loadNativeUdp }) => {
        const s = loadNativeUdp(workerData.path).open("127.0.0.1", 0, 4);
        parentPort.postMessage({ port: s.port });
        let n = 0;
        for (let k = 0; k < 100 && n === 0; k++) n = s.recv(20);
        for (let i = 0; i < n; i++) s.replyLengths[i] = s.lengths[i];
        const sent = n > 0 ? s.send(n) : 0;
        s.close();
        parentPort.postMessage({ n, sent });
      });`;
    const worker = new Worker(code, { eval: true, workerData: { module: MODULE_URL, path: NATIVE_BINARY } });
    const messages: { port?: number; n?: number; sent?: number }[] = [];
    worker.on("message", (m) => messages.push(m));
    const exited = new Promise<number>((res) => worker.once("exit", res));
    await until("the worker's port", () => messages.length >= 1, 5000);
    const c = await client("127.0.0.1");
    const replies = collect(c);
    await sendFrom(c, Buffer.from("from main"), messages[0]!.port!, "127.0.0.1");
    await until("the worker's echo", () => replies.length === 1, 5000);
    assert.equal(replies[0]!.msg.toString(), "from main");
    assert.equal(await exited, 0);
    assert.deepEqual(messages[1], { n: 1, sent: 1 });
  });
});
