// The one check of a hand-made blocklist entry (src/defence/blocklist-input.ts), shared by the CLI and the
// HTTP API: what it refuses, what it warns about, what it keeps.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BlocklistError } from "../../src/defence/blocklist.ts";
import { checkManualEntry, checkReason, REASON_MAX } from "../../src/defence/blocklist-input.ts";
import { ownAddresses } from "../../src/server/blocklist/index.ts";

describe("checkManualEntry", () => {
  it("refuses addresses no client sends from, and zones", () => {
    for (const [a, why] of [
      ["0.0.0.0", /unspecified/],
      ["::ffff:0.0.0.0", /unspecified/],
      ["::", /unspecified/],
      ["255.255.255.255", /broadcast/],
      ["239.1.2.3", /multicast/],
      ["ff05::1:3", /multicast/],
      ["fe80::1%eth0", /zone .*not kept/],
      ["[fe80::1%25eth0]", /zone/],
    ] as const) {
      assert.throws(
        () => checkManualEntry(a, "r"),
        (e: unknown) => e instanceof BlocklistError && why.test(e.message),
        a,
      );
    }
  });

  it("keeps the IPv4-mapped form as the IPv4 client, with a warning for loopback", () => {
    const e = checkManualEntry("::ffff:127.0.0.1", "r");
    assert.equal(e.address, "127.0.0.1");
    assert.equal(e.warnings.length, 1);
    assert.match(e.warnings[0]!, /loopback.*given as ::ffff:127\.0\.0\.1, kept as 127\.0\.0\.1/);
    assert.match(checkManualEntry("::1", "r").warnings[0]!, /::1 is a loopback address/);
    assert.match(checkManualEntry("127.9.9.9", "r").warnings[0]!, /loopback/);
    assert.deepEqual(checkManualEntry("192.0.2.1", "r").warnings, []);
    assert.deepEqual(checkManualEntry("fe80::1", "r").address, "fe80::1");
  });

  it("warns before blocking one of the server's own addresses", () => {
    const e = checkManualEntry("192.0.2.7", "r", ["192.0.2.7", "2001:db8::1"]);
    assert.match(e.warnings[0]!, /192\.0\.2\.7 is an address of this server/);
    assert.match(checkManualEntry("2001:DB8::1", "r", ["2001:db8::1"]).warnings[0]!, /of this server/);
    assert.deepEqual(checkManualEntry("192.0.2.8", "r", ["192.0.2.7", "ntp.example"]).warnings, []);
    assert.deepEqual(ownAddresses(["192.0.2.7:123".split(":")[0]!, "ntp.example", "2001:DB8::1"]), [
      "192.0.2.7",
      "2001:db8::1",
    ]);
    assert.ok(ownAddresses(["0.0.0.0"]).includes("127.0.0.1"), "a wildcard stands for every interface");
  });

  it("takes a reason of at most 200 characters without control characters", () => {
    assert.equal(checkReason("x".repeat(REASON_MAX)), "x".repeat(REASON_MAX));
    assert.throws(() => checkReason("x".repeat(REASON_MAX + 1)), /201 characters, at most 200/);
    assert.throws(() => checkReason("ab\u0000c"), /U\+0000 at position 3/);
    assert.throws(() => checkReason("tab\there"), /U\+0009 at position 4/);
    assert.throws(() => checkReason("c1\u0085"), /U\+0085 at position 3/);
    assert.equal(checkManualEntry("192.0.2.1", "café router").reason, "café router");
  });
});
