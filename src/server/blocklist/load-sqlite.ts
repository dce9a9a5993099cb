// node:sqlite without its ExperimentalWarning. Node 24 still marks the module experimental and prints a
// warning on stderr when it is first loaded, which would land in the middle of `ntpshield blocklist`'s
// output. Only that one warning is dropped, only while the module loads: every other warning goes through.

let sqlite: typeof import("node:sqlite") | undefined;

/** node:sqlite, loaded on the first call without its ExperimentalWarning. */
export function loadSqlite(): typeof import("node:sqlite") {
  if (sqlite !== undefined) return sqlite;
  const emit = process.emitWarning;
  process.emitWarning = function (this: NodeJS.Process, warning: string | Error, ...rest: unknown[]) {
    const text = typeof warning === "string" ? warning : warning.message;
    const type = typeof rest[0] === "string" ? rest[0] : (rest[0] as { type?: string } | undefined)?.type;
    if (
      (type ?? (warning instanceof Error ? warning.name : "")) === "ExperimentalWarning" &&
      /SQLite/.test(text)
    )
      return;
    return (emit as (...a: unknown[]) => void).call(this, warning, ...rest);
  } as typeof process.emitWarning;
  try {
    sqlite = process.getBuiltinModule("node:sqlite");
  } finally {
    process.emitWarning = emit;
  }
  return sqlite;
}
