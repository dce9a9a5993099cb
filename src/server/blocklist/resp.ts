// RESP2, the Redis serialization protocol (redis.io/docs/reference/protocol-spec): what the shared
// blocklist needs of it and no more. A command is an array of bulk strings; a reply is a simple string,
// an error, an integer, a bulk string (null when absent) or an array of replies. Bulk strings are decoded
// as UTF-8: the shared blocklist stores text only.

/** An error reply ("-ERR ..."): Redis refused the command; the connection is still good. */
export class RespReplyError extends Error {
  override readonly name = "RespReplyError";
}

export type RespValue = string | number | null | RespReplyError | RespValue[];

/** One command as RESP2 bytes: `*N\r\n` then `$len\r\nbytes\r\n` for each argument. */
export function encodeCommand(args: readonly (string | number)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.from(String(a), "utf8");
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from("\r\n"));
  }
  return Buffer.concat(parts);
}

/** The stream is not RESP (or not RESP2): the connection cannot be trusted any more. */
export class RespProtocolError extends Error {
  override readonly name = "RespProtocolError";
}

// Bounds against a confused or hostile peer: no reply the blocklist asks for comes near them.
const MAX_BULK = 512 * 1024 * 1024;
const MAX_ARRAY = 16 * 1024 * 1024;

const INCOMPLETE: unique symbol = Symbol("incomplete");

/**
 * Incremental reply parser: feed it bytes as they arrive, take whole replies out. A reply split over
 * several reads is parsed again from its start once more bytes came (replies are small; simpler than
 * keeping a parse stack).
 */
export class RespParser {
  #buf: Buffer = Buffer.alloc(0);
  #pos = 0;

  /** Adds received bytes; returns every reply now complete, in order. Throws RespProtocolError. */
  push(chunk: Buffer): RespValue[] {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    const out: RespValue[] = [];
    for (;;) {
      this.#pos = 0;
      const v = this.#value();
      if (v === INCOMPLETE) break;
      out.push(v);
      this.#buf = this.#buf.subarray(this.#pos);
      if (this.#buf.length === 0) break;
    }
    return out;
  }

  /** Bytes held that do not yet make a whole reply. */
  get pending(): number {
    return this.#buf.length;
  }

  #line(): string | typeof INCOMPLETE {
    const end = this.#buf.indexOf("\r\n", this.#pos);
    if (end < 0) return INCOMPLETE;
    const s = this.#buf.toString("utf8", this.#pos, end);
    this.#pos = end + 2;
    return s;
  }

  #int(s: string, what: string): number {
    if (!/^-?\d{1,18}$/.test(s))
      throw new RespProtocolError(`bad ${what} in a RESP reply: ${JSON.stringify(s)}`);
    return Number(s);
  }

  #value(): RespValue | typeof INCOMPLETE {
    if (this.#pos >= this.#buf.length) return INCOMPLETE;
    const type = this.#buf[this.#pos++];
    const line = this.#line();
    if (line === INCOMPLETE) return INCOMPLETE;
    switch (type) {
      case 0x2b: // '+'
        return line;
      case 0x2d: // '-'
        return new RespReplyError(line);
      case 0x3a: // ':'
        return this.#int(line, "integer");
      case 0x24: {
        // '$'
        const n = this.#int(line, "bulk length");
        if (n === -1) return null;
        if (n < 0 || n > MAX_BULK) throw new RespProtocolError(`bulk length ${n} out of range`);
        if (this.#buf.length < this.#pos + n + 2) return INCOMPLETE;
        const s = this.#buf.toString("utf8", this.#pos, this.#pos + n);
        if (this.#buf[this.#pos + n] !== 0x0d || this.#buf[this.#pos + n + 1] !== 0x0a)
          throw new RespProtocolError("bulk string not followed by CRLF");
        this.#pos += n + 2;
        return s;
      }
      case 0x2a: {
        // '*'
        const n = this.#int(line, "array length");
        if (n === -1) return null;
        if (n < 0 || n > MAX_ARRAY) throw new RespProtocolError(`array length ${n} out of range`);
        const items: RespValue[] = [];
        for (let i = 0; i < n; i++) {
          const v = this.#value();
          if (v === INCOMPLETE) return INCOMPLETE;
          items.push(v);
        }
        return items;
      }
      default:
        throw new RespProtocolError(
          `unknown RESP type byte 0x${(type ?? 0).toString(16).padStart(2, "0")} (not a Redis server?)`,
        );
    }
  }
}
