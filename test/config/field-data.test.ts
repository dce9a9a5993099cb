// The schema's limits are data (min, max, enum, pattern) that the JSON Schema and the docs are written
// from; these tests hold the data to what the validator does with it.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { parseIPv4 } from "../../src/config/address.ts";
import { DURATION_PATTERN, type Field, isField, SIZE_PATTERN } from "../../src/config/fields.ts";
import { SCHEMA } from "../../src/config/index.ts";
import { NAME_SUFFIX_PATTERN, REFID_PATTERN, USER_NAME_PATTERN } from "../../src/config/schema.ts";
import { isPlaceholder, requiredKeys, type Schema } from "../../src/config/walk.ts";
import { isNameSuffix } from "../../src/defence/names-rules.ts";

/** Every field of a schema, the items of lists of tables included: ["acl.rule[].address", field]. */
function allFields(schema: Schema, path = ""): [string, Field<unknown>][] {
  const out: [string, Field<unknown>][] = [];
  for (const [k, node] of Object.entries(schema)) {
    const key = path ? `${path}.${k}` : k;
    if (!isField(node)) {
      out.push(...allFields(node, key));
      continue;
    }
    out.push([key, node]);
    if (node.table !== undefined) out.push(...allFields(node.table, `${key}[]`));
  }
  return out;
}

const FIELDS = allFields(SCHEMA);

/** Printable ASCII, a few specials and non-ASCII, in short strings: where patterns and closures differ. */
const someText = fc.string({
  unit: fc.constantFrom(..."aZ09_-.:/ \t\n\0é\u{1F600}*x7F".split(""), "\x7f", "\x20", "\x21", "\x7e"),
  maxLength: 12,
});
const dottedQuad = fc
  .array(fc.oneof(fc.integer({ min: 0, max: 300 }).map(String), fc.constantFrom("00", "01", "099", "")), {
    minLength: 3,
    maxLength: 5,
  })
  .map((p) => p.join("."));

const compiled = new Map<string, RegExp>();
function matches(pattern: string, s: string): boolean {
  let re = compiled.get(pattern);
  if (re === undefined) {
    re = new RegExp(pattern);
    compiled.set(pattern, re);
  }
  return re.test(s);
}

describe("field data", () => {
  test("every key and every key of a list of tables says what it does, on one line", () => {
    for (const [key, f] of FIELDS) {
      assert.ok(f.description.length > 10, `${key} has a description`);
      assert.doesNotMatch(f.description, /\n|\|/, `${key}: one line, no table bar`);
      assert.match(f.description, /\.$/, `${key}: a sentence`);
    }
  });

  test("numeric limits hold the default, and lists say how many items", () => {
    for (const [key, f] of FIELDS) {
      if (f.type === "integer" || f.type === "number" || f.type === "duration" || f.type === "size") {
        assert.ok(f.min !== undefined && f.max !== undefined && f.min <= f.max, key);
        assert.ok((f.default as number) >= f.min && (f.default as number) <= f.max, key);
      }
      if (f.type === "list" || f.type === "tables") {
        assert.ok(f.max !== undefined && f.min !== undefined, key);
        assert.ok((f.default as unknown[]).length <= f.max, key);
      }
      if (f.type === "list") assert.ok(f.items !== undefined, `${key} says what an item is`);
      if (f.type === "tables") assert.ok(f.table !== undefined, `${key} says what a table is`);
      if (f.enum !== undefined) assert.ok(f.enum.includes(f.default as string), key);
    }
  });

  test("patterns are portable: no lookaround, and they compile in Unicode mode as JSON Schema tools use them", () => {
    const patterns = FIELDS.flatMap(([key, f]) => [
      [key, f.pattern],
      [`${key}[]`, f.items?.pattern],
    ]).filter((x): x is [string, string] => x[1] !== undefined);
    assert.ok(patterns.length >= 8);
    for (const [key, p] of patterns) {
      assert.doesNotMatch(p, /\(\?[=!<]/, key);
      assert.ok(p.startsWith("^") && p.endsWith("$"), `${key}: anchored`);
      assert.doesNotThrow(() => new RegExp(p, "u"), key);
    }
  });

  test("every default is valid except a placeholder, which makes its key required", () => {
    assert.deepEqual(
      FIELDS.filter(([, f]) => isPlaceholder(f)).map(([k]) => k),
      ["acl.rule[].address", "names.rule[].suffix", "broadcast.destination[].address"],
    );
    assert.deepEqual(requiredKeys(SCHEMA.acl.rule), ["address"]);
    assert.deepEqual(requiredKeys(SCHEMA.names.rule), ["suffix", "action"]);
  });
});

describe("patterns say what the closures they replaced said", () => {
  test("refid: up to four printable ASCII characters, or an IPv4 address as parseIPv4 reads it", () => {
    const old = (s: string) => parseIPv4(s) !== undefined || /^[\x21-\x7e]{1,4}$/.test(s);
    fc.assert(
      fc.property(fc.oneof(someText, dottedQuad), (s) => matches(REFID_PATTERN, s) === old(s)),
      { numRuns: 5000 },
    );
    for (const s of ["0.0.0.0", "255.255.255.255", "10.0.0.1", "GPS", "LOCL"])
      assert.ok(matches(REFID_PATTERN, s), s);
    for (const s of ["256.1.1.1", "01.2.3.4", "1.2.3", "LOCLX", "", "a b"])
      assert.ok(!matches(REFID_PATTERN, s), s);
  });

  test("server.user: empty, or a POSIX-portable name of up to 32 characters", () => {
    const old = (s: string) => s === "" || /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/.test(s);
    fc.assert(
      fc.property(
        fc.oneof(someText, fc.string({ maxLength: 40 })),
        (s) => matches(USER_NAME_PATTERN, s) === old(s),
      ),
      { numRuns: 3000 },
    );
    assert.ok(matches(USER_NAME_PATTERN, "a".repeat(32)));
    assert.ok(!matches(USER_NAME_PATTERN, "a".repeat(33)));
  });

  test("lengths: blocklist.path, acl flags, acl addresses, control.allow", () => {
    const cases: [string, (s: string) => boolean][] = [
      [SCHEMA.blocklist.path.pattern!, (p) => p.length > 0 && p.length <= 4096 && !p.includes("\0")],
      [SCHEMA.acl.default.items!.pattern!, (f) => f.length < 32],
      [SCHEMA.acl.rule.table!.flags.items!.pattern!, (f) => f.length < 32],
      [SCHEMA.acl.rule.table!.address.pattern!, (a) => a.length > 0],
      [SCHEMA.control.allow.items!.pattern!, (a) => a.length > 0 && a.length <= 64],
    ];
    const text = fc.oneof(
      someText,
      fc.string({ unit: "binary", maxLength: 70 }),
      fc.integer({ min: 0, max: 4100 }).map((n) => "x".repeat(n)),
      fc.integer({ min: 4090, max: 4100 }).map((n) => "\u{1F600}".repeat(n / 2)),
    );
    for (const [pattern, old] of cases) {
      fc.assert(
        fc.property(text, (s) => matches(pattern, s) === old(s)),
        { numRuns: 400 },
      );
    }
  });

  test("names.rule suffix: the pattern accepts every suffix isNameSuffix does (which then has the last word)", () => {
    const label = fc.string({ unit: fc.constantFrom(..."aZ09-_é*"), minLength: 0, maxLength: 65 });
    const suffix = fc
      .tuple(
        fc.constantFrom("", "."),
        fc.array(label, { minLength: 1, maxLength: 5 }),
        fc.constantFrom("", ".", ".."),
      )
      .map(([a, labels, b]) => a + labels.join(".") + b);
    fc.assert(
      fc.property(fc.oneof(suffix, someText), (s) => !isNameSuffix(s) || matches(NAME_SUFFIX_PATTERN, s)),
      { numRuns: 5000 },
    );
    // Apart from the length of the whole name, which needs lookahead, the two agree.
    fc.assert(
      fc.property(
        fc.oneof(suffix, someText),
        (s) => s.length > 250 || matches(NAME_SUFFIX_PATTERN, s) === isNameSuffix(s),
      ),
      { numRuns: 5000 },
    );
    const long = `${"a".repeat(63)}.`.repeat(4);
    assert.ok(
      matches(NAME_SUFFIX_PATTERN, long) && !isNameSuffix(long),
      "256 characters: the closure refuses it",
    );
  });

  test("durations and sizes: the string forms parseDuration and parseSize read", () => {
    for (const s of ["90s", "15m", "1.5h", "1d", "0s"]) assert.ok(matches(DURATION_PATTERN, s), s);
    for (const s of ["90", "1w", "1.5", " 1s", "1 s", "-1s"]) assert.ok(!matches(DURATION_PATTERN, s), s);
    for (const s of ["64MiB", "64 MiB", "200MB", "1B", "1.5GiB"]) assert.ok(matches(SIZE_PATTERN, s), s);
    for (const s of ["64", "64mib", "1TB", "64  MiB"]) assert.ok(!matches(SIZE_PATTERN, s), s);
  });
});
