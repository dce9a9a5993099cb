// One manycast round's I/O (paper §9): a client request sent to a group, and the answers gathered for a
// while from whatever addresses they come. "A key requirement for NTP Manycast is that the client associate
// a reply from a server with a request previously sent to a different [address]. This is done by comparing
// one of the timestamps in the request with the corresponding timestamp in the reply": each answer counts
// only if its origin timestamp equals, all 64 bits, our request's transmit field (random low bits:
// measure.ts buildRequest), whoever sent it (match.ts matchReply, followRedirects).

import dgram from "node:dgram";
import { uint32ToKissCode } from "../protocol/index.ts";
import { unmapAddress } from "./address.ts";
import { ClientError } from "./errors.ts";
import type { ManycastAnswer } from "./manycast.ts";
import { matchReply } from "./match.ts";
import { buildRequest, evaluateReply } from "./measure.ts";
import { cryptoRandom, type Random } from "./random.ts";

export interface ManycastQueryOptions {
  group: string;
  /** The group's port, where the servers listen (123). */
  port?: number;
  /** The local address to send from (it picks the interface). */
  interface?: string;
  /** IPv4 TTL or IPv6 hop limit of the request (default 1: this subnet). */
  ttl?: number;
  /** Seconds to gather answers (default 1). */
  window?: number;
  random?: Random;
  wallMs?: () => number;
}

export interface ManycastQueryResult {
  answers: ManycastAnswer[];
  /** Answers that were not usable: unsynchronised, a kiss-o'-death (by code). */
  unusable: { server: string; reason: string }[];
  /** Datagrams that were not an answer to this request (wrong origin timestamp, too short). */
  ignored: number;
}

/** One request to the group; resolves after `window` seconds with every answer matched to it. */
export async function manycastQuery(o: ManycastQueryOptions): Promise<ManycastQueryResult> {
  const port = o.port ?? 123;
  const v6 = o.group.includes(":");
  const wallMs = o.wallMs ?? (() => performance.timeOrigin + performance.now());
  const random = o.random ?? cryptoRandom();
  const windowMs = (o.window ?? 1) * 1000;
  const socket = dgram.createSocket(v6 ? "udp6" : "udp4");
  const result: ManycastQueryResult = { answers: [], unusable: [], ignored: 0 };
  const request = buildRequest(wallMs(), random, 6);
  let t1 = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind({ address: o.interface?.replace(/%.*$/, ""), port: 0 }, () => {
        socket.off("error", reject);
        resolve();
      });
    });
    socket.setMulticastTTL(o.ttl ?? 1);
    if (o.interface !== undefined) socket.setMulticastInterface(o.interface);
    socket.setMulticastLoopback(true);
  } catch (err) {
    socket.close();
    throw new ClientError(
      "ERR_CLIENT_INVALID_OPTION",
      `cannot send to ${o.group}: ${(err as Error).message}`,
    );
  }
  const seen = new Set<string>();
  socket.on("error", () => {});
  socket.on("message", (data, rinfo) => {
    const t4 = wallMs();
    const from = { address: unmapAddress(rinfo.address), port: rinfo.port };
    if (!matchReply({ address: o.group, port, transmit: request.transmit }, data, from, true).ok) {
      result.ignored++;
      return;
    }
    const verdict = evaluateReply(data, request.transmit, t1, t4);
    if (seen.has(from.address)) return; // one answer per server and round
    seen.add(from.address);
    if (verdict.ok) result.answers.push({ server: from.address, port, sample: verdict.sample });
    else
      result.unusable.push({
        server: from.address,
        reason:
          verdict.reason === "kiss" ? `kiss ${uint32ToKissCode(verdict.kissCode ?? 0)}` : verdict.reason,
      });
  });
  await new Promise<void>((resolve) => {
    t1 = wallMs();
    socket.send(request.packet, port, o.group, (err) => {
      if (err) result.unusable.push({ server: o.group, reason: err.message });
    });
    setTimeout(resolve, windowMs);
  });
  socket.close();
  return result;
}
