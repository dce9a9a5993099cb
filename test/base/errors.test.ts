import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { describe, test } from "node:test";
import { CodedError } from "../../src/base/errors.ts";
import { ConfigError } from "../../src/config/errors.ts";
import { DefenceError } from "../../src/defence/errors.ts";
import { NtpDecodeError } from "../../src/protocol/errors.ts";
import { BlocklistStoreError } from "../../src/server/blocklist/errors.ts";
import { QueryError } from "../../src/server/http/clients-query.ts";

const SRC = resolve(import.meta.dirname, "..", "..", "src");

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

describe("CodedError, the base of every error with a stable code", () => {
  test("code, message, cause and the subclass's own name", () => {
    class ExampleError extends CodedError<"ERR_EXAMPLE"> {}
    const cause = new Error("underneath");
    const e = new ExampleError("ERR_EXAMPLE", "it broke", { cause });
    assert.ok(e instanceof Error);
    assert.ok(e instanceof CodedError);
    assert.equal(e.code, "ERR_EXAMPLE");
    assert.equal(e.message, "it broke");
    assert.equal(e.cause, cause);
    assert.equal(e.name, "ExampleError");
    assert.match(String(e.stack), /^ExampleError: it broke/);
  });

  test("the project's errors are CodedErrors with their codes and names", () => {
    const cases: [CodedError, string, string][] = [
      [new DefenceError("ERR_DEFENCE_OPTION", "x"), "ERR_DEFENCE_OPTION", "DefenceError"],
      [new NtpDecodeError("ERR_NTP_TOO_SHORT", "x"), "ERR_NTP_TOO_SHORT", "NtpDecodeError"],
      [new QueryError("x"), "ERR_HTTP_QUERY", "QueryError"],
      [
        new BlocklistStoreError("ERR_BLOCKLIST_MISSING", "/x.db", "x"),
        "ERR_BLOCKLIST_MISSING",
        "BlocklistStoreError",
      ],
      [new ConfigError("server.threads", "bad"), "ERR_CONFIG_INVALID", "ConfigError"],
    ];
    for (const [e, code, name] of cases) {
      assert.ok(e instanceof CodedError, name);
      assert.equal(e.code, code);
      assert.equal(e.name, name);
    }
  });

  test("no error class in src/ with a code is written without CodedError", () => {
    const offenders: string[] = [];
    for (const file of sources(SRC)) {
      const text = readFileSync(file, "utf8");
      for (const m of text.matchAll(/class (\w+) extends Error \{([\s\S]*?)\n\}/g)) {
        if (m[1] === "CodedError") continue;
        if (/\breadonly code\b/.test(m[2]!)) offenders.push(`${relative(SRC, file)}: ${m[1]}`);
      }
    }
    assert.deepEqual(offenders, [], "extend CodedError (src/base/errors.ts) instead");
  });
});
