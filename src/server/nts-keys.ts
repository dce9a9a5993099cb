// The NTS cookie keys of a running server (RFC 8915 §6; src/nts/keys.ts holds the pure rules): made and
// rotated here, in the main thread, and handed to every worker thread by message, so that all of them seal
// with the same key and open each other's cookies. With [nts] key-file, the keys also live in that file: read
// at start and whenever it changes, written (atomically, mode 0600) when this server rotates them, so that
// the servers of a fleet given the same file open each other's cookies. A fleet member with rotate = 0 makes
// no keys of its own: it follows the file another server (or the operator) rotates.

import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { NtsError } from "../nts/errors.ts";
import {
  activationMs,
  type CookieKey,
  formatKeyFile,
  parseKeyFile,
  rotateCookieKeys,
  sealingKey,
} from "../nts/keys.ts";
import { ServeError } from "./errors.ts";
import type { Logger } from "./log.ts";

export interface NtsKeySettings {
  /** Absolute path of the key file, or "" for keys in memory only. */
  readonly keyFile: string;
  readonly rotate: number;
  readonly keep: number;
}

const random = (n: number) => new Uint8Array(randomBytes(n));

export class NtsKeyManager {
  keys: CookieKey[] = [];
  private settings: NtsKeySettings;
  private readonly log: Logger;
  private readonly onChange: (keys: CookieKey[], activationMs: number) => void;
  private timer: NodeJS.Timeout | undefined;
  private fileMtimeMs = -1;

  constructor(
    settings: NtsKeySettings,
    log: Logger,
    onChange: (keys: CookieKey[], activationMs: number) => void,
  ) {
    this.settings = settings;
    this.log = log;
    this.onChange = onChange;
  }

  /** Loads or makes the keys. Throws ServeError naming nts.key-file when they can be neither read nor made. */
  start(): CookieKey[] {
    const s = this.settings;
    if (s.keyFile !== "" && existsSync(s.keyFile)) {
      this.keys = this.readFile();
    } else if (s.keyFile !== "" && s.rotate === 0) {
      throw new ServeError(
        "ERR_NTS_KEY_FILE",
        `nts.key-file: ${s.keyFile} does not exist, and nts.rotate = 0 makes no keys`,
      );
    }
    this.rotate(Date.now(), false);
    if (this.keys.length === 0) {
      throw new ServeError("ERR_NTS_KEY_FILE", "nts.key-file: no cookie key (the file is empty of keys)");
    }
    this.schedule();
    return this.keys;
  }

  /** How long a new key waits before it seals (activationMs of the rotation interval). */
  get activationMs(): number {
    return activationMs(this.settings.rotate);
  }

  /** The key that seals new cookies now: the newest old enough to be held everywhere (sealingKey). */
  current(): CookieKey {
    const sorted = [...this.keys].sort((a, b) => b.createdMs - a.createdMs);
    return sealingKey(sorted, Date.now(), this.activationMs);
  }

  /** New rotation settings (the key file's path needs a restart and is kept). */
  reconfigure(settings: NtsKeySettings): void {
    this.settings = { ...settings, keyFile: this.settings.keyFile };
    this.schedule();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    clearInterval(this.timer);
    const rotate = this.settings.rotate;
    // Often enough to rotate on time and to see a fleet's file change; never busy.
    const every = rotate > 0 ? Math.min(60_000, Math.max(250, (rotate * 1000) / 4)) : 5000;
    this.timer = setInterval(() => this.tick(), every);
    this.timer.unref();
  }

  private tick(): void {
    try {
      const s = this.settings;
      if (s.keyFile !== "" && existsSync(s.keyFile) && statSync(s.keyFile).mtimeMs !== this.fileMtimeMs) {
        const keys = this.readFile();
        this.keys = keys;
        this.log.info("nts: cookie keys read from the key file", { path: s.keyFile, keys: keys.length });
        this.onChange(keys, this.activationMs);
      }
      this.rotate(Date.now(), true);
    } catch (err) {
      // The keys in force stay; the next tick tries again.
      this.log.error("nts: cookie keys", { error: err });
    }
  }

  private rotate(nowMs: number, announce: boolean): void {
    const s = this.settings;
    if (s.rotate === 0) return;
    const next = rotateCookieKeys(this.keys, nowMs, { rotate: s.rotate, keep: s.keep }, random);
    if (!next.changed) return;
    this.keys = next.keys;
    // The workers get the new set first; a key file that cannot be written is said, and the keys in memory
    // stay in force (a fleet's other members then miss the new key: it is logged as an error).
    if (announce) this.onChange(this.keys, this.activationMs);
    this.log.info("nts: cookie keys rotated", {
      newest: this.keys[0]!.id.toString(16).padStart(8, "0"),
      keys: this.keys.length,
      sealsFromMs: this.activationMs,
    });
    if (s.keyFile !== "") {
      try {
        this.writeFile();
      } catch (err) {
        const why = `nts.key-file: cannot write ${s.keyFile}: ${(err as Error).message}`;
        // At start, a key file that cannot be made stops the server; later, the server serves on.
        if (!announce) throw new ServeError("ERR_NTS_KEY_FILE", why);
        this.log.error("nts: cannot write the key file", { path: s.keyFile, error: why });
      }
    }
  }

  private readFile(): CookieKey[] {
    const path = this.settings.keyFile;
    try {
      const text = readFileSync(path, "utf8");
      this.fileMtimeMs = statSync(path).mtimeMs;
      return parseKeyFile(text, path);
    } catch (err) {
      if (err instanceof NtsError) throw new ServeError(err.code, `nts.key-file: ${err.message}`);
      throw new ServeError(
        "ERR_NTS_KEY_FILE",
        `nts.key-file: cannot read ${path}: ${(err as Error).message}`,
      );
    }
  }

  /** Written beside and renamed over, so a reader never sees half a file; 0600, as a secret. */
  private writeFile(): void {
    const path = this.settings.keyFile;
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, formatKeyFile(this.keys), { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, path);
    this.fileMtimeMs = statSync(path).mtimeMs;
  }
}
