// The configuration file as a JSON Schema (draft 2020-12), written from SCHEMA so that it cannot drift from
// the validator: editors with TOML schema support (Taplo, Even Better TOML) complete keys, show each key's
// description on hover and underline what `check-config` would refuse. Only keywords that mean the same in
// drafts 4 to 2020-12 are used, since editors implement older drafts.

import { type Field, isField } from "./fields.ts";
import { SCHEMA } from "./schema.ts";
import { isPlaceholder, requiredKeys, type Schema } from "./walk.ts";

/** A JSON Schema, as JSON data. */
export type JsonSchema = { [keyword: string]: unknown };

export const JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema";

/**
 * The whole TOML file: every section and key (kebab-case, as written), with type, default, limits and
 * description; unknown keys are refused everywhere, as the validator refuses them. What the schema cannot
 * say is left to `check-config`: the range of a duration or size written as a string ("15m"), the meaning
 * of an address or an access-list flag, duplicates after canonical form, and TOML's float-versus-integer
 * distinction (JSON has one number type: 2.0 passes the schema as an integer; the validator refuses it).
 */
export function configJsonSchema(schema: Schema = SCHEMA): JsonSchema {
  return {
    $schema: JSON_SCHEMA_DIALECT,
    title: "ntpshield configuration",
    description:
      "The TOML configuration file of ntpshield (docs/configuration.md). Every key is optional; " +
      "`ntpshield check-config FILE` checks a file against the same rules.",
    ...tableSchema(schema, []),
  };
}

function tableSchema(schema: Schema, required: readonly string[]): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  for (const [key, node] of Object.entries(schema)) {
    properties[key] = isField(node) ? fieldSchema(node, required.includes(key)) : tableSchema(node, []);
  }
  return {
    type: "object",
    properties,
    ...(required.length > 0 ? { required } : {}),
    additionalProperties: false,
  };
}

/** What a restart-only key says after its description. */
const RESTART_NOTE = " A change takes effect on restart, not on reload.";

const DURATION_STRING = 'A number and one unit: "90s", "15m", "1.5h", "1d".';
const SIZE_STRING =
  'A number and one unit: "512KiB", "64MiB", "200MB", "1GiB" (B, KB, MB, GB, KiB, MiB, GiB).';

function fieldSchema(f: Field<unknown>, required: boolean): JsonSchema {
  const out: JsonSchema = { description: f.description + (f.restart ? RESTART_NOTE : "") };
  switch (f.type) {
    case "integer":
    case "number":
      Object.assign(out, { type: f.type, minimum: f.min, maximum: f.max });
      break;
    case "boolean":
      out["type"] = "boolean";
      break;
    case "string":
      out["type"] = "string";
      if (f.enum !== undefined) out["enum"] = f.enum;
      if (f.pattern !== undefined) out["pattern"] = f.pattern;
      break;
    case "duration":
      out["anyOf"] = [
        { type: "number", minimum: f.min, maximum: f.max },
        { type: "string", pattern: f.pattern, description: DURATION_STRING },
      ];
      break;
    case "size":
      out["anyOf"] = [
        { type: "integer", minimum: f.min, maximum: f.max },
        { type: "string", pattern: f.pattern, description: SIZE_STRING },
      ];
      break;
    case "list": {
      const items: JsonSchema = {
        type: "string",
        description: `${capitalise(f.items?.expect ?? "a string")}.`,
      };
      if (f.items?.pattern !== undefined) items["pattern"] = f.items.pattern;
      Object.assign(out, { type: "array", items }, listLimits(f));
      if (f.unique === true) out["uniqueItems"] = true;
      break;
    }
    case "tables":
      Object.assign(
        out,
        { type: "array", items: tableSchema(f.table ?? {}, requiredKeys(f)) },
        listLimits(f),
      );
      break;
  }
  // A required key's default is never used, and a placeholder's is not a value.
  if (!required && !isPlaceholder(f)) out["default"] = f.default;
  return out;
}

function listLimits(f: Field<unknown>): JsonSchema {
  return { ...(f.min !== undefined && f.min > 0 ? { minItems: f.min } : {}), maxItems: f.max };
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
