// docs/configuration.md's key tables are written from SCHEMA by scripts/gen-config-docs.ts; this holds the
// committed file to what the script would write now.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { CONFIG_DOC, keyTable, renderConfigDoc } from "../../scripts/gen-config-docs.ts";
import { SCHEMA } from "../../src/config/index.ts";

test("docs/configuration.md's key tables are current (else: npm run docs:config)", () => {
  const md = readFileSync(CONFIG_DOC, "utf8");
  const fresh = renderConfigDoc(md);
  if (fresh !== md) {
    const a = md.split("\n");
    const b = fresh.split("\n");
    const line = a.findIndex((l, i) => l !== b[i]);
    assert.fail(
      `docs/configuration.md is out of date at line ${line + 1}: run \`npm run docs:config\` ` +
        `(node scripts/gen-config-docs.ts) and commit the result\n  file: ${a[line]}\n  now:  ${b[line]}`,
    );
  }
});

test("the generator keeps the prose and refuses a doc that lacks a section's markers", () => {
  const md = "# T\n\nprose\n\n<!-- keys:log -->\nold table\n<!-- /keys -->\n\nmore prose\n";
  const only = { log: SCHEMA.log };
  assert.equal(
    renderConfigDoc(md, only),
    `# T\n\nprose\n\n<!-- keys:log -->\n${keyTable(SCHEMA.log)}\n<!-- /keys -->\n\nmore prose\n`,
  );
  assert.throws(() => renderConfigDoc(md, { log: SCHEMA.log, kod: SCHEMA.kod }), /markers for kod/);
  assert.throws(() => renderConfigDoc(md.replace("keys:log", "keys:nope"), only), /no such section/);
  assert.match(keyTable(SCHEMA.log), /^\| `level` \| string \| `"info"` \| .* \| reload \| Least severe/m);
});
