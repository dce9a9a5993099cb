// `ntpshield sync --manycast GROUP[:PORT]`: manycast discovery (paper §9): every --interval a request to the
// group, the answers matched to it by origin timestamp whoever sends them, and the best three kept (all
// others discarded: src/client/manycast.ts). A line per round. It never sets the clock. The group is
// checked against the IPv4 multicast BCP first (232/8 cannot carry an any-source request).

import { ClientError } from "../client/errors.ts";
import { type ManycastRound, ManycastSet } from "../client/manycast.ts";
import { manycastQuery } from "../client/manycast-query.ts";
import { tryParseHostPort } from "../config/address.ts";
import { groupFindings } from "../config/multicast.ts";
import { onStopSignal } from "./stop-signals.ts";

export interface ManycastSyncFlags {
  manycast: string;
  interface?: string | undefined;
  ttl?: string | undefined;
  interval?: string | undefined;
  timeout?: string | undefined;
  count?: string | undefined;
  json?: boolean | undefined;
}

export function manycastLine(
  n: number,
  r: ManycastRound,
  unusable: { server: string; reason: string }[],
): string {
  const kept = r.kept
    .map((k) => `${k.server} (stratum ${k.sample.stratum}, distance ${k.distanceS.toFixed(6)} s)`)
    .join(", ");
  const parts = [`manycast round ${n}: kept ${kept || "none"}`];
  if (r.added.length > 0) parts.push(`new ${r.added.join(", ")}`);
  if (r.discarded.length > 0) parts.push(`discarded ${r.discarded.join(", ")}`);
  if (unusable.length > 0)
    parts.push(`unusable ${unusable.map((u) => `${u.server} (${u.reason})`).join(", ")}`);
  return parts.join("; ");
}

export async function manycastSync(f: ManycastSyncFlags, fail: (message: string) => number): Promise<number> {
  const hp = tryParseHostPort(f.manycast, { defaultPort: 123, names: false });
  if (!hp.ok) return fail(`--manycast "${f.manycast}": ${hp.reason}`);
  const group = hp.value.host;
  const ttlText = f.ttl ?? "1";
  const ttl = Number(ttlText);
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > 255) return fail(`--ttl must be 1-255, got "${ttlText}"`);
  for (const x of groupFindings({
    key: "--manycast",
    ttlKey: "--ttl",
    address: group.replace(/%.*$/, ""),
    ttl,
    use: "manycast",
  })) {
    if (x.severity === "error") return fail(`${x.key}: ${x.reason}`);
    process.stderr.write(`ntpshield sync: ${x.key}: warning: ${x.reason}\n`);
  }
  const seconds = (name: string, text: string | undefined, fallback: number, min: number): number => {
    if (text === undefined) return fallback;
    const n = Number(text);
    if (text.trim() === "" || !Number.isFinite(n) || n < min)
      throw new ClientError(
        "ERR_CLIENT_INVALID_OPTION",
        `--${name} must be a number of seconds >= ${min}, got "${text}"`,
      );
    return n;
  };
  let interval: number;
  let window: number;
  let count: number | undefined;
  try {
    // The paper's clients poll every 64 s at the least; so does this, unless told otherwise (tests).
    interval = seconds("interval", f.interval, 64, 1);
    window = seconds("timeout", f.timeout, 1, 0.1);
    count = f.count === undefined ? undefined : seconds("count", f.count, 1, 1);
  } catch (err) {
    if (err instanceof ClientError) return fail(err.message);
    throw err;
  }
  if (count !== undefined && !Number.isInteger(count))
    return fail(`--count must be a whole number >= 1, got "${f.count}"`);
  if (window >= interval) return fail("--timeout must be shorter than --interval");
  let stopped = false;
  let wake: () => void = () => {};
  const offSignal = onStopSignal(() => {
    stopped = true;
    wake();
  });
  const set = new ManycastSet();
  try {
    for (let n = 1; !stopped && (count === undefined || n <= count); n++) {
      const started = Date.now();
      const q = await manycastQuery({ group, port: hp.value.port, interface: f.interface, ttl, window });
      const r = set.round(q.answers, performance.timeOrigin + performance.now());
      const stamp = new Date().toISOString();
      if (f.json === true)
        process.stdout.write(
          `${JSON.stringify({
            time: stamp,
            kind: "manycast-round",
            round: n,
            answered: q.answers.map((a) => a.server),
            kept: r.kept.map((k) => ({
              server: k.server,
              stratum: k.sample.stratum,
              distanceS: k.distanceS,
              offsetMs: k.sample.offsetMs,
            })),
            added: r.added,
            discarded: r.discarded,
            unusable: q.unusable,
          })}\n`,
        );
      else process.stdout.write(`${stamp}  ${manycastLine(n, r, q.unusable)}\n`);
      if (count !== undefined && n >= count) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(0, interval * 1000 - (Date.now() - started)));
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  } catch (err) {
    if (err instanceof ClientError) return fail(err.message);
    throw err;
  } finally {
    offSignal();
  }
  return 0;
}
