import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parse } from "smol-toml";
import type { ConfigProblem } from "../../src/config/errors.ts";
import {
  bool,
  duration,
  type Field,
  INVALID,
  int,
  isField,
  num,
  oneOf,
  str,
} from "../../src/config/fields.ts";
import { configKeys, SCHEMA } from "../../src/config/index.ts";
import {
  defaultsOf,
  fieldPaths,
  fileContext,
  type Schema,
  tableList,
  type ValueOf,
  validateTable,
} from "../../src/config/walk.ts";

function leaves(schema: Schema): [string, Field<unknown>][] {
  const out: [string, Field<unknown>][] = [];
  const walk = (s: Schema, path: string) => {
    for (const [k, node] of Object.entries(s)) {
      const key = path ? `${path}.${k}` : k;
      if (isField(node)) out.push([key, node]);
      else walk(node, key);
    }
  };
  walk(schema, "");
  return out;
}

describe("the schema table", () => {
  test("every key is kebab-case", () => {
    for (const key of configKeys()) {
      for (const part of key.split(".")) assert.match(part, /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/, key);
    }
  });

  test("every default passes its own field's check", () => {
    for (const [key, field] of leaves(SCHEMA)) {
      const problems: ConfigProblem[] = [];
      const v = field.check(field.default, key, fileContext(problems));
      assert.deepEqual(problems, [], key);
      assert.deepEqual(v, field.default, key);
    }
  });

  test("sockets, privileges and shared-memory sizes need a restart; nothing else does", () => {
    assert.deepEqual(
      leaves(SCHEMA)
        .filter(([, f]) => f.restart)
        .map(([k]) => k),
      [
        "server.listen",
        "server.threads",
        "server.user",
        "server.io",
        "server.recv-buffer",
        "mru.max-entries",
        "mru.max-memory",
        "mru.max-age",
        "mru.admit-probability",
        "blocklist.path",
        "blocklist.redis",
        "blocklist.redis-key",
        "http.enabled",
        "http.listen",
        "names.cache-size",
        "fleet.peers",
        "nts.enabled",
        "nts.listen",
        "nts.certificate",
        "nts.key",
        "nts.key-file",
        "manycast.group",
        "manycast.interface",
      ],
    );
  });
});

describe("a later section is added by entries alone", () => {
  // What [mru] and [acl] might look like: plain fields, a nested table, and a list of tables.
  const EXTENDED = {
    ...SCHEMA,
    mru: {
      "max-entries": int({ min: 16, max: 1_000_000, default: 4096 }),
      "min-age": duration({ min: 0, max: 3600, default: 64 }),
      "share-decay": num({ min: 0, max: 1, default: 0.5 }),
      enabled: bool({ default: true }),
      limits: { "max-bytes": int({ min: 1024, max: 2 ** 31, default: 1 << 20 }) },
    },
    acl: {
      default: oneOf(["allow", "deny"], { default: "allow" }),
      rule: tableList(
        {
          prefix: str({ default: "", expect: "a prefix", test: (s) => /^[0-9a-f.:]+\/[0-9]+$/.test(s) }),
          action: oneOf(["allow", "deny", "kod"], { default: "deny" }),
        },
        { max: 100 },
      ),
    },
  } satisfies Schema;
  type Extended = ValueOf<typeof EXTENDED>;

  function run(text: string): { value: Extended; problems: ConfigProblem[] } {
    const problems: ConfigProblem[] = [];
    const value = validateTable(EXTENDED, parse(text), "", fileContext(problems)) as Extended;
    return { value, problems };
  }

  test("defaults and camelCase names come from the entries", () => {
    const d = defaultsOf(EXTENDED) as Extended;
    assert.equal(d.mru.maxEntries, 4096);
    assert.equal(d.mru.limits.maxBytes, 1 << 20);
    assert.equal(d.acl.default, "allow");
    assert.deepEqual(d.acl.rule, []);
    assert.ok(fieldPaths(EXTENDED).includes("mru.limits.max-bytes"));
  });

  test("values, nested tables and lists of tables validate", () => {
    const { value, problems } = run(
      [
        "[mru]",
        "max-entries = 100",
        'min-age = "2m"',
        "[mru.limits]",
        "max-bytes = 4096",
        "[[acl.rule]]",
        'prefix = "192.0.2.0/24"',
        'action = "kod"',
        "[[acl.rule]]",
        'prefix = "2001:db8::/32"',
      ].join("\n"),
    );
    assert.deepEqual(problems, []);
    assert.equal(value.mru.maxEntries, 100);
    assert.equal(value.mru.minAge, 120);
    assert.equal(value.mru.limits.maxBytes, 4096);
    assert.deepEqual(value.acl.rule, [
      { prefix: "192.0.2.0/24", action: "kod" },
      { prefix: "2001:db8::/32", action: "deny" },
    ]);
    const action: "allow" | "deny" | "kod" = value.acl.rule[0]!.action;
    assert.equal(action, "kod");
  });

  test("problems inside them are named by full path", () => {
    const { problems } = run(
      [
        "[mru.limits]",
        "max-bytes = 10",
        "extra = 1",
        "[[acl.rule]]",
        'prefix = "nope"',
        "[[acl.rule]]",
        'action = "maybe"',
        "colour = 2",
      ].join("\n"),
    );
    assert.deepEqual(
      problems.map((p) => p.key),
      [
        "mru.limits.extra",
        "mru.limits.max-bytes",
        "acl.rule[0].prefix",
        "acl.rule[1].colour",
        "acl.rule[1].action",
      ],
    );
  });

  test("a list of tables must be a list of tables", () => {
    const { problems } = run("[acl]\nrule = [1]\n");
    assert.deepEqual(
      problems.map((p) => [p.key, p.reason]),
      [["acl.rule[0]", "must be a table, got 1"]],
    );
    assert.equal(run('[acl]\nrule = "x"\n').problems[0]!.key, "acl.rule");
  });

  test("a field check returns INVALID and reports, it never throws", () => {
    const problems: ConfigProblem[] = [];
    const f = int({ min: 0, max: 1, default: 0 });
    assert.equal(f.check({}, "k", fileContext(problems)), INVALID);
    assert.deepEqual(problems, [{ key: "k", reason: "must be an integer from 0 to 1, got a table" }]);
  });
});
