// Helpers for the monitoring tests (docs/monitoring.md): NTP traffic from chosen 127/8 addresses, HTTP
// requests from a chosen source address, and a small strict reader of the Prometheus text format.
import dgram from "node:dgram";
import { request } from "node:http";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A 48-byte NTPv4 client request whose transmit timestamp carries `tag`. */
export function ntpRequest(tag = 0): Buffer {
  const b = Buffer.alloc(48);
  b[0] = (4 << 3) | 3;
  b.writeUInt32BE(0xec000000, 40);
  b.writeUInt32BE(tag >>> 0, 44);
  return b;
}

/**
 * Sends `count` requests (or the given packet) from `address` (any 127/8 address is ours to bind on
 * loopback) to 127.0.0.1:port, `gapMs` apart, and returns the replies that came back within `waitMs` of
 * the last one.
 */
export async function sendFrom(
  address: string,
  port: number,
  count: number,
  options: { gapMs?: number; waitMs?: number; packet?: Buffer } = {},
): Promise<Buffer[]> {
  const sock = dgram.createSocket("udp4");
  const replies: Buffer[] = [];
  sock.on("message", (m) => replies.push(m));
  await new Promise<void>((r) => sock.bind(0, address, () => r()));
  try {
    for (let i = 0; i < count; i++) {
      await new Promise<void>((r, j) =>
        sock.send(options.packet ?? ntpRequest(i), port, "127.0.0.1", (e) => (e ? j(e) : r())),
      );
      if (options.gapMs) await sleep(options.gapMs);
    }
    await sleep(options.waitMs ?? 300);
  } finally {
    await new Promise<void>((r) => sock.close(() => r()));
  }
  return replies;
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json(): unknown;
}

/** An HTTP request with node:http, so that the source address can be chosen (fetch cannot). */
export function httpRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string; localAddress?: string } = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: options.method ?? "GET",
        headers: options.headers,
        ...(options.localAddress !== undefined && { localAddress: options.localAddress }),
        agent: false,
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) });
        });
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${url}: no answer in 10 s`)));
    req.on("error", reject);
    req.end(options.body);
  });
}

/** Polls `fn` every 100 ms until it returns a truthy value (returned), or throws after `ms`. */
export async function waitUntil<T>(what: string, fn: () => Promise<T> | T, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}

// --- Prometheus text exposition format 0.0.4, read strictly --------------------------------------------

export interface PromSample {
  labels: Record<string, string>;
  value: number;
}

export interface PromFamily {
  type: string;
  help: string;
  samples: PromSample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function parseValue(text: string, line: number): number {
  if (text === "NaN") return Number.NaN;
  if (text === "+Inf") return Number.POSITIVE_INFINITY;
  if (text === "-Inf") return Number.NEGATIVE_INFINITY;
  if (!/^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$/.test(text))
    throw new Error(`line ${line}: ${JSON.stringify(text)} is not a sample value`);
  return Number(text);
}

/** Label set `{a="x",b="y"}` starting at text[0] === "{"; returns the labels and the rest after "}". */
function parseLabels(text: string, line: number): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {};
  let i = 1;
  while (true) {
    if (text[i] === "}") return { labels, rest: text.slice(i + 1) };
    const eq = text.indexOf("=", i);
    if (eq < 0) throw new Error(`line ${line}: label without "="`);
    const name = text.slice(i, eq);
    if (!LABEL.test(name)) throw new Error(`line ${line}: bad label name ${JSON.stringify(name)}`);
    if (name in labels) throw new Error(`line ${line}: label ${name} repeated`);
    if (text[eq + 1] !== '"') throw new Error(`line ${line}: label value not quoted`);
    let j = eq + 2;
    let value = "";
    while (j < text.length && text[j] !== '"') {
      if (text[j] === "\\") {
        const n = text[j + 1];
        if (n === "n") value += "\n";
        else if (n === "\\" || n === '"') value += n;
        else throw new Error(`line ${line}: bad escape \\${n}`);
        j += 2;
      } else value += text[j++];
    }
    if (j >= text.length) throw new Error(`line ${line}: unterminated label value`);
    labels[name] = value;
    i = j + 1;
    if (text[i] === ",") i++;
    else if (text[i] !== "}") throw new Error(`line ${line}: expected "," or "}" after a label`);
  }
}

/**
 * Reads a /metrics page: every sample must belong to a family declared by one `# TYPE` (and one `# HELP`)
 * before it, names and labels must be well formed, values numbers, and no series may repeat. Throws, naming
 * the line, at the first thing Prometheus would refuse.
 */
export function parsePrometheus(text: string): Map<string, PromFamily> {
  const families = new Map<string, PromFamily>();
  const seen = new Set<string>();
  if (!text.endsWith("\n")) throw new Error("the page does not end with a newline");
  const lines = text.slice(0, -1).split("\n");
  lines.forEach((raw, idx) => {
    const n = idx + 1;
    if (raw === "") return;
    if (raw.startsWith("#")) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(raw);
      if (m === null) return; // a comment
      const [, kind, name, rest] = m as unknown as [string, string, string, string];
      if (!NAME.test(name)) throw new Error(`line ${n}: bad metric name ${name}`);
      const f = families.get(name) ?? { type: "", help: "", samples: [] };
      if (kind === "TYPE") {
        if (f.type !== "") throw new Error(`line ${n}: second TYPE for ${name}`);
        if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(rest))
          throw new Error(`line ${n}: unknown type ${rest}`);
        if (f.samples.length > 0) throw new Error(`line ${n}: TYPE for ${name} after its samples`);
        f.type = rest;
      } else {
        if (f.help !== "") throw new Error(`line ${n}: second HELP for ${name}`);
        f.help = rest;
      }
      families.set(name, f);
      return;
    }
    const nameEnd = raw.search(/[{ ]/);
    if (nameEnd <= 0) throw new Error(`line ${n}: not a sample: ${raw}`);
    const name = raw.slice(0, nameEnd);
    if (!NAME.test(name)) throw new Error(`line ${n}: bad metric name ${name}`);
    let rest = raw.slice(nameEnd);
    let labels: Record<string, string> = {};
    if (rest.startsWith("{")) ({ labels, rest } = parseLabels(rest, n));
    const parts = rest.trim().split(/ +/);
    if (parts.length < 1 || parts.length > 2)
      throw new Error(`line ${n}: expected a value (and a timestamp)`);
    const value = parseValue(parts[0]!, n);
    const f = families.get(name);
    if (!f || f.type === "") throw new Error(`line ${n}: sample of ${name} before its TYPE`);
    const series = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(series)) throw new Error(`line ${n}: series repeated: ${series}`);
    seen.add(series);
    f.samples.push({ labels, value });
  });
  return families;
}

/** The value of one series (labels must match exactly); throws if it is not on the page. */
export function metric(
  families: Map<string, PromFamily>,
  name: string,
  labels: Record<string, string> = {},
): number {
  const f = families.get(name);
  if (!f) throw new Error(`no metric ${name}`);
  const want = JSON.stringify(Object.entries(labels).sort());
  const s = f.samples.find((x) => JSON.stringify(Object.entries(x.labels).sort()) === want);
  if (!s) throw new Error(`no series ${name}${want}`);
  return s.value;
}
