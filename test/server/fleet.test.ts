// The fleet's forwarding header and peer choice (src/server/fleet.ts, paper §8), without sockets.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { addressKey, formatAddressKey } from "../../src/defence/address-key.ts";
import { readRedirectField } from "../../src/protocol/redirect.ts";
import { Fleet, FORWARD_HEADER_LENGTH } from "../../src/server/fleet.ts";

const settings = { forwardShare: 0.5, forwardWithheld: true, redirectShare: 0.25 };

describe("Fleet", () => {
  it("wraps a request with the client's address and port, and unwraps it whole", () => {
    const f = new Fleet({ peers: ["192.0.2.10:123"], ...settings });
    for (const [client, family] of [
      ["198.51.100.7", 4],
      ["2001:db8::7", 6],
    ] as const) {
      const request = Uint8Array.from({ length: 48 }, (_, i) => i);
      const w = f.wrap(request, 48, addressKey(client)!, 40123, family);
      assert.equal(w.length, FORWARD_HEADER_LENGTH + 48);
      assert.ok(Fleet.isForwarded(w, w.length));
      const key = new Uint32Array(4);
      assert.equal(f.unwrap(w, key), 40123);
      assert.equal(formatAddressKey(key), client);
      assert.deepEqual([...w.subarray(FORWARD_HEADER_LENGTH)], [...request]);
    }
  });

  it("no NTP request reads as a forwarding header, and a bad header names no client", () => {
    const ntp = new Uint8Array(72);
    ntp[0] = (4 << 3) | 3;
    assert.equal(Fleet.isForwarded(ntp, 72), false);
    const f = new Fleet({ peers: [], ...settings });
    const w = f.wrap(new Uint8Array(48), 48, addressKey("192.0.2.1")!, 123, 4);
    assert.equal(Fleet.isForwarded(w, 48 + 23), false, "too short for a request behind the header");
    w[4] = 5;
    assert.equal(f.unwrap(w, new Uint32Array(4)), 0, "family 5");
  });

  it("takes forwarded requests only from its peers, however the socket spells IPv4", () => {
    const f = new Fleet({ peers: ["192.0.2.10:123", "[2001:db8::10]:123"], ...settings });
    assert.ok(f.acceptsFrom("192.0.2.10"));
    assert.ok(f.acceptsFrom("::ffff:192.0.2.10"));
    assert.ok(f.acceptsFrom("2001:db8::10"));
    assert.equal(f.acceptsFrom("192.0.2.11"), false);
  });

  it("sends a client to a peer of its own family, the same one every time", () => {
    const f = new Fleet({ peers: ["192.0.2.10:123", "192.0.2.11:1123", "[2001:db8::10]:123"], ...settings });
    const seen = new Set<string>();
    for (let i = 1; i <= 50; i++) {
      const key = addressKey(`198.51.100.${i}`)!;
      const p = f.peerFor(key, true)!;
      assert.equal(p.family, 4);
      assert.equal(f.peerFor(key, true), p, "the same client, the same peer");
      seen.add(p.host);
    }
    assert.deepEqual([...seen].sort(), ["192.0.2.10", "192.0.2.11"], "spread over the peers of the family");
    assert.equal(f.peerFor(addressKey("2001:db8::99")!, false)?.host, "2001:db8::10");
    assert.equal(
      new Fleet({ peers: ["192.0.2.10:123"], ...settings }).peerFor(addressKey("2001:db8::1")!, false),
      undefined,
    );
  });

  it("names each peer in the redirection field's body; without peers it sheds nothing", () => {
    const f = new Fleet({ peers: ["192.0.2.11:1123"], ...settings });
    const reply = new Uint8Array(76);
    reply.set([0xf5, 0xa8, 0, 28], 48);
    reply.set(f.peers[0]!.target, 52);
    const r = readRedirectField(reply)!;
    assert.equal(r.port, 1123);
    assert.deepEqual([...r.address16.subarray(12)], [192, 0, 2, 11]);
    const none = new Fleet({ peers: [], ...settings });
    assert.deepEqual(
      [none.active, none.forwardShare, none.forwardWithheld, none.redirectShare],
      [false, 0, false, 0],
    );
  });
});
