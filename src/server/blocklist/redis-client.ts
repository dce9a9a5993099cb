// A small Redis client on node:net for the fleet's shared blocklist (docs/fleet.md): one connection,
// commands pipelined (written as they come, replies matched in order), a timeout per command, and
// reconnection with exponential backoff. While the connection is down commands fail at once rather than
// wait: the caller (sharing.ts) keeps its own queue of what to push later, and the server goes on serving
// from its local SQLite copy.

import { connect, type Socket } from "node:net";
import { encodeCommand, RespParser, RespProtocolError, RespReplyError, type RespValue } from "./resp.ts";

/** Where the server is and how to log in, from `redis://[user:password@]host[:port][/db]`. */
export interface RedisAddress {
  host: string;
  port: number;
  db: number;
  username?: string | undefined;
  password?: string | undefined;
}

/** Parses a redis:// URL; throws RangeError naming what is wrong. The password is never in the message. */
export function parseRedisUrl(url: string): RedisAddress {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new RangeError("not a URL (expected redis://host:port)");
  }
  if (u.protocol !== "redis:") throw new RangeError(`scheme must be redis://, got ${u.protocol}//`);
  if (u.hostname === "") throw new RangeError("no host (expected redis://host:port)");
  const port = u.port === "" ? 6379 : Number(u.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`bad port ${u.port}`);
  const path = u.pathname.replace(/^\//, "");
  if (path !== "" && !/^\d{1,2}$/.test(path))
    throw new RangeError(`database must be a number 0-99, got /${path}`);
  if (u.search !== "" || u.hash !== "") throw new RangeError("no query or fragment allowed");
  const host = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
  return {
    host,
    port,
    db: path === "" ? 0 : Number(path),
    username: u.username === "" ? undefined : decodeURIComponent(u.username),
    password: u.password === "" ? undefined : decodeURIComponent(u.password),
  };
}

export interface RedisClientOptions {
  /** Ms to wait for the TCP connection and the login (default 1000). */
  connectTimeoutMs?: number;
  /** Ms a command may wait for its reply before the connection is judged hung and dropped (default 2000). */
  commandTimeoutMs?: number;
  /** The first reconnection delay in ms, doubled after each failure (default 100). */
  minBackoffMs?: number;
  /** The longest reconnection delay in ms (default 5000). */
  maxBackoffMs?: number;
  /** Called when the connection comes up (ready for commands) or goes down (with why). */
  onState?: (up: boolean, why?: string) => void;
}

/** A command failed without a reply from Redis: not connected, timed out, connection lost. */
export class RedisUnavailableError extends Error {
  override readonly name = "RedisUnavailableError";
}

interface Pending {
  resolve: (v: RespValue) => void;
  reject: (e: Error) => void;
  sentMs: number;
}

/** One connection to one Redis server, kept up until close(). */
export class RedisClient {
  readonly address: RedisAddress;
  readonly #o: Required<Omit<RedisClientOptions, "onState">> & Pick<RedisClientOptions, "onState">;
  #socket: Socket | undefined;
  #parser = new RespParser();
  #pending: Pending[] = [];
  #up = false;
  #closed = false;
  #backoffMs: number;
  #retryTimer: NodeJS.Timeout | undefined;
  #watchdog: NodeJS.Timeout | undefined;
  #ready: Promise<void>;
  #markReady: () => void = () => {};
  /** Why the last connection attempt or connection failed. */
  lastError = "";

  constructor(address: RedisAddress | string, options: RedisClientOptions = {}) {
    this.address = typeof address === "string" ? parseRedisUrl(address) : address;
    this.#o = {
      connectTimeoutMs: options.connectTimeoutMs ?? 1000,
      commandTimeoutMs: options.commandTimeoutMs ?? 2000,
      minBackoffMs: options.minBackoffMs ?? 100,
      maxBackoffMs: options.maxBackoffMs ?? 5000,
      onState: options.onState,
    };
    this.#backoffMs = this.#o.minBackoffMs;
    this.#ready = new Promise((r) => (this.#markReady = r));
    this.#connect();
  }

  /** True while connected and logged in. */
  get up(): boolean {
    return this.#up;
  }

  /** Resolves once the connection is first up, or rejects after `timeoutMs`. */
  async ready(timeoutMs = 5000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new RedisUnavailableError(`no connection to Redis within ${timeoutMs} ms: ${this.lastError}`),
          ),
        timeoutMs,
      );
    });
    try {
      await Promise.race([this.#ready, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends one command; resolves with its reply, rejects with RespReplyError or RedisUnavailableError. */
  command(args: readonly (string | number)[]): Promise<RespValue> {
    if (!this.#up || this.#socket === undefined)
      return Promise.reject(
        new RedisUnavailableError(`Redis is not connected (${this.lastError || "connecting"})`),
      );
    return this.#send(this.#socket, args);
  }

  /** Several commands in one write; each reply (or reply error) in order. Fails whole if the link fails. */
  async pipeline(commands: readonly (readonly (string | number)[])[]): Promise<RespValue[]> {
    if (!this.#up || this.#socket === undefined)
      throw new RedisUnavailableError(`Redis is not connected (${this.lastError || "connecting"})`);
    const socket = this.#socket;
    socket.cork();
    const replies = commands.map((c) =>
      this.#send(socket, c).catch((e: unknown) => {
        if (e instanceof RespReplyError) return e;
        throw e;
      }),
    );
    socket.uncork();
    return Promise.all(replies);
  }

  #send(socket: Socket, args: readonly (string | number)[]): Promise<RespValue> {
    return new Promise<RespValue>((resolve, reject) => {
      this.#pending.push({
        resolve: (v) => (v instanceof RespReplyError ? reject(v) : resolve(v)),
        reject,
        sentMs: Date.now(),
      });
      socket.write(encodeCommand(args));
    });
  }

  /** Closes the connection for good; pending commands fail. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    clearInterval(this.#watchdog);
    this.#drop("client closed");
  }

  #connect(): void {
    if (this.#closed) return;
    const { host, port } = this.address;
    const socket = connect({ host, port, noDelay: true });
    this.#socket = socket;
    this.#parser = new RespParser();
    const timer = setTimeout(() => socket.destroy(new Error("connect timed out")), this.#o.connectTimeoutMs);
    socket.on("data", (chunk: Buffer) => this.#data(socket, chunk));
    socket.on("error", (err) => {
      this.lastError = err.message;
    });
    socket.on("close", () => {
      clearTimeout(timer);
      if (this.#socket === socket) this.#lost(this.lastError || "connection closed");
    });
    socket.on("connect", () => {
      void this.#login(socket).then(
        () => {
          clearTimeout(timer);
          if (this.#socket !== socket || this.#closed) return;
          this.#up = true;
          this.#backoffMs = this.#o.minBackoffMs;
          this.lastError = "";
          this.#watchdog = setInterval(
            () => this.#checkTimeouts(socket),
            Math.min(250, this.#o.commandTimeoutMs),
          );
          this.#watchdog.unref();
          this.#markReady();
          this.#o.onState?.(true);
        },
        (err: Error) => {
          this.lastError = `login failed: ${err.message}`;
          socket.destroy();
        },
      );
    });
  }

  /** AUTH and SELECT before the connection counts as up. */
  async #login(socket: Socket): Promise<void> {
    const { username, password, db } = this.address;
    const cmds: (string | number)[][] = [];
    if (password !== undefined)
      cmds.push(username === undefined ? ["AUTH", password] : ["AUTH", username, password]);
    if (db !== 0) cmds.push(["SELECT", db]);
    cmds.push(["PING"]);
    for (const c of cmds) await this.#send(socket, c);
  }

  #data(socket: Socket, chunk: Buffer): void {
    let replies: RespValue[];
    try {
      replies = this.#parser.push(chunk);
    } catch (e) {
      this.lastError = e instanceof RespProtocolError ? e.message : String(e);
      socket.destroy();
      return;
    }
    for (const r of replies) {
      const p = this.#pending.shift();
      if (p === undefined) {
        this.lastError = "a reply nobody asked for";
        socket.destroy();
        return;
      }
      p.resolve(r);
    }
  }

  /** A reply overdue: the server or the path is hung; drop the connection so that it is made again. */
  #checkTimeouts(socket: Socket): void {
    const oldest = this.#pending[0];
    if (oldest !== undefined && Date.now() - oldest.sentMs > this.#o.commandTimeoutMs) {
      this.lastError = `no reply within ${this.#o.commandTimeoutMs} ms`;
      socket.destroy();
    }
  }

  #drop(why: string): void {
    const socket = this.#socket;
    this.#socket = undefined;
    socket?.destroy();
    this.#lost(why);
  }

  #lost(why: string): void {
    clearInterval(this.#watchdog);
    this.#socket = undefined;
    const pending = this.#pending;
    this.#pending = [];
    for (const p of pending) p.reject(new RedisUnavailableError(`Redis connection lost: ${why}`));
    const wasUp = this.#up;
    this.#up = false;
    if (wasUp) this.#o.onState?.(false, why);
    if (this.#closed) return;
    // Backoff with jitter, so that a fleet that lost Redis together does not reconnect in step.
    const delay = this.#backoffMs * (0.5 + Math.random() / 2);
    this.#backoffMs = Math.min(this.#o.maxBackoffMs, this.#backoffMs * 2);
    this.#retryTimer = setTimeout(() => this.#connect(), delay);
    this.#retryTimer.unref();
  }
}
