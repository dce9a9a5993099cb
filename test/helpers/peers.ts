// Real NTP implementations as test peers: chronyd (as client and as server), Python's ntplib and NTPsec's
// ntpdig, plus a way to start ntpshield itself. scripts/install-peers.sh installs the peers; a missing peer
// makes the test fail with a message that says so, never skip (docs/testing.md).
//
// Every process started here is registered and killed by killAllPeers() (call it from an `after` hook) or,
// as a last resort, when the test process exits. Everything talks to 127.0.0.0/8 or ::1 only, except across
// the veth pair of openNetnsPair, whose 192.0.2.0/24 (TEST-NET-1) exists only in its private namespaces.

import { type ChildProcess, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { accessSync, constants, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";

export const REPO_ROOT = resolve(import.meta.dirname, "../..");
const INSTALL_HINT = "run scripts/install-peers.sh as root (see docs/testing.md)";

/** A peer could not be found, started or asked; `code` says which, `output` holds what it printed. */
export class PeerError extends Error {
  readonly code: "PEER_MISSING" | "PEER_FAILED" | "PEER_TIMEOUT" | "PEER_NO_ANSWER" | "PEER_BAD_OUTPUT";
  readonly output: string;
  constructor(code: PeerError["code"], message: string, output = "") {
    super(output ? `${message}\n--- output ---\n${output.trimEnd()}` : message);
    this.name = "PeerError";
    this.code = code;
    this.output = output;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Finding the tools

const EXTRA_DIRS = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Absolute path of `name` from PATH or the sbin directories (chronyd lives in /usr/sbin, off users' PATH). */
export function findTool(name: string): string {
  const dirs = [...(process.env["PATH"] ?? "").split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  throw new PeerError("PEER_MISSING", `${name} not found (looked in ${dirs.join(", ")}): ${INSTALL_HINT}`);
}

/**
 * The system python3 (Debian's python3-ntplib is installed for it, not for a pyenv or venv python that may
 * come first on PATH).
 */
const SYSTEM_PYTHON = "/usr/bin/python3";

function python(): string {
  if (!isExecutable(SYSTEM_PYTHON))
    throw new PeerError("PEER_MISSING", `${SYSTEM_PYTHON} not found: ${INSTALL_HINT}`);
  return SYSTEM_PYTHON;
}

function ntpsecTool(name: "ntpdig" | "ntpq"): string {
  const path = join(REPO_ROOT, ".peers", "bin", name);
  if (!isExecutable(path)) throw new PeerError("PEER_MISSING", `${path} not found: ${INSTALL_HINT}`);
  return path;
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

// ---------------------------------------------------------------------------------------------------------
// Processes

const live = new Set<ChildProcess>();

function track(child: ChildProcess): ChildProcess {
  live.add(child);
  child.once("exit", () => live.delete(child));
  return child;
}

// The last resort: a test that threw before its cleanup, or a runner that exits, leaves no peer behind.
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((res) => child.once("exit", () => res()));
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
async function terminate(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited(child);
  clearTimeout(timer);
}

/** Kills every process these helpers started and that is still running. Call from `after`. */
export async function killAllPeers(): Promise<void> {
  await Promise.all([...live].map((c) => terminate(c, 1000)));
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr, for error messages. */
  output: string;
}

/** Runs argv to completion, killing it after `timeoutMs` (the result then has signal SIGKILL). */
export function run(argv: string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<RunResult> {
  const [cmd, ...args] = argv;
  if (!cmd) throw new Error("run: empty argv");
  return new Promise((res, rej) => {
    const child = track(spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: env ?? process.env }));
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      rej(new PeerError("PEER_MISSING", `cannot run ${cmd}: ${err.message}; ${INSTALL_HINT}`));
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      res({ code, signal, stdout, stderr, output: `${stdout}${stderr}` });
    });
  });
}

async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `ntpshield-${prefix}-`));
}

/** Polls `probe` every `intervalMs` until it returns a value other than undefined; throws after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const why = last instanceof Error ? `; last error: ${last.message}` : "";
      throw new PeerError("PEER_TIMEOUT", `timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

// ---------------------------------------------------------------------------------------------------------
// Ports and the port-123 sandbox

/** A UDP port that was free on `host` a moment ago (the kernel's choice of an ephemeral port). */
export async function freeUdpPort(host = "127.0.0.1"): Promise<number> {
  const socket = createSocket(host.includes(":") ? "udp6" : "udp4");
  await new Promise<void>((res, rej) => {
    socket.once("error", rej);
    socket.bind(0, host, () => res());
  });
  const { port } = socket.address();
  await new Promise<void>((res) => socket.close(() => res()));
  return port;
}

async function canBind(host: string, port: number): Promise<boolean> {
  const socket = createSocket("udp4");
  try {
    await new Promise<void>((res, rej) => {
      socket.once("error", rej);
      socket.bind(port, host, () => res());
    });
    return true;
  } catch {
    return false;
  } finally {
    await new Promise<void>((res) => socket.close(() => res())).catch(() => undefined);
  }
}

/**
 * Where a server can listen on port 123 and the clients that need it (ntpdig has no port option) can reach
 * it. "direct": this process may bind port 123 (root, or ip_unprivileged_port_start <= 123), so the server
 * gets a loopback address of its own, 127.0.0.x. "netns": a private network namespace (inside a user
 * namespace when not root) with only `lo` up; commands run inside it through `wrap`.
 */
export interface PortSandbox {
  readonly kind: "direct" | "netns";
  /** The IPv4 address to serve on, at port 123, and to query. */
  readonly host: string;
  /** argv, prefixed so that it runs inside the sandbox (unchanged for "direct"). */
  wrap(argv: string[]): string[];
  close(): Promise<void>;
}

function unprivilegedPortStart(): number {
  try {
    return Number(readFileSync("/proc/sys/net/ipv4/ip_unprivileged_port_start", "utf8").trim());
  } catch {
    return 1024;
  }
}

/**
 * Opens a sandbox for port 123: "direct" when allowed and a 127.0.x.y:123 is free, else "netns"; `kind`
 * forces one way (the tests of the helpers use it).
 */
export async function openPort123Sandbox(kind?: "direct" | "netns"): Promise<PortSandbox> {
  const mayBind = isRoot() || unprivilegedPortStart() <= 123;
  if (kind === "direct" && !mayBind) {
    throw new PeerError("PEER_FAILED", "binding port 123 needs root here (ip_unprivileged_port_start > 123)");
  }
  if (kind !== "netns" && mayBind) {
    // A loopback address of our own, so a server on 127.0.0.1:123 elsewhere on the machine does not matter.
    for (let i = 0; i < 10; i++) {
      const host = `127.0.${1 + Math.floor(Math.random() * 254)}.${2 + Math.floor(Math.random() * 252)}`;
      if (await canBind(host, 123)) {
        return { kind: "direct", host, wrap: (argv) => argv, close: async () => {} };
      }
    }
    if (kind === "direct") {
      throw new PeerError("PEER_FAILED", "no free 127.0.x.y:123 found (is something bound to 0.0.0.0:123?)");
    }
  }
  return openNetns();
}

/**
 * A private network namespace with `lo` up. `inUserNsOf`: the holder pid of another sandbox, whose user
 * namespace this one is made in (without root, so that the two can be joined by a veth pair).
 */
async function openNetns(inUserNsOf?: number): Promise<PortSandbox & { readonly pid: number }> {
  const unshare = findTool("unshare");
  const nsenter = findTool("nsenter");
  const ip = findTool("ip");
  const root = isRoot();
  // The holder process keeps the namespaces alive; everything else joins them with nsenter.
  const inner = ["--net", "--", "/bin/sh", "-c", `'${ip}' link set lo up && echo ready && exec sleep 3600`];
  const [holderCmd, holderArgs] = root
    ? [unshare, inner]
    : inUserNsOf === undefined
      ? [unshare, ["--user", "--map-root-user", ...inner]]
      : [
          nsenter,
          ["--target", String(inUserNsOf), "--user", "--preserve-credentials", "--", unshare, ...inner],
        ];
  const holder = track(spawn(holderCmd, holderArgs, { stdio: ["ignore", "pipe", "pipe"] }));
  let out = "";
  holder.stdout?.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  holder.stderr?.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  try {
    await waitFor("the network namespace", async () => (out.includes("ready") ? true : undefined), 5000, 20);
  } catch {
    await terminate(holder, 500);
    throw new PeerError(
      "PEER_FAILED",
      `cannot create a network namespace with ${holderCmd} ${holderArgs.slice(0, -3).join(" ")}`,
      out,
    );
  }
  const pid = String(holder.pid);
  // Without root, enter the user namespace too and keep our credentials: nsenter's default setgroups()
  // is refused in a user namespace, and our uid is already mapped to 0 there.
  const prefix = root
    ? [nsenter, "--target", pid, "--net", "--"]
    : [nsenter, "--target", pid, "--user", "--net", "--preserve-credentials", "--"];
  return {
    kind: "netns",
    host: "127.0.0.1",
    pid: holder.pid!,
    wrap: (argv) => [...prefix, ...argv],
    close: () => terminate(holder, 500),
  };
}

/** Two network namespaces joined by a veth pair: two hosts on one wire, each with its own port 123. */
export interface NetnsPair {
  /** The server's side, 192.0.2.1 (its `host`). */
  readonly server: PortSandbox;
  /** The client's side, 192.0.2.2 (its `host`). */
  readonly client: PortSandbox;
  close(): Promise<void>;
}

/**
 * Opens a NetnsPair. For a daemon that is a client and a server at once on port 123, as NTPsec's ntpd is
 * (it binds every address's port 123, and asks servers on port 123 only): it cannot share a namespace
 * with the server it asks.
 */
export async function openNetnsPair(): Promise<NetnsPair> {
  const ip = findTool("ip");
  const server = await openNetns();
  let client: (PortSandbox & { readonly pid: number }) | undefined;
  try {
    client = await openNetns(server.pid);
    const c = client;
    const steps = [
      server.wrap([
        ip,
        "link",
        "add",
        "ntps0",
        "type",
        "veth",
        "peer",
        "name",
        "ntpc0",
        "netns",
        String(c.pid),
      ]),
      server.wrap([ip, "addr", "add", "192.0.2.1/24", "dev", "ntps0"]),
      server.wrap([ip, "link", "set", "ntps0", "up"]),
      c.wrap([ip, "addr", "add", "192.0.2.2/24", "dev", "ntpc0"]),
      c.wrap([ip, "link", "set", "ntpc0", "up"]),
    ];
    for (const argv of steps) {
      const r = await run(argv, 5000);
      if (r.code !== 0) throw new PeerError("PEER_FAILED", `${argv.join(" ")} failed`, r.output);
    }
    // A veth's carrier comes up a moment after `link set up`; a daemon started before that does not see
    // the address (ntpd skips an interface that is not running and may not send to its server for minutes).
    for (const [side, dev] of [
      [server, "ntps0"],
      [c, "ntpc0"],
    ] as const) {
      await waitFor(
        `${dev} up`,
        async () =>
          (await run(side.wrap([ip, "-o", "link", "show", "dev", dev]), 5000)).stdout.includes("state UP")
            ? true
            : undefined,
        10_000,
        50,
      );
    }
  } catch (err) {
    await client?.close();
    await server.close();
    throw err;
  }
  const c = client;
  return {
    server: { ...server, host: "192.0.2.1" },
    client: { ...c, host: "192.0.2.2" },
    close: async () => {
      await c.close();
      await server.close();
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// chronyd as a client: `chronyd -Q` measures the offset once and prints it, without touching the clock.

export interface ChronyClientOptions {
  /** Samples chronyd collects before it reports (default 2). */
  samples?: number;
  /** Run inside this sandbox (when the server lives in one). */
  sandbox?: PortSandbox;
  /** More options on the `server` line ("nts ntsport 4460"). */
  serverOptions?: string;
  /** More chrony.conf lines ("ntstrustedcerts /path/ca.pem"). */
  lines?: string[];
}

/**
 * Asks chronyd to measure the offset of the server at host:port; returns the offset in seconds chrony
 * reports ("System clock wrong by X seconds (ignored)"), or throws PeerError with chronyd's output when
 * chrony did not accept the server's time within `timeoutMs`.
 */
export async function chronyClientCheck(
  host: string,
  port: number,
  timeoutMs = 15000,
  opts: ChronyClientOptions = {},
): Promise<number> {
  const chronyd = findTool("chronyd");
  const dir = await tempDir("chrony-client");
  try {
    const samples = opts.samples ?? 2;
    const conf = join(dir, "chrony.conf");
    // cmdport 0 and bindcmdaddress / disable both command sockets, and the pidfile is our own, so nothing
    // collides with a system chronyd.
    await writeFile(
      conf,
      [
        `server ${host} port ${port} iburst minsamples ${samples} maxsamples ${samples}${opts.serverOptions ? ` ${opts.serverOptions}` : ""}`,
        "cmdport 0",
        "bindcmdaddress /",
        `pidfile ${join(dir, "chronyd.pid")}`,
        ...(opts.lines ?? []),
        "",
      ].join("\n"),
    );
    // -t: chronyd gives up (and says so) before our own kill timer fires.
    const limitS = Math.max(1, Math.floor(timeoutMs / 1000) - 1);
    const argv = [chronyd, "-Q", "-t", String(limitS), "-u", "root", "-f", conf];
    const r = await run(opts.sandbox ? opts.sandbox.wrap(argv) : argv, timeoutMs);
    const m = /System clock wrong by (-?[0-9.]+) seconds/.exec(r.output);
    if (!m?.[1]) {
      throw new PeerError(
        r.signal ? "PEER_TIMEOUT" : "PEER_NO_ANSWER",
        `chronyd -Q did not accept the time of ${host}:${port} (exit ${r.code ?? r.signal})`,
        r.output,
      );
    }
    return Number(m[1]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------
// ntplib

/** What ntplib's NTPStats holds; `leap` and `stratum` are the raw header fields. */
export interface NtplibResult {
  offset: number;
  delay: number;
  leap: number;
  version: number;
  mode: number;
  stratum: number;
  poll: number;
  precision: number;
  rootDelay: number;
  rootDispersion: number;
  /** ntplib's ref_id_to_text: four characters for stratum 0 and 1, a dotted IPv4 address otherwise. */
  refid: string;
  refidRaw: number;
  origTime: number;
  recvTime: number;
  txTime: number;
  destTime: number;
}

const NTPLIB_SCRIPT = `
import json, sys
try:
    import ntplib
except ImportError as e:
    print(json.dumps({"missing": str(e)})); sys.exit(0)
host, port, version, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
try:
    r = ntplib.NTPClient().request(host, version=version, port=port, timeout=timeout)
except Exception as e:
    print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)})); sys.exit(0)
print(json.dumps({
    "offset": r.offset, "delay": r.delay, "leap": r.leap, "version": r.version, "mode": r.mode,
    "stratum": r.stratum, "poll": r.poll, "precision": r.precision, "rootDelay": r.root_delay,
    "rootDispersion": r.root_dispersion, "refid": ntplib.ref_id_to_text(r.ref_id, r.stratum),
    "refidRaw": r.ref_id, "origTime": r.orig_time, "recvTime": r.recv_time, "txTime": r.tx_time,
    "destTime": r.dest_time}))
`;

export interface NtplibOptions {
  /** NTP version of the request (default 4). */
  version?: number;
  /** How long ntplib waits for the answer, in seconds (default 2). */
  timeoutS?: number;
  sandbox?: PortSandbox;
}

/**
 * One ntplib request to host:port. Throws PeerError PEER_NO_ANSWER with ntplib's exception text when it
 * got no (acceptable) answer.
 */
export async function ntplibQuery(
  host: string,
  port: number,
  opts: NtplibOptions = {},
): Promise<NtplibResult> {
  const timeoutS = opts.timeoutS ?? 2;
  const argv = [
    python(),
    "-c",
    NTPLIB_SCRIPT,
    host,
    String(port),
    String(opts.version ?? 4),
    String(timeoutS),
  ];
  const r = await run(opts.sandbox ? opts.sandbox.wrap(argv) : argv, timeoutS * 1000 + 5000);
  let parsed:
    | (NtplibResult & { error?: undefined; missing?: undefined })
    | { error?: string; missing?: string };
  try {
    parsed = JSON.parse(r.stdout.trim().split("\n").at(-1) ?? "");
  } catch {
    throw new PeerError("PEER_BAD_OUTPUT", `ntplib query of ${host}:${port} printed no result`, r.output);
  }
  if (parsed.missing !== undefined) {
    throw new PeerError("PEER_MISSING", `python3-ntplib is missing (${parsed.missing}): ${INSTALL_HINT}`);
  }
  if (parsed.error !== undefined) {
    throw new PeerError("PEER_NO_ANSWER", `ntplib query of ${host}:${port} failed: ${parsed.error}`);
  }
  return parsed as NtplibResult;
}

// ---------------------------------------------------------------------------------------------------------
// NTPsec's ntpdig. It has no port option in NTPsec 1.2.2 (the port is fixed at 123 in queryhost()), so the
// server it asks must listen on port 123: see openPort123Sandbox.

export interface NtpdigResult {
  offset: number;
  stratum: number;
  /** ntpdig's words: "no-leap", "add-leap", "del-leap" or "unsync". */
  leap: string;
  /** The synchronisation distance ntpdig prints as "+/-", in seconds. */
  distance: number;
  /** ntpdig's JSON line, as printed. */
  line: string;
}

/**
 * One ntpdig query of host:123 (`-j` JSON output). Throws PeerError with ntpdig's output when ntpdig
 * rejected the answer ("no eligible servers", e.g. leap "unsync" or stratum 16) or got none.
 */
export async function ntpdigQuery(
  host: string,
  opts: { timeoutS?: number; sandbox?: PortSandbox } = {},
): Promise<NtpdigResult> {
  const timeoutS = opts.timeoutS ?? 3;
  const argv = [ntpsecTool("ntpdig"), "-j", "-t", String(timeoutS), host];
  const r = await run(opts.sandbox ? opts.sandbox.wrap(argv) : argv, timeoutS * 1000 + 5000);
  const line = r.stdout.split("\n").find((l) => l.startsWith("{"));
  if (r.code !== 0 || !line) {
    throw new PeerError(
      "PEER_NO_ANSWER",
      `ntpdig did not accept ${host}:123 (exit ${r.code ?? r.signal})`,
      r.output,
    );
  }
  let j: { offset?: unknown; stratum?: unknown; leap?: unknown; precision?: unknown };
  try {
    j = JSON.parse(line);
  } catch {
    throw new PeerError("PEER_BAD_OUTPUT", "ntpdig printed a line that is not JSON", r.output);
  }
  if (typeof j.offset !== "number" || typeof j.stratum !== "number" || typeof j.leap !== "string") {
    throw new PeerError("PEER_BAD_OUTPUT", "ntpdig's JSON lacks offset/stratum/leap", r.output);
  }
  return {
    offset: j.offset,
    stratum: j.stratum,
    leap: j.leap,
    distance: typeof j.precision === "number" ? j.precision : Number.NaN,
    line,
  };
}

// ---------------------------------------------------------------------------------------------------------
// chronyd as a server

export interface ChronyServer {
  host: string;
  port: number;
  /** What chronyd has printed so far (it runs with -d: logs on stderr). */
  output(): string;
  stop(): Promise<void>;
}

export interface ChronyServerOptions {
  port: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** `local stratum N` (default 5). */
  stratum?: number;
  /** More chrony.conf lines. */
  lines?: string[];
  /** How long to wait until it answers ntplib (default 10 s). */
  readyTimeoutMs?: number;
}

/**
 * A real chronyd serving its local clock on host:port: -x (never touches the clock), -d (foreground), its
 * own pidfile and driftfile in a temp dir, no command sockets. Resolves once it answers ntplib. Without
 * root chronyd refuses to serve ("Not superuser"), so it then runs in a user namespace as mapped root
 * (same network namespace, so the port stays reachable).
 */
export async function startChronyServer(opts: ChronyServerOptions): Promise<ChronyServer> {
  const chronyd = findTool("chronyd");
  const host = opts.host ?? "127.0.0.1";
  const dir = await tempDir("chrony-server");
  const conf = join(dir, "chrony.conf");
  await writeFile(
    conf,
    [
      `local stratum ${opts.stratum ?? 5}`,
      "allow 127.0.0.0/8",
      "allow ::1",
      `port ${opts.port}`,
      `bindaddress ${host}`,
      "cmdport 0",
      "bindcmdaddress /",
      `pidfile ${join(dir, "chronyd.pid")}`,
      `driftfile ${join(dir, "drift")}`,
      ...(opts.lines ?? []),
      "",
    ].join("\n"),
  );
  const argv = [
    ...(isRoot() ? [] : [findTool("unshare"), "--user", "--map-root-user", "--"]),
    chronyd,
    "-x",
    "-d",
    "-u",
    "root",
    "-f",
    conf,
  ];
  const [cmd, ...args] = argv as [string, ...string[]];
  const child = track(spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] }));
  let out = "";
  const collect = (d: string) => {
    out += d;
  };
  child.stdout?.setEncoding("utf8").on("data", collect);
  child.stderr?.setEncoding("utf8").on("data", collect);
  let spawnError: Error | undefined;
  child.once("error", (err) => {
    spawnError = err;
  });
  const stop = async () => {
    await terminate(child);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      `chronyd to serve on ${host}:${opts.port}`,
      async () => {
        if (spawnError)
          throw new PeerError("PEER_MISSING", `cannot run ${cmd}: ${spawnError.message}; ${INSTALL_HINT}`);
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new PeerError("PEER_FAILED", `chronyd exited (${child.exitCode ?? child.signalCode})`, out);
        }
        try {
          return await ntplibQuery(host, opts.port, { timeoutS: 0.3 });
        } catch (err) {
          if (err instanceof PeerError && err.code === "PEER_MISSING") throw err;
          return undefined;
        }
      },
      opts.readyTimeoutMs ?? 10000,
      100,
    );
  } catch (err) {
    await stop();
    if (err instanceof PeerError && err.code !== "PEER_TIMEOUT") throw err;
    throw new PeerError("PEER_TIMEOUT", `chronyd did not answer on ${host}:${opts.port}`, out);
  }
  return { host, port: opts.port, output: () => out, stop };
}

// ---------------------------------------------------------------------------------------------------------
// ntpshield itself

export interface NtpshieldOptions {
  /** --listen ADDR:PORT, one or more. */
  listen: string[];
  /** --threads N (default 1). */
  threads?: number;
  /** Written to a temp file and passed as --config. */
  configToml?: string;
  extraArgs?: string[];
  sandbox?: PortSandbox;
  /** How long to wait for the "listening" log line (default 10 s). */
  readyTimeoutMs?: number;
  /**
   * --http: the monitoring endpoint (default "127.0.0.1:0", any free port, so that servers started at once
   * never collide on 11124); "off" turns it off; null passes no flag (the configuration decides).
   */
  http?: string | null;
}

export interface Ntpshield {
  child: ChildProcess;
  /** The monitoring endpoint, "http://127.0.0.1:PORT" as the server logged it; undefined when off. */
  httpUrl: string | undefined;
  /** Raw stdout lines (JSON log records) so far. */
  logs: string[];
  /** The stdout lines that parsed as JSON. */
  records: Record<string, unknown>[];
  /** What it wrote on stderr so far. */
  stderr(): string;
  /** SIGTERM, wait for the exit (SIGKILL after 5 s); resolves with the exit code (null if killed). */
  stop(): Promise<number | null>;
}

/**
 * Starts `node src/cli/main.ts serve` (Node of this process: Node 24 under npm) and resolves once it logs
 * `"msg":"listening"`; rejects with its output when it exits first or does not get there in time.
 */
export async function startNtpshield(opts: NtpshieldOptions): Promise<Ntpshield> {
  let dir: string | undefined;
  const args = ["src/cli/main.ts", "serve", "--threads", String(opts.threads ?? 1)];
  for (const l of opts.listen) args.push("--listen", l);
  const http = opts.http === undefined ? "127.0.0.1:0" : opts.http;
  if (http !== null) args.push("--http", http);
  if (opts.configToml !== undefined) {
    dir = await tempDir("ntpshield");
    const file = join(dir, "ntpshield.toml");
    await writeFile(file, opts.configToml);
    args.push("--config", file);
  }
  args.push(...(opts.extraArgs ?? []));
  const argv = opts.sandbox ? opts.sandbox.wrap([process.execPath, ...args]) : [process.execPath, ...args];
  const [cmd, ...rest] = argv as [string, ...string[]];
  const child = track(spawn(cmd, rest, { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] }));
  const logs: string[] = [];
  const records: Record<string, unknown>[] = [];
  let err = "";
  let partial = "";
  let onLine: ((record: Record<string, unknown>) => void) | undefined;
  child.stdout?.setEncoding("utf8").on("data", (d: string) => {
    partial += d;
    const lines = partial.split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) {
      if (!line) continue;
      logs.push(line);
      try {
        const record = JSON.parse(line) as Record<string, unknown>;
        records.push(record);
        onLine?.(record);
      } catch {
        // Not a log record; kept in `logs` for the failure message.
      }
    }
  });
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    err += d;
  });
  const describe = () => `stdout:\n${logs.join("\n")}${partial}\nstderr:\n${err}`;
  const stop = async (): Promise<number | null> => {
    await terminate(child, 5000);
    if (dir) await rm(dir, { recursive: true, force: true });
    return child.exitCode;
  };
  const timeoutMs = opts.readyTimeoutMs ?? 10000;
  try {
    await new Promise<void>((res, rej) => {
      const timer = setTimeout(
        () =>
          rej(
            new PeerError(
              "PEER_TIMEOUT",
              `ntpshield did not log "listening" within ${timeoutMs} ms`,
              describe(),
            ),
          ),
        timeoutMs,
      );
      const done = (e?: Error) => {
        clearTimeout(timer);
        onLine = undefined;
        child.off("exit", onExit);
        if (e) rej(e);
        else res();
      };
      const onExit = (code: number | null, signal: string | null) =>
        done(
          new PeerError("PEER_FAILED", `ntpshield exited (${code ?? signal}) before listening`, describe()),
        );
      child.once("error", (e) => done(new PeerError("PEER_FAILED", `cannot start ntpshield: ${e.message}`)));
      child.on("exit", onExit);
      onLine = (record) => {
        if (record["msg"] === "listening") done();
      };
      if (records.some((r) => r["msg"] === "listening")) done();
    });
  } catch (e) {
    await stop();
    throw e;
  }
  const bound = records.find((r) => r["msg"] === "listening")?.["http"];
  const httpUrl = typeof bound === "string" && bound !== "off" ? `http://${bound}` : undefined;
  return { child, logs, records, stderr: () => err, stop, httpUrl };
}

// ---------------------------------------------------------------------------------------------------------
// NTPsec's ntpd as a server (added for the client tests, test/client/ntpd.test.ts), or as a client of
// ntpshield (`server` lines; test/integration/defences.test.ts). ntpd has no port option and binds every
// interface address on port 123 (its wildcard socket included), so it runs only inside a network namespace
// of its own (openPort123Sandbox("netns"), or the client side of openNetnsPair() when it asks a server on
// port 123 of the other side), where it can take 127.0.0.1:123 without touching the machine's port 123. It is the unpacked binary from .peers/ntpsec (scripts/install-peers.sh),
// started through setpriv with CAP_SYS_TIME dropped from its bounding set, so whatever its configuration
// says it cannot set or slew the clock; its configuration also disables the clock discipline.

export interface NtpdServer {
  /** Where it listens inside the sandbox: 127.0.0.1:123. */
  host: string;
  port: number;
  sandbox: PortSandbox;
  /** Its temporary directory: ntp.conf, the log, and the statistics files (statsdir). */
  dir: string;
  /** ntpd's log file so far. */
  output(): string;
  /** Stops ntpd and keeps `dir` (ntpd writes its statistics files through a buffer: read them after this). */
  halt(): Promise<void>;
  /** Stops ntpd and removes `dir`. */
  stop(): Promise<void>;
}

export interface NtpdOptions {
  /** A netns sandbox: openPort123Sandbox("netns"), or openNetnsPair()'s client side. */
  sandbox: PortSandbox;
  /** ntp.conf lines (restrict, limit, ...). */
  lines: string[];
  /** How long to wait until it answers (default 10 s). */
  readyTimeoutMs?: number;
}

function ntpsecDaemon(): string {
  const path = join(REPO_ROOT, ".peers", "ntpsec", "usr", "sbin", "ntpd");
  if (!isExecutable(path)) throw new PeerError("PEER_MISSING", `${path} not found: ${INSTALL_HINT}`);
  return path;
}

/**
 * Starts NTPsec's ntpd (foreground, -n) in `sandbox` with the given configuration lines plus a driftfile,
 * statsdir and log file in a temp dir, and waits until it answers a request on 127.0.0.1:123 (with
 * anything, a kiss-o'-death included: an unsynchronised ntpd answers INIT).
 */
export async function startNtpsecNtpd(opts: NtpdOptions): Promise<NtpdServer> {
  if (opts.sandbox.kind !== "netns") {
    throw new PeerError("PEER_FAILED", "ntpd binds port 123 on every address: run it in a netns sandbox");
  }
  const ntpd = ntpsecDaemon();
  const setpriv = findTool("setpriv");
  const dir = await tempDir("ntpd");
  const conf = join(dir, "ntp.conf");
  const log = join(dir, "ntpd.log");
  await writeFile(
    conf,
    [
      ...opts.lines,
      "disable ntp",
      "disable kernel",
      `driftfile ${join(dir, "drift")}`,
      `statsdir ${dir}/`,
      "",
    ].join("\n"),
  );
  const argv = opts.sandbox.wrap([
    setpriv,
    "--bounding-set",
    "-sys_time",
    "--",
    ntpd,
    "-n",
    "-c",
    conf,
    "-l",
    log,
    "-p",
    join(dir, "ntpd.pid"),
  ]);
  const [cmd, ...args] = argv as [string, ...string[]];
  const child = track(spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] }));
  let out = "";
  const collect = (d: string) => {
    out += d;
  };
  child.stdout?.setEncoding("utf8").on("data", collect);
  child.stderr?.setEncoding("utf8").on("data", collect);
  const output = () => {
    let text = out;
    try {
      text += readFileSync(log, "utf8");
    } catch {
      // no log yet
    }
    return text;
  };
  const halt = () => terminate(child);
  const stop = async () => {
    await terminate(child);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      "ntpd to answer on 127.0.0.1:123",
      async () => {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new PeerError("PEER_FAILED", `ntpd exited (${child.exitCode ?? child.signalCode})`, output());
        }
        try {
          return await ntplibQuery("127.0.0.1", 123, { timeoutS: 0.3, sandbox: opts.sandbox });
        } catch (err) {
          if (err instanceof PeerError && err.code === "PEER_MISSING") throw err;
          return undefined;
        }
      },
      opts.readyTimeoutMs ?? 10000,
      200,
    );
  } catch (err) {
    const text = output();
    await stop();
    if (err instanceof PeerError && err.code !== "PEER_TIMEOUT") throw err;
    throw new PeerError("PEER_TIMEOUT", "ntpd did not answer on 127.0.0.1:123 in its namespace", text);
  }
  return { host: "127.0.0.1", port: 123, sandbox: opts.sandbox, dir, output, halt, stop };
}

// ---------------------------------------------------------------------------------------------------------
// dnsmasq as a DNS server holding test records (the reverse-DNS access lists, docs/defences-names.md)

export interface DnsmasqOptions {
  /** UDP (and TCP) port; default: a free one. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** `--host-record`: A/AAAA records for the name and the matching PTR records. */
  hostRecords?: readonly { name: string; addresses: readonly string[] }[];
  /** `--ptr-record`: a PTR record alone (no forward record is implied). */
  ptrRecords?: readonly { address: string; name: string }[];
  /** `--address=/name/address`: an A or AAAA record alone (dnsmasq also answers it for names below). */
  addressRecords?: readonly { name: string; address: string }[];
  /**
   * Domains answered from these records only, NXDOMAIN for anything else in them (`--local`). Default: the
   * two reverse trees, so an address without a PTR record gets NXDOMAIN. Anything outside every local
   * domain is REFUSED (no upstream server is configured).
   */
  localDomains?: readonly string[];
  /** How long to wait until it answers (default 5 s). */
  readyTimeoutMs?: number;
}

export interface DnsmasqQuery {
  type: string;
  name: string;
}

export interface Dnsmasq {
  host: string;
  port: number;
  /** "ADDR:PORT", as node:dns's setServers and `[names] resolver` take it. */
  server: string;
  /** What dnsmasq has printed so far (it runs with --log-queries, logging to stderr). */
  output(): string;
  /** Every query logged so far, in order (the readiness probe's excluded). See quiet(). */
  queries(type?: string): DnsmasqQuery[];
  /**
   * Resolves once dnsmasq has printed nothing for `quietMs` (at most `timeoutMs`). dnsmasq queues its log
   * lines and writes them after answering, so the log of a query can arrive after its answer: wait for
   * this before counting queries.
   */
  quiet(quietMs?: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** The reverse-tree name of an IPv4 or IPv6 address: "1.2.0.192.in-addr.arpa", "1.0...8.b.d.0.1.0.0.2.ip6.arpa". */
export function reverseName(address: string): string {
  if (!address.includes(":")) return `${address.split(".").reverse().join(".")}.in-addr.arpa`;
  const [head = "", tail = ""] = address.split("::");
  const groups = (s: string) => (s === "" ? [] : s.split(":"));
  const h = groups(head);
  const t = groups(tail);
  const all = address.includes("::") ? [...h, ...Array(8 - h.length - t.length).fill("0"), ...t] : h;
  const hex = all.map((g) => g.padStart(4, "0")).join("");
  return `${[...hex].reverse().join(".")}.ip6.arpa`;
}

const DNSMASQ_PROBE = "ntpshield-probe.invalid";

/**
 * A real dnsmasq on host:port (-d: foreground, no pid file, no change of user; --no-resolv, --no-hosts and
 * no configuration file: it knows only the records given). Resolves once it answers a query.
 */
export async function startDnsmasq(opts: DnsmasqOptions = {}): Promise<Dnsmasq> {
  const dnsmasq = findTool("dnsmasq");
  const host = opts.host ?? "127.0.0.1";
  const port = opts.port ?? (await freeUdpPort(host));
  const args = [
    "--no-daemon",
    "--conf-file=/dev/null",
    `--port=${port}`,
    `--listen-address=${host}`,
    "--bind-interfaces",
    "--no-resolv",
    "--no-hosts",
    "--log-queries",
    "--log-facility=-",
    ...(opts.localDomains ?? ["in-addr.arpa", "ip6.arpa"]).map((d) => `--local=/${d}/`),
    ...(opts.hostRecords ?? []).map((r) => `--host-record=${[r.name, ...r.addresses].join(",")}`),
    ...(opts.ptrRecords ?? []).map((r) => `--ptr-record=${reverseName(r.address)},${r.name}`),
    ...(opts.addressRecords ?? []).map((r) => `--address=/${r.name}/${r.address}`),
  ];
  const child = track(spawn(dnsmasq, args, { stdio: ["ignore", "pipe", "pipe"] }));
  let out = "";
  const collect = (d: string) => {
    out += d;
  };
  child.stdout?.setEncoding("utf8").on("data", collect);
  child.stderr?.setEncoding("utf8").on("data", collect);
  let spawnError: Error | undefined;
  child.once("error", (err) => {
    spawnError = err;
  });
  const server = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  const { Resolver } = await import("node:dns/promises");
  const probe = new Resolver({ timeout: 200, tries: 1 });
  probe.setServers([server]);
  try {
    await waitFor(
      `dnsmasq to answer on ${server}`,
      async () => {
        if (spawnError)
          throw new PeerError(
            "PEER_MISSING",
            `cannot run ${dnsmasq}: ${spawnError.message}; ${INSTALL_HINT}`,
          );
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new PeerError("PEER_FAILED", `dnsmasq exited (${child.exitCode ?? child.signalCode})`, out);
        }
        try {
          await probe.resolve4(DNSMASQ_PROBE);
          return true;
        } catch (err) {
          // Any DNS answer (REFUSED for a name it does not hold) proves it is up; no answer does not.
          const code = (err as NodeJS.ErrnoException).code;
          return code === "ECONNREFUSED" || code === "ETIMEOUT" ? undefined : true;
        }
      },
      opts.readyTimeoutMs ?? 5000,
      50,
    );
  } catch (err) {
    await terminate(child, 1000);
    if (err instanceof PeerError && err.code !== "PEER_TIMEOUT") throw err;
    throw new PeerError("PEER_TIMEOUT", `dnsmasq did not answer on ${server}`, out);
  }
  const queries = (type?: string): DnsmasqQuery[] => {
    const found: DnsmasqQuery[] = [];
    for (const m of out.matchAll(/query\[(\w+)\] (\S+) from /g)) {
      if (m[2] === DNSMASQ_PROBE) continue;
      if (type === undefined || m[1] === type) found.push({ type: m[1]!, name: m[2]! });
    }
    return found;
  };
  const quiet = async (quietMs = 100, timeoutMs = 3000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    let seen = -1;
    while (seen !== out.length && Date.now() < deadline) {
      seen = out.length;
      await new Promise((r) => setTimeout(r, quietMs));
    }
  };
  return { host, port, server, output: () => out, queries, quiet, stop: () => terminate(child, 1000) };
}
