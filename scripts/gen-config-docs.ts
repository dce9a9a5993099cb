// Writes the key tables of docs/configuration.md from SCHEMA (src/config/schema.ts), so that the docs say
// what the validator does: each table sits between `<!-- keys:SECTION -->` and `<!-- /keys -->`, and the
// prose around it is left alone. `npm run docs:config` (node scripts/gen-config-docs.ts) rewrites the file;
// test/config/config-docs.test.ts fails while it is out of date.
import { readFileSync, writeFileSync } from "node:fs";
import { type Field, formatSize, isField } from "../src/config/fields.ts";
import { SCHEMA } from "../src/config/index.ts";
import { isPlaceholder, requiredKeys, type Schema } from "../src/config/walk.ts";

export const CONFIG_DOC = new URL("../docs/configuration.md", import.meta.url);

const MARKERS = /<!-- keys:([a-z0-9-]+) -->\n[\s\S]*?<!-- \/keys -->/g;

/** The document with every marked table written afresh from `schema`; throws when a section has no markers. */
export function renderConfigDoc(md: string, schema: Schema = SCHEMA): string {
  const seen: string[] = [];
  const out = md.replace(MARKERS, (_, section: string) => {
    const node = schema[section];
    if (node === undefined || isField(node)) throw new Error(`<!-- keys:${section} -->: no such section`);
    if (seen.includes(section)) throw new Error(`<!-- keys:${section} --> appears twice`);
    seen.push(section);
    return `<!-- keys:${section} -->\n${keyTable(node)}\n<!-- /keys -->`;
  });
  const missing = Object.keys(schema).filter((s) => !seen.includes(s));
  if (missing.length > 0) throw new Error(`no <!-- keys:SECTION --> markers for ${missing.join(", ")}`);
  return out;
}

/** One section's table: a row per key, and for a list of tables a row per key of its tables. */
export function keyTable(section: Schema): string {
  const rows = [
    "| key | type | default | range | on change | what |",
    "| --- | --- | --- | --- | --- | --- |",
  ];
  for (const [key, node] of Object.entries(section)) {
    if (!isField(node)) throw new Error(`${key}: a nested table has no row form`);
    rows.push(row(key, node, false, node.restart));
    const required = requiredKeys(node);
    for (const [sub, item] of Object.entries(node.table ?? {})) {
      if (isField(item)) rows.push(row(`${key}[].${sub}`, item, required.includes(sub), node.restart));
    }
  }
  return rows.join("\n");
}

function row(key: string, f: Field<unknown>, required: boolean, restart: boolean): string {
  const cells = [
    code(key),
    typeText(f),
    required || isPlaceholder(f) ? "required" : code(tomlValue(f, f.default)),
    rangeText(f),
    restart ? "restart" : "reload",
    f.description,
  ];
  return `| ${cells.map((c) => c.replaceAll("|", "\\|")).join(" | ")} |`;
}

function code(s: string): string {
  return `\`${s}\``;
}

function typeText(f: Field<unknown>): string {
  switch (f.type) {
    case "list":
      return "list of strings";
    case "tables":
      return "list of tables";
    default:
      return f.type;
  }
}

/** A value as it would be written in the file. */
function tomlValue(f: Field<unknown>, v: unknown): string {
  if (f.type === "size" && typeof v === "number" && !formatSize(v).endsWith("bytes")) {
    return JSON.stringify(formatSize(v).replace(" ", ""));
  }
  if (Array.isArray(v)) return `[${v.map((x) => JSON.stringify(x)).join(", ")}]`;
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}

function rangeText(f: Field<unknown>): string {
  switch (f.type) {
    case "integer":
      return `${f.min} to ${f.max}`;
    case "number":
      return `${f.min} to ${f.max}${f.unit === undefined ? "" : ` ${f.unit}`}`;
    case "duration":
      return `${f.min} to ${f.max} seconds`;
    case "size":
      return `${formatSize(f.min!)} to ${formatSize(f.max!)}`;
    case "boolean":
      return "`true` / `false`";
    case "string":
      return f.enum === undefined ? f.expect : f.enum.map((e) => code(JSON.stringify(e))).join(", ");
    case "list": {
      const count = f.min !== undefined && f.min > 0 ? `${f.min} to ${f.max}` : `up to ${f.max}`;
      return `${count}, each ${f.items?.expect ?? "a string"}${f.unique ? "; no repeats" : ""}`;
    }
    case "tables":
      return `up to ${f.max} tables`;
  }
}

if (import.meta.main) {
  const before = readFileSync(CONFIG_DOC, "utf8");
  const after = renderConfigDoc(before);
  if (after === before) {
    process.stdout.write("docs/configuration.md: key tables are current\n");
  } else {
    writeFileSync(CONFIG_DOC, after);
    process.stdout.write("docs/configuration.md: key tables rewritten from SCHEMA\n");
  }
}
