// One exchange with one server, for `ntpshield query` and for programs that want a single reading: resolve
// the name (all addresses, one chosen at random: paper §7), send one request from a random port (RFC 9109)
// whose transmit timestamp has random low bits, and wait for the reply that echoes it, from the address
// asked (or, with followRedirects, from any address with that exact origin: §8). Judged by the same rules
// as the running client (match.ts matchReply, measure.ts evaluateReply): unsynchronised replies give no
// sample, a kiss-o'-death is reported by its code. One request and no retry: a caller that wants more
// should run the client, which knows how to wait.

import { kissCodeInfo, uint32ToKissCode } from "../protocol/index.ts";
import { formatServer, type ResolvedAddress, unmapAddress } from "./address.ts";
import { type Resolver, systemResolver } from "./client.ts";
import { ClientError } from "./errors.ts";
import { matchReply } from "./match.ts";
import { buildRequest, evaluateReply, type Sample } from "./measure.ts";
import type { ServerSpec } from "./options.ts";
import { cryptoRandom, type Random } from "./random.ts";
import { redirectOf } from "./redirect.ts";
import { udpExchange } from "./udp.ts";

export interface QueryOptions {
  /** Seconds to wait for the reply (default 2). */
  timeout?: number;
  followRedirects?: boolean;
  resolver?: Resolver;
  random?: Random;
  /** Wall clock, Unix ms (default performance.timeOrigin + performance.now()). */
  wallMs?: () => number;
}

export type QueryOutcome = "sample" | "kiss" | "unusable" | "no-reply" | "resolve-failed" | "error";

export interface QueryResult {
  /** The server as given, "host:port". */
  server: string;
  host: string;
  port: number;
  /** Every address the name resolved to, and the one asked. */
  addresses: string[];
  address: string | undefined;
  /** Who answered (the address asked unless redirected), and from which port. */
  answeredBy: string | undefined;
  answeredPort: number | undefined;
  redirected: boolean;
  /** The server the reply named in its redirection field (§8), "host:port"; only with followRedirects. */
  redirectTo: string | undefined;
  outcome: QueryOutcome;
  sample: Sample | undefined;
  /** The kiss code, for outcome "kiss", and what it asks of a client ("reduce", "stop", "info"). */
  kiss: string | undefined;
  kissAction: "reduce" | "stop" | "info" | undefined;
  /** Why, for "unusable" ("unsynchronised", "bad-stratum", "zero-transmit") and the failures. */
  reason: string | undefined;
  /** Datagrams that arrived but were not the reply (wrong origin, wrong address). */
  ignored: number;
  /** The source port our request left from. */
  localPort: number | undefined;
}

/** The result for host:port before anything is known: `outcome` unless the exchange says otherwise. */
export function newQueryResult(host: string, port: number, outcome: QueryOutcome): QueryResult {
  return {
    server: formatServer(host, port),
    host,
    port,
    addresses: [],
    address: undefined,
    answeredBy: undefined,
    answeredPort: undefined,
    redirected: false,
    redirectTo: undefined,
    outcome,
    sample: undefined,
    kiss: undefined,
    kissAction: undefined,
    reason: undefined,
    ignored: 0,
    localPort: undefined,
  };
}

/** One exchange with `server`. Never throws for network trouble: the outcome says what happened. */
export async function queryServer(server: ServerSpec, o: QueryOptions = {}): Promise<QueryResult> {
  const timeout = o.timeout ?? 2;
  if (typeof timeout !== "number" || !(timeout > 0) || timeout > 60) {
    throw new ClientError("ERR_CLIENT_INVALID_OPTION", `timeout must be 0-60 s, got ${timeout}`);
  }
  const random = o.random ?? cryptoRandom();
  const wallMs = o.wallMs ?? (() => performance.timeOrigin + performance.now());
  const result = newQueryResult(server.host, server.port, "no-reply");
  let addresses: ResolvedAddress[];
  try {
    addresses = await (o.resolver ?? systemResolver)(server.host);
  } catch (err) {
    return { ...result, outcome: "resolve-failed", reason: (err as Error).message };
  }
  if (addresses.length === 0)
    return { ...result, outcome: "resolve-failed", reason: "the name has no address" };
  result.addresses = addresses.map((a) => unmapAddress(a.address));
  const chosen = addresses[Math.min(addresses.length - 1, Math.floor(random() * addresses.length))]!;
  const address = unmapAddress(chosen.address);
  result.address = address;
  const request = buildRequest(wallMs(), random, 6, o.followRedirects ?? false);
  let t1 = wallMs();
  const x = udpExchange({
    family: address.includes(":") ? 6 : 4,
    address,
    port: server.port,
    packet: request.packet,
    timeoutMs: timeout * 1000,
    wallMs,
    onSent: (t, port) => {
      t1 = t;
      result.localPort = port;
    },
    onDatagram: (data, from, t4) => {
      const match = matchReply(
        { address, port: server.port, transmit: request.transmit },
        data,
        from,
        o.followRedirects ?? false,
      );
      if (!match.ok) {
        result.ignored++;
        return false;
      }
      const verdict = evaluateReply(data, request.transmit, t1, t4);
      if (!verdict.ok && (verdict.reason === "short" || verdict.reason === "not-server-mode")) {
        result.ignored++;
        return false;
      }
      result.answeredBy = unmapAddress(from.address);
      result.answeredPort = from.port;
      result.redirected = match.redirected;
      if (verdict.ok) {
        const next = match.redirected ? undefined : redirectOf(data);
        if (next !== undefined) result.redirectTo = formatServer(next.address, next.port);
        result.outcome = "sample";
        result.sample = verdict.sample;
      } else if (verdict.reason === "kiss") {
        const code = uint32ToKissCode(verdict.kissCode ?? 0);
        result.outcome = "kiss";
        result.kiss = code;
        result.kissAction = kissCodeInfo(code)?.action ?? "info";
      } else {
        result.outcome = "unusable";
        result.reason = verdict.reason;
      }
      return true;
    },
  });
  const outcome = await x.done;
  if (outcome.kind === "timeout") {
    result.outcome = "no-reply";
    result.reason = `no reply within ${timeout} s`;
  } else if (outcome.kind === "error") {
    result.outcome = "error";
    result.reason = outcome.error.message;
  }
  return result;
}
