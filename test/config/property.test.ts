import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { stringify } from "smol-toml";
import { type Config, ConfigError, configKeys, parseConfig } from "../../src/config/index.ts";

/** parseConfig either returns a frozen Config or throws a well-formed ConfigError; nothing else. */
function checkOutcome(text: string): "ok" | "error" {
  let c: Config;
  try {
    c = parseConfig(text);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw new Error(`not a ConfigError: ${String(e)}`);
    assert.ok(e.code === "ERR_CONFIG_INVALID" || e.code === "ERR_CONFIG_SYNTAX", e.code);
    assert.ok(e.problems.length >= 1);
    assert.equal(e.key, e.problems[0]!.key);
    if (e.code === "ERR_CONFIG_INVALID") for (const p of e.problems) assert.notEqual(p.key, "");
    if (e.code === "ERR_CONFIG_SYNTAX") assert.ok((e.line ?? 0) >= 1);
    return "error";
  }
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.server) && Object.isFrozen(c.clock.upstream));
  return "ok";
}

test("arbitrary strings: a Config or a ConfigError, never anything else", () => {
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 200 }), (s) => {
      checkOutcome(s);
    }),
    { numRuns: 2000 },
  );
});

test("arbitrary TOML-looking text built from real keys and punctuation", () => {
  const tokens = fc.constantFrom(
    "[server]",
    "[clock]",
    "[log]",
    "[[clock]]",
    "\n",
    " = ",
    "=",
    '"',
    "'",
    "[",
    "]",
    ",",
    ".",
    "#",
    "{",
    "}",
    "listen",
    "threads",
    "stratum",
    "hold-time",
    "upstream",
    "level",
    "1",
    "-1",
    "1e400",
    "0x10",
    "nan",
    "true",
    '"127.0.0.1:123"',
    '"[::1]:1"',
    '"15m"',
    "1979-05-27",
  );
  fc.assert(
    fc.property(fc.array(tokens, { maxLength: 40 }), (parts) => {
      checkOutcome(parts.join(""));
    }),
    { numRuns: 2000 },
  );
});

/** A raw value of any TOML type, for keys that may or may not exist. */
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer({ min: -100000, max: 100000 }),
  fc.double({ noNaN: false }),
  fc.boolean(),
  fc.string({ maxLength: 12 }),
  fc.constantFrom("127.0.0.1:123", "[::1]:123", "debug", "LOCL", "15m", "time.example"),
  fc.array(fc.oneof(fc.string({ maxLength: 8 }), fc.integer()), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.integer(), { maxKeys: 2 }),
);

test("structured documents with real and unknown keys and values of any type", () => {
  const names = [...new Set(configKeys().map((k) => k.split(".")[1]!)), "bogus", "hold_time"];
  const section = fc.dictionary(fc.constantFrom(...names), anyValue, { maxKeys: 5 });
  const docArb = fc.dictionary(fc.constantFrom("server", "clock", "log", "mru"), section, { maxKeys: 4 });
  fc.assert(
    fc.property(docArb, (doc) => {
      const text = stringify(doc);
      const outcome = checkOutcome(text);
      if (outcome === "ok") {
        // Only real keys can have been accepted.
        for (const [s, table] of Object.entries(doc)) {
          for (const k of Object.keys(table)) assert.ok(configKeys().includes(`${s}.${k}`), `${s}.${k}`);
        }
      }
    }),
    { numRuns: 1000 },
  );
});

test("every valid document is accepted with exactly its values", () => {
  const server = fc.record(
    {
      listen: fc.uniqueArray(
        fc.oneof(
          fc.tuple(fc.ipV4(), fc.integer({ min: 1, max: 65535 })).map(([a, p]) => `${a}:${p}`),
          fc.integer({ min: 1, max: 65535 }).map((p) => `[::1]:${p}`),
        ),
        { minLength: 1, maxLength: 4, selector: (s) => s.replace(/:\d+$/, "") },
      ),
      threads: fc.integer({ min: 0, max: 256 }),
      user: fc.constantFrom("", "ntp", "_ntpshield"),
      "answer-symmetric": fc.boolean(),
    },
    { requiredKeys: [] },
  );
  const clock = fc.record(
    {
      stratum: fc.integer({ min: 1, max: 15 }),
      refid: fc.oneof(fc.ipV4(), fc.stringMatching(/^[A-Z]{1,4}$/)),
      "root-delay": fc.double({ min: 0, max: 65535, noNaN: true }),
      precision: fc.integer({ min: -32, max: 0 }),
      poll: fc.integer({ min: 64, max: 1024 }),
      "hold-time": fc.integer({ min: 16, max: 86400 }),
      "correct-offset": fc.boolean(),
    },
    { requiredKeys: [] },
  );
  const log = fc.record({ level: fc.constantFrom("debug", "info", "warn", "error") }, { requiredKeys: [] });
  fc.assert(
    fc.property(fc.record({ server, clock, log }, { requiredKeys: [] }), (doc) => {
      // A canonical 0.0.0.0 and a non-canonical listen would collide; the selector above keeps hosts apart.
      const c = parseConfig(stringify(doc));
      const camel = (k: string) => k.replace(/-([a-z])/g, (_, x: string) => x.toUpperCase());
      for (const [s, table] of Object.entries(doc)) {
        for (const [k, v] of Object.entries(table as Record<string, unknown>)) {
          const got = (c as unknown as Record<string, Record<string, unknown>>)[s]![camel(k)];
          assert.deepEqual(got, Object.is(v, -0) ? 0 : v, `${s}.${k}`);
        }
      }
    }),
    { numRuns: 500 },
  );
});
