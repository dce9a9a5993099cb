// The NTS benchmark's load generator (bench/nts.ts runs it pinned to core 1): an open-loop sender of NTP
// requests at a fixed rate for a fixed time, plain (48 octets) or NTS-authenticated (RFC 8915 §5.7), and a
// counter of the replies that are answers to them. Prints one JSON line.
//
// NTS requests cost the server a key exchange's worth of state it does not keep: they are made before the
// run from one NTS-KE session (its cookies, its C2S key), N distinct requests each with its own Unique
// Identifier (whose first 4 octets are its number), sent in turn. A server keeps no state per cookie, so a
// request sent again is authenticated again, in full: every reply counted cost the server the whole NTS
// work (cookie opened, authenticator checked, new cookies sealed, reply sealed). A reply counts when it
// echoes one of our UIDs; the first 200 are also checked in full (authenticator, decrypted cookies) and
// their failures reported.
//
//   npx node bench/nts-load.ts --target ADDR:PORT --rate PPS --duration S [--warmup S]
//                              [--nts KEHOST:KEPORT --ca FILE] [--placeholders N]

import { randomBytes } from "node:crypto";
import dgram from "node:dgram";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ntsKeyExchange } from "../src/client/nts.ts";
import { buildNtsRequest, checkNtsReply } from "../src/nts/extensions.ts";

const { values } = parseArgs({
  options: {
    target: { type: "string" },
    rate: { type: "string" },
    duration: { type: "string", default: "3" },
    warmup: { type: "string", default: "1" },
    nts: { type: "string" },
    ca: { type: "string" },
    placeholders: { type: "string", default: "0" },
    requests: { type: "string", default: "4096" },
    sockets: { type: "string", default: "8" },
  },
});
const [host, portText] = (values.target ?? "").split(":");
const port = Number(portText);
const rate = Number(values.rate);
const duration = Number(values.duration);
const warmup = Number(values.warmup);
if (!host || !(port > 0) || !(rate > 0) || !(duration > 0)) {
  process.stderr.write(
    "usage: nts-load.ts --target ADDR:PORT --rate PPS --duration S [--nts KEHOST:KEPORT --ca FILE]\n",
  );
  process.exit(2);
}
const count = Number(values.requests);

interface Template {
  packet: Buffer;
  uid: Uint8Array;
}
const templates: Template[] = [];
let s2c: Uint8Array | undefined;
if (values.nts) {
  const [keHost, kePort] = values.nts.split(":");
  const session = await ntsKeyExchange({
    host: keHost!,
    port: Number(kePort),
    ca: values.ca ? readFileSync(values.ca) : undefined,
  });
  s2c = session.s2c;
  const cookies = [...session.cookies];
  for (let i = 0; i < count; i++) {
    const header = new Uint8Array(48);
    header[0] = (4 << 3) | 3;
    header.set(randomBytes(8), 40);
    const uid = new Uint8Array(randomBytes(32));
    new DataView(uid.buffer).setUint32(0, i);
    const packet = buildNtsRequest(
      header,
      uid,
      cookies[i % cookies.length]!,
      Number(values.placeholders),
      session.c2s,
      new Uint8Array(randomBytes(16)),
    );
    templates.push({ packet: Buffer.from(packet), uid });
  }
} else {
  for (let i = 0; i < count; i++) {
    const packet = Buffer.alloc(48);
    packet[0] = (4 << 3) | 3;
    randomBytes(4).copy(packet, 40);
    packet.writeUInt32BE(i, 44);
    templates.push({ packet, uid: new Uint8Array(0) });
  }
}

let counting = false;
let sent = 0;
let replies = 0;
let checked = 0;
let checkFailures = 0;
const seen = new Uint32Array(count);
const sockets: dgram.Socket[] = [];
for (let i = 0; i < Number(values.sockets); i++) {
  const s = dgram.createSocket({ type: "udp4", recvBufferSize: 8 << 20, sendBufferSize: 8 << 20 });
  s.on("message", (m) => {
    if (!counting) return;
    let index: number;
    if (s2c !== undefined) {
      // Header, then the UID field echoed: its first 4 octets are the request's number.
      if (m.length <= 48 + 8 || m.readUInt16BE(48) !== 0x0104) return;
      index = m.readUInt32BE(52);
    } else {
      if (m.length < 48 || (m[0]! & 7) !== 4) return;
      index = m.readUInt32BE(28); // the origin timestamp's low word: our transmit's
    }
    if (index >= count) return;
    seen[index]!++;
    replies++;
    if (s2c !== undefined && checked < 200) {
      checked++;
      if (!checkNtsReply(m, templates[index]!.uid, s2c).ok) checkFailures++;
    }
  });
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  sockets.push(s);
}

// Open loop: every millisecond, the packets due by then.
const start = performance.now();
const measureFrom = start + warmup * 1000;
const end = measureFrom + duration * 1000;
let due = 0;
let next = 0;
await new Promise<void>((resolve) => {
  const tick = () => {
    const now = performance.now();
    if (now >= end) return resolve();
    if (!counting && now >= measureFrom) {
      counting = true;
      sent = 0;
    }
    const target = Math.floor(((now - start) / 1000) * rate);
    while (due < target) {
      const t = templates[next % count]!;
      sockets[next % sockets.length]!.send(t.packet, port, host);
      next++;
      due++;
      if (counting) sent++;
    }
    setImmediate(tick);
  };
  tick();
});
await new Promise((r) => setTimeout(r, 200)); // the last replies
counting = false;
for (const s of sockets) s.close();
process.stdout.write(
  `${JSON.stringify({
    mode: s2c !== undefined ? "nts" : "plain",
    offered: rate,
    sent,
    replies,
    repliesPerSecond: replies / duration,
    ratio: sent > 0 ? replies / sent : 0,
    requestBytes: templates[0]!.packet.length,
    checked,
    checkFailures,
  })}\n`,
);
