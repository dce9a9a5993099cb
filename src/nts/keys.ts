// The server's cookie keys (RFC 8915 §6): every cookie is sealed under the newest key and names it by a
// 32-bit id, so that a key can be replaced without the cookies in clients' hands failing at once: a key
// seals new cookies for `rotate` seconds, then opens old ones for `keep` more seconds, then is forgotten
// (a client whose cookies all fail is told NTS NAK and runs NTS-KE again, RFC 8915 §5.7).
//
// The same keys in every worker thread (the main thread rotates and sends them), and, for a fleet, in every
// server: the key file holds them as text, one key a line, so that servers given the same file open each
// other's cookies (a client handed to another server of the fleet by NTS-KE, RFC 8915 §4.1.7, keeps its
// cookies). Pure: time and randomness come in as arguments.

import { SIV_KEY_LENGTH, SivKey } from "./aes-siv.ts";
import { NtsError } from "./errors.ts";

export interface CookieKey {
  /** The id written in each cookie, 32 bits. */
  readonly id: number;
  /** AES-SIV-CMAC-256 key. */
  readonly key: Uint8Array;
  /** When it was made, Unix ms: the newest seals, the older ones only open. */
  readonly createdMs: number;
}

export interface RotationPolicy {
  /** Seconds a key seals new cookies before a new one replaces it. */
  readonly rotate: number;
  /** Seconds a replaced key still opens cookies. */
  readonly keep: number;
}

/**
 * How long a new key only opens cookies before it seals any, ms: long enough for every worker thread, and
 * every server of a fleet that reads the key file, to hold it, so that no cookie is handed out that some
 * server of the fleet cannot open yet. A quarter of the rotation interval, at most 10 s (a fleet member's
 * file check comes every 5 s); 10 s for a member that does not rotate itself.
 */
export function activationMs(rotateSeconds: number): number {
  return rotateSeconds > 0 ? Math.min(10_000, rotateSeconds * 250) : 10_000;
}

/**
 * The key that seals at `nowMs`: the newest old enough (activationMs), else the oldest there is (a new
 * server's first key seals at once). `keys` newest first.
 */
export function sealingKey<K extends CookieKey>(keys: readonly K[], nowMs: number, activation: number): K {
  for (const k of keys) if (k.createdMs + activation <= nowMs) return k;
  return keys[keys.length - 1]!;
}

/** A key of a set, ready to seal and open (its ciphers made once, for its life). */
export interface ReadyCookieKey extends CookieKey {
  readonly siv: SivKey;
}

/** A set of keys, newest first; what a worker holds. */
export class CookieKeys {
  readonly keys: readonly ReadyCookieKey[];
  private readonly byIdMap: Map<number, ReadyCookieKey>;

  /** See activationMs. */
  readonly activation: number;

  constructor(keys: readonly CookieKey[], activation = 0) {
    this.activation = activation;
    if (keys.length === 0) throw new NtsError("ERR_NTS_KEY", "a cookie key set needs at least one key");
    for (const k of keys) checkKey(k);
    this.keys = [...keys]
      .sort((a, b) => b.createdMs - a.createdMs)
      .map((k) => ({ id: k.id, key: k.key, createdMs: k.createdMs, siv: new SivKey(k.key) }));
    this.byIdMap = new Map(this.keys.map((k) => [k.id, k]));
    if (this.byIdMap.size !== keys.length) throw new NtsError("ERR_NTS_KEY", "two cookie keys share an id");
  }

  /** The newest key. */
  get current(): ReadyCookieKey {
    return this.keys[0]!;
  }

  /** The key that seals new cookies at `nowMs` (sealingKey). */
  sealing(nowMs: number): ReadyCookieKey {
    return sealingKey(this.keys, nowMs, this.activation);
  }

  byId(id: number): ReadyCookieKey | undefined {
    return this.byIdMap.get(id);
  }
}

function checkKey(k: CookieKey): void {
  if (!Number.isInteger(k.id) || k.id < 0 || k.id > 0xffffffff)
    throw new NtsError("ERR_NTS_KEY", `cookie key id ${k.id} is not a 32-bit number`);
  if (k.key.length !== SIV_KEY_LENGTH)
    throw new NtsError(
      "ERR_NTS_KEY",
      `cookie key ${hex8(k.id)} is ${k.key.length} octets, not ${SIV_KEY_LENGTH}`,
    );
  if (!Number.isFinite(k.createdMs))
    throw new NtsError("ERR_NTS_KEY", `cookie key ${hex8(k.id)} has no time`);
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

/** A new key with an id none of `existing` has. `random(n)` gives n random octets (a CSPRNG's). */
export function newCookieKey(
  existing: readonly CookieKey[],
  nowMs: number,
  random: (n: number) => Uint8Array,
): CookieKey {
  for (;;) {
    const idBytes = random(4);
    const id = ((idBytes[0]! << 24) | (idBytes[1]! << 16) | (idBytes[2]! << 8) | idBytes[3]!) >>> 0;
    if (!existing.some((k) => k.id === id)) return { id, key: random(SIV_KEY_LENGTH), createdMs: nowMs };
  }
}

/**
 * The keys after rotation at `nowMs`: a new key when the newest has sealed for `rotate` seconds (or there is
 * none), and without the keys replaced more than `keep` seconds ago. `changed` says whether anything moved.
 */
export function rotateCookieKeys(
  keys: readonly CookieKey[],
  nowMs: number,
  policy: RotationPolicy,
  random: (n: number) => Uint8Array,
): { keys: CookieKey[]; changed: boolean } {
  const sorted = [...keys].sort((a, b) => b.createdMs - a.createdMs);
  let changed = false;
  if (sorted.length === 0 || nowMs - sorted[0]!.createdMs >= policy.rotate * 1000) {
    sorted.unshift(newCookieKey(sorted, nowMs, random));
    changed = true;
  }
  // A key was replaced when the next newer one was made.
  const kept = [sorted[0]!];
  for (let i = 1; i < sorted.length; i++) {
    if (nowMs - sorted[i - 1]!.createdMs <= policy.keep * 1000) kept.push(sorted[i]!);
    else changed = true;
  }
  return { keys: kept, changed };
}

const FILE_HEADER = [
  "# ntpshield NTS cookie keys (docs/nts.md): one key a line, newest first:",
  "#   <id, 8 hex digits> <created, Unix seconds> <AES-SIV-CMAC-256 key, 64 hex digits>",
  "# Secret: whoever reads it can open every client's cookies. Keep it mode 0600.",
];

/** The key file's text. */
export function formatKeyFile(keys: readonly CookieKey[]): string {
  const lines = [...FILE_HEADER];
  for (const k of [...keys].sort((a, b) => b.createdMs - a.createdMs)) {
    lines.push(`${hex8(k.id)} ${Math.floor(k.createdMs / 1000)} ${Buffer.from(k.key).toString("hex")}`);
  }
  return `${lines.join("\n")}\n`;
}

/**
 * Reads a key file's text. Throws NtsError ERR_NTS_KEY_FILE naming the line and what is wrong with it, or
 * when there is no key at all.
 */
export function parseKeyFile(text: string, source = "key file"): CookieKey[] {
  const keys: CookieKey[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([0-9a-fA-F]{8})\s+(\d{1,12})\s+([0-9a-fA-F]{64})$/.exec(line);
    if (!m) {
      throw new NtsError(
        "ERR_NTS_KEY_FILE",
        `${source} line ${i + 1}: expected "<8 hex digits> <Unix seconds> <64 hex digits>"`,
      );
    }
    const id = Number.parseInt(m[1]!, 16);
    if (keys.some((k) => k.id === id))
      throw new NtsError("ERR_NTS_KEY_FILE", `${source} line ${i + 1}: key id ${m[1]} appears twice`);
    keys.push({ id, createdMs: Number(m[2]) * 1000, key: new Uint8Array(Buffer.from(m[3]!, "hex")) });
  }
  if (keys.length === 0) throw new NtsError("ERR_NTS_KEY_FILE", `${source}: no key in it`);
  return keys;
}
