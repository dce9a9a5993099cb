// "The server address was hard coded in the firmware and could not be changed" (paper §3). The client has
// no server of its own: none in its code, none as a default; without one it refuses to start.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ClientCore } from "../../src/client/core.ts";
import { ClientError } from "../../src/client/errors.ts";
import { seededRandom } from "../../src/client/random.ts";
import { REPO_ROOT } from "../helpers/peers.ts";

/** The code of a TypeScript file without its comments (line and block), strings kept. */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`])\/\/.*$/gm, "$1");
}

const files = [
  ...readdirSync(join(REPO_ROOT, "src/client"))
    .filter((f) => f.endsWith(".ts"))
    .map((f) => join(REPO_ROOT, "src/client", f)),
  join(REPO_ROOT, "src/cli/query.ts"),
  join(REPO_ROOT, "src/cli/sync.ts"),
  join(REPO_ROOT, "src/cli/sync-broadcast.ts"),
  join(REPO_ROOT, "src/cli/sync-manycast.ts"),
];

describe("no server address is built in", () => {
  it("the client's and the commands' code holds no IP address and no NTP server name", () => {
    assert.ok(files.length >= 10);
    for (const f of files) {
      const c = code(readFileSync(f, "utf8"));
      const v4 = c.match(/\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b/g) ?? [];
      assert.deepEqual(v4, [], `${f}: IPv4 literal`);
      // IPv6 literals in strings (a regex source such as ::ffff: is a pattern, not an address).
      const v6 = c.match(/["'`][0-9a-fA-F]{0,4}:[0-9a-fA-F:]*:[0-9a-fA-F]{1,4}["'`]/g) ?? [];
      assert.deepEqual(v6, [], `${f}: IPv6 literal`);
      assert.doesNotMatch(
        c,
        /ntp\.org|\btime\.[a-z]+\.(gov|com|org)|pool\.ntp|time\.google|time\.windows/i,
        f,
      );
    }
  });

  it("the detector itself finds an address in code and ignores one in a comment", () => {
    assert.deepEqual(code('const s = "192.0.2.1"; // 10.0.0.1').match(/\d+\.\d+\.\d+\.\d+/g), ["192.0.2.1"]);
  });

  it("without a server the client refuses to start", () => {
    assert.throws(
      () => new ClientCore([], {}, { random: seededRandom(1) }),
      (e: unknown) => e instanceof ClientError && e.code === "ERR_CLIENT_INVALID_SERVER",
    );
  });
});
