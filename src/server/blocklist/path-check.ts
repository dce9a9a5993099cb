// What can be known about a blocklist database path without opening it: `check-config` reports it before
// anything is served, and a failed open says it in place of SQLite's "unable to open the database file".

import { accessSync, closeSync, constants, openSync, readSync, type Stats, statSync } from "node:fs";
import { basename, dirname } from "node:path";

/** The first 16 bytes of every SQLite database file (the file format's "magic header string"). */
const SQLITE_MAGIC = Buffer.from("SQLite format 3\0", "latin1");

function statOf(path: string): Stats | NodeJS.ErrnoException {
  try {
    return statSync(path);
  } catch (e) {
    return e as NodeJS.ErrnoException;
  }
}

function can(path: string, mode: number): boolean {
  try {
    accessSync(path, mode);
    return true;
  } catch {
    return false;
  }
}

/** What a path that is not a regular file is, as a noun phrase. */
function kindOf(st: Stats): string {
  if (st.isDirectory()) return "a directory";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isFIFO()) return "a named pipe";
  if (st.isSocket()) return "a socket";
  return "a special file";
}

/**
 * Whether a file could be an SQLite database: empty (the store fills it in), or beginning with SQLite's
 * header. A file that cannot be read here is left for the open to judge.
 */
function looksLikeSqlite(path: string, size: number): boolean {
  if (size === 0) return true;
  const head = Buffer.alloc(SQLITE_MAGIC.length);
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return true;
  }
  try {
    return readSync(fd, head, 0, head.length, 0) === head.length && head.equals(SQLITE_MAGIC);
  } catch {
    return true;
  } finally {
    closeSync(fd);
  }
}

/**
 * Why the blocklist database at `path` (resolved) cannot be opened or created, as a phrase after "cannot
 * open blocklist database PATH: ", or undefined when nothing here says so (SQLite may still refuse it: a
 * foreign database, a newer schema). Nothing is created or changed; an existing file is read for its first
 * 16 bytes only. ":memory:" is always fine.
 */
export function blocklistPathProblem(path: string): string | undefined {
  if (path === ":memory:") return undefined;
  const dir = dirname(path);
  const st = statOf(path);
  if (st instanceof Error && st.code !== "ENOENT") {
    if (st.code === "ENOTDIR") return `a part of ${dir} is not a directory`;
    return st.code === "EACCES" ? `permission denied to reach ${dir}` : `cannot look at it: ${st.code ?? st}`;
  }
  const d = statOf(dir);
  if (d instanceof Error) {
    return d.code === "ENOENT" ? `the directory ${dir} does not exist` : `cannot look at ${dir}: ${d.code}`;
  }
  if (!d.isDirectory()) return `${dir} is not a directory`;
  if (st instanceof Error) {
    // To be created: the directory must take a new file.
    return can(dir, constants.W_OK | constants.X_OK)
      ? undefined
      : `permission denied to create a file in ${dir}`;
  }
  if (!st.isFile()) return `it is ${kindOf(st)}, not a database file`;
  if (!can(path, constants.R_OK | constants.W_OK)) return "permission denied to read and write it";
  // WAL mode (store.ts): SQLite creates NAME-wal and NAME-shm beside the file on every open.
  if (!can(dir, constants.W_OK | constants.X_OK)) {
    const name = basename(path);
    return `permission denied to create ${name}-wal and ${name}-shm in ${dir}, which SQLite keeps beside it`;
  }
  return looksLikeSqlite(path, st.size) ? undefined : "it is not an SQLite database";
}
