// The JSON Schema that `check-config --json-schema` prints, checked by a real JSON Schema validator (Ajv,
// draft 2020-12): it accepts every shipped and documented file, refuses what the validator refuses where a
// schema can say it, and is never stricter than the validator.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import Ajv2020 from "ajv/dist/2020.js";
import { parse, stringify } from "smol-toml";
import { isField } from "../../src/config/fields.ts";
import {
  ConfigError,
  configJsonSchema,
  configKeys,
  defaultConfig,
  parseConfig,
  SCHEMA,
} from "../../src/config/index.ts";
import type { Schema } from "../../src/config/walk.ts";

const ROOT = join(import.meta.dirname, "..", "..");

const schema = configJsonSchema();
// strict: unknown keywords, or keywords that do not apply to the declared type, are errors.
const ajv = new Ajv2020.default({ strict: true, allErrors: true });
const validate = ajv.compile(schema);

function schemaErrors(text: string): string[] {
  if (validate(parse(text))) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message ?? ""}`);
}

function validatorRefuses(text: string): boolean {
  try {
    parseConfig(text);
    return false;
  } catch (e) {
    if (e instanceof ConfigError) return true;
    throw e;
  }
}

/** Every ```toml block of the docs and the README, named by file and position. */
function documentedExamples(): [string, string][] {
  const files = [
    ...readdirSync(join(ROOT, "docs"))
      .filter((f) => f.endsWith(".md"))
      .map((f) => join("docs", f)),
    "README.md",
  ];
  const out: [string, string][] = [];
  for (const f of files) {
    const md = readFileSync(join(ROOT, f), "utf8");
    let i = 0;
    for (const m of md.matchAll(/^```toml\n([\s\S]*?)^```/gm)) out.push([`${f} example ${++i}`, m[1]!]);
  }
  return out;
}

describe("the configuration's JSON Schema", () => {
  test("is a draft 2020-12 schema that Ajv compiles in strict mode", () => {
    assert.equal(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert.equal(typeof validate, "function");
  });

  test("has every section and key, kebab-case, and refuses unknown keys at every level", () => {
    const keys: string[] = [];
    const walk = (s: Record<string, unknown>, path: string) => {
      assert.equal(s["additionalProperties"], false, `${path || "top level"} refuses unknown keys`);
      for (const [k, v] of Object.entries(s["properties"] as Record<string, Record<string, unknown>>)) {
        const key = path ? `${path}.${k}` : k;
        if (v["type"] === "object") walk(v, key);
        else {
          keys.push(key);
          assert.ok(
            typeof v["description"] === "string" && v["description"].length > 0,
            `${key} is described`,
          );
          const items = v["items"] as Record<string, unknown> | undefined;
          if (items?.["type"] === "object") walk(items, `${key}[]`);
        }
      }
    };
    walk(schema, "");
    assert.deepEqual(
      keys.filter((k) => !k.includes("[]")),
      configKeys(),
    );
    assert.ok(keys.includes("acl.rule[].address") && keys.includes("names.rule[].action"));
  });

  test("arrays of tables: [[acl.rule]] and [[names.rule]] with their required keys", () => {
    const section = (name: string) =>
      (schema["properties"] as Record<string, { properties: Record<string, Record<string, unknown>> }>)[name]!
        .properties;
    const acl = section("acl")["rule"]!;
    const names = section("names")["rule"]!;
    assert.equal(acl["type"], "array");
    assert.equal(acl["maxItems"], 10_000);
    assert.deepEqual((acl["items"] as Record<string, unknown>)["required"], ["address"]);
    assert.equal(names["maxItems"], 1000);
    assert.deepEqual((names["items"] as Record<string, unknown>)["required"], ["suffix", "action"]);
  });

  test("its defaults make a file that the validator reads as the default configuration", () => {
    const defaults = (s: Schema): Record<string, unknown> =>
      Object.fromEntries(Object.entries(s).map(([k, n]) => [k, isField(n) ? undefined : defaults(n)]));
    const fromSchema = (s: Record<string, unknown>): Record<string, unknown> =>
      Object.fromEntries(
        Object.entries(s["properties"] as Record<string, Record<string, unknown>>).map(([k, v]) => [
          k,
          v["type"] === "object" ? fromSchema(v) : v["default"],
        ]),
      );
    const doc = fromSchema(schema);
    assert.deepEqual(Object.keys(doc), Object.keys(defaults(SCHEMA)));
    assert.ok(validate(doc), JSON.stringify(validate.errors));
    assert.deepEqual(parseConfig(stringify(doc)), defaultConfig());
  });

  test("accepts deploy/ntpshield.toml and every TOML example of the docs and the README", () => {
    const files: [string, string][] = [
      ["deploy/ntpshield.toml", readFileSync(join(ROOT, "deploy", "ntpshield.toml"), "utf8")],
      ["an empty file", ""],
      ...documentedExamples(),
    ];
    assert.ok(files.length >= 12, `found ${files.length} files and examples`);
    for (const [name, text] of files) {
      assert.ok(!validatorRefuses(text), `${name}: the validator accepts it`);
      assert.deepEqual(schemaErrors(text), [], name);
    }
  });

  test("refuses what the validator refuses: unknown keys, wrong types, out of range, bad enums, long lists", () => {
    const list = (n: number, item: (i: number) => string) =>
      `[${Array.from({ length: n }, (_, i) => item(i)).join(", ")}]`;
    const bad: string[] = [
      // Unknown keys: at top level, in a section, in a table of a list; an unknown section.
      "stratum = 3\n",
      "[bogus]\nx = 1\n",
      '[server]\nlisen = ["127.0.0.1:123"]\n',
      "[clock]\nhold_time = 60\n",
      "[server.extra]\nx = 1\n",
      '[[acl.rule]]\naddress = "192.0.2.0/24"\ncolour = "red"\n',
      '[[names.rule]]\nsuffix = ".mil"\naction = "allow"\nweight = 2\n',
      // Wrong types.
      "server = 1\n",
      '[server]\nthreads = "2"\n',
      '[server]\nlisten = "127.0.0.1:123"\n',
      "[server]\nlisten = [123]\n",
      '[server]\nanswer-symmetric = "yes"\n',
      "[clock]\nrefid = 5\n",
      "[clock]\npoll = true\n",
      "[log]\nlevel = 1\n",
      "[mru]\nmax-memory = 1.5\n",
      "[acl]\ndefault = [1]\n",
      '[acl]\nrule = "x"\n',
      "[acl]\nrule = [1]\n",
      "[[acl.rule]]\naddress = 1\n",
      // Out of range, and strings out of their syntax.
      "[clock]\nstratum = 20\n",
      "[clock]\nstratum = 0\n",
      "[server]\nthreads = -1\n",
      "[server]\nthreads = 257\n",
      "[clock]\nprecision = 1\n",
      "[clock]\nroot-delay = 70000\n",
      "[clock]\npoll = 10\n",
      "[clock]\nhold-time = 100000\n",
      "[mru]\nadmit-probability = 1.5\n",
      "[mru]\nmax-memory = 1024\n",
      "[server]\nrecv-buffer = 2147483648\n",
      "[callgap]\naverage = 0\n",
      "[names]\nmax-rate = 0\n",
      "[names]\ncache-size = 10\n",
      '[clock]\nrefid = "TOOLONG"\n',
      '[clock]\nrefid = "01.2.3.4"\n',
      '[server]\nuser = "9lives"\n',
      '[clock]\npoll = "2w"\n',
      '[mru]\nmax-memory = "64mib"\n',
      '[blocklist]\npath = ""\n',
      '[[acl.rule]]\naddress = ""\n',
      '[[names.rule]]\nsuffix = "*.mil"\naction = "deny"\n',
      `[control]\nallow = ["${"1".repeat(65)}"]\n`,
      // Bad enum values.
      '[server]\nio = "fast"\n',
      '[log]\nlevel = "trace"\n',
      '[callgap]\nmode = "bucket"\n',
      '[names]\npending = "wait"\n',
      '[[names.rule]]\nsuffix = ".mil"\naction = "maybe"\n',
      // Lists too long, too short, or repeating an entry; required keys left out.
      `[server]\nlisten = ${list(65, (i) => `"127.0.0.${i}:123"`)}\n`,
      "[server]\nlisten = []\n",
      '[server]\nlisten = ["127.0.0.1:123", "127.0.0.1:123"]\n',
      `[clock]\nupstream = ${list(33, (i) => `"192.0.2.${i}"`)}\n`,
      `[names]\nresolver = ${list(5, (i) => `"192.0.2.${i}"`)}\n`,
      `[acl]\ndefault = ${list(17, () => '"kod"')}\n`,
      `[control]\nallow = ${list(1001, (i) => `"10.${i >> 8}.${i & 255}.1"`)}\n`,
      `[names]\nrule = ${list(1001, (i) => `{ suffix = "n${i}.example", action = "deny" }`)}\n`,
      '[[names.rule]]\nsuffix = ".mil"\n',
      '[[names.rule]]\naction = "allow"\n',
      "[[acl.rule]]\nflags = []\n",
    ];
    for (const text of bad) {
      const name = text.length > 80 ? `${text.slice(0, 77)}...` : text;
      assert.ok(validatorRefuses(text), `the validator refuses ${JSON.stringify(name)}`);
      assert.notDeepEqual(schemaErrors(text), [], `the schema refuses ${JSON.stringify(name)}`);
    }
  });

  test("is never stricter than the validator: whatever one key's value, if check-config takes it, so does the schema", () => {
    const values = [
      "0",
      "1",
      "-1",
      "2",
      "2.0",
      "15",
      "16",
      "64",
      "256",
      "1024",
      "65535",
      "86400",
      "0.5",
      "1.5",
      "1e9",
      "true",
      "false",
      "inf",
      "nan",
      '""',
      '"x"',
      '"LOCL"',
      '"1.2.3.4"',
      '"ntpshield"',
      '"_x.y-z"',
      '"auto"',
      '"dgram"',
      '"token-bucket"',
      '"deny"',
      '"drop"',
      '"debug"',
      '"90s"',
      '"1.5h"',
      '"64MiB"',
      '"64 KiB"',
      '"1GiB"',
      '"127.0.0.1:0"',
      '"[::1]:11124"',
      "[]",
      '["127.0.0.1:123"]',
      '["[::]:123", "0.0.0.0:123"]',
      '["time.example.net", "192.0.2.1:123"]',
      '["limited", "kod"]',
      '["192.0.2.0/24", "::1"]',
      '["a.b", "c"]',
      "{}",
      '{ suffix = ".mil", action = "allow" }',
      '[{ suffix = ".", action = "deny" }]',
      '[{ address = "192.0.2.0/24", flags = ["noserve"] }]',
      '[{ address = "::1" }]',
    ];
    let accepted = 0;
    for (const key of configKeys()) {
      const [section, name] = key.split(".") as [string, string];
      for (const v of values) {
        const text = `[${section}]\n${name} = ${v}\n`;
        if (validatorRefuses(text)) continue;
        accepted++;
        assert.deepEqual(schemaErrors(text), [], text);
      }
    }
    assert.ok(accepted > 150, `${accepted} accepted values tried`);
  });
});
