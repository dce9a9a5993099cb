// The cold half of the reverse-DNS access lists (src/defence/names-rules.ts): host names, suffixes and the
// ordered rules on them. The verdict cache is test/defence/names-cache.test.ts.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { DefenceError } from "../../src/defence/errors.ts";
import {
  isNameSuffix,
  isUnderSuffix,
  NAME_ALLOW,
  NAME_DENY,
  NameRules,
  normalizeName,
  normalizeSuffix,
} from "../../src/defence/names-rules.ts";

describe("names and suffixes", () => {
  test("names: ASCII lower case, one trailing dot dropped, host-name syntax only", () => {
    assert.equal(normalizeName("Good.MIL."), "good.mil");
    assert.equal(normalizeName("a-b_c.example"), "a-b_c.example");
    assert.equal(normalizeName("mil"), "mil");
    for (const bad of [
      "",
      ".",
      "a..b",
      ".a",
      "a b.mil",
      "x.mil..",
      "é.mil",
      `${"a".repeat(64)}.mil`,
      "a/b",
    ]) {
      assert.equal(normalizeName(bad), undefined, JSON.stringify(bad));
    }
    assert.equal(normalizeName(`${"a".repeat(63)}.mil`), `${"a".repeat(63)}.mil`);
    const long = Array.from({ length: 64 }, () => "abc").join("."); // 255 characters
    assert.equal(normalizeName(long), undefined);
  });

  test("suffixes: a leading and a trailing dot change nothing; '.' is the root; no wildcards", () => {
    assert.equal(normalizeSuffix(".mil"), "mil");
    assert.equal(normalizeSuffix("mil"), "mil");
    assert.equal(normalizeSuffix(".Army.MIL."), "army.mil");
    assert.equal(normalizeSuffix("."), "");
    for (const bad of ["", "..", "*.mil", ".*", "a..mil", "mil/8", " mil"]) {
      assert.equal(normalizeSuffix(bad), undefined, JSON.stringify(bad));
      assert.equal(isNameSuffix(bad), false);
    }
  });

  test("matching is on whole labels: .mil never matches evilmil", () => {
    const yes: [string, string][] = [
      ["mil", "mil"],
      ["army.mil", "mil"],
      ["a.b.army.mil", "army.mil"],
      ["anything.example", ""],
    ];
    const no: [string, string][] = [
      ["evilmil", "mil"],
      ["mil.example", "mil"],
      ["xarmy.mil", "army.mil"],
      ["mil", "army.mil"],
      ["il", "mil"],
    ];
    for (const [n, s] of yes) assert.ok(isUnderSuffix(n, s), `${n} under ${s}`);
    for (const [n, s] of no) assert.ok(!isUnderSuffix(n, s), `${n} not under ${s}`);
  });

  test("rules: the first match in order wins, else the default; case and dots do not matter", () => {
    const r = new NameRules(
      [
        { suffix: "bad.mil", action: "deny" },
        { suffix: ".mil", action: "allow" },
        { suffix: ".", action: "deny" },
      ],
      "allow",
    );
    assert.equal(r.verdict("good.mil"), NAME_ALLOW);
    assert.equal(r.verdict("GOOD.MIL."), NAME_ALLOW);
    assert.equal(r.verdict("host.bad.mil"), NAME_DENY);
    assert.equal(r.verdict("notbad.mil"), NAME_ALLOW); // label boundary: not under bad.mil
    assert.equal(r.verdict("evilmil"), NAME_DENY); // only the root rule covers it
    assert.equal(r.matchIndex("evilmil"), 2);
    assert.equal(r.verdict(null), NAME_ALLOW); // no confirmed name: the default, not the root rule
    const noRoot = new NameRules([{ suffix: "mil", action: "allow" }], "deny");
    assert.equal(noRoot.verdict("example.org"), NAME_DENY);
    assert.equal(noRoot.verdict("not a name.mil"), NAME_DENY); // not a host name: no rule applies
    assert.equal(noRoot.matchIndex("not a name.mil"), -1);
  });

  test("bad rules are DefenceErrors naming the rule", () => {
    assert.throws(
      () => new NameRules([{ suffix: "*.mil", action: "allow" }], "deny"),
      (e: unknown) =>
        e instanceof DefenceError && e.code === "ERR_DEFENCE_OPTION" && /rule 0/.test(e.message),
    );
    assert.throws(() => new NameRules([{ suffix: ".mil", action: "permit" }], "deny"), /rule 0: action/);
    assert.throws(() => new NameRules([], "maybe"), /default action/);
  });

  const label = fc.constantFrom("a", "b", "mil", "army", "ab", "x-1");
  const labels = fc.array(label, { minLength: 1, maxLength: 5 });

  test("property: a suffix matches exactly when its labels are the name's last labels", () => {
    fc.assert(
      fc.property(labels, labels, (n, s) => {
        const expected = s.length <= n.length && s.every((l, i) => l === n[n.length - s.length + i]);
        const r = new NameRules([{ suffix: s.join("."), action: "allow" }], "deny");
        return (r.verdict(n.join(".")) === NAME_ALLOW) === expected;
      }),
      { numRuns: 2000 },
    );
  });

  test("property: case and trailing or leading dots never change a verdict", () => {
    fc.assert(
      fc.property(labels, labels, fc.boolean(), fc.boolean(), (n, s, dot, lead) => {
        const base = new NameRules([{ suffix: s.join("."), action: "allow" }], "deny").verdict(n.join("."));
        const suffix = `${lead ? "." : ""}${s.join(".").toUpperCase()}${dot ? "." : ""}`;
        const name = `${n.join(".").toUpperCase()}${dot ? "" : "."}`;
        return new NameRules([{ suffix, action: "allow" }], "deny").verdict(name) === base;
      }),
      { numRuns: 1000 },
    );
  });
});
