import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { type KePeer, keRedirectPeer } from "../../src/core/nts-ke-redirect.ts";
import { addressKey } from "../../src/defence/address-key.ts";

const peers: KePeer[] = [
  { host: "192.0.2.1", port: 123, v4: true },
  { host: "192.0.2.2", port: 123, v4: true },
  { host: "2001:db8::3", port: 123, v4: false },
  { host: "192.0.2.4", port: 1123, v4: true },
];
const v4 = addressKey("198.51.100.7")!;
const v6 = addressKey("2001:db8:1::7")!;

describe("NTS-KE's choice of server under overload (paper §8)", () => {
  test("none unless shedding is on, the server is past its redline and a peer is known", () => {
    assert.equal(keRedirectPeer(false, true, peers, v4), undefined);
    assert.equal(keRedirectPeer(true, false, peers, v4), undefined);
    assert.equal(keRedirectPeer(true, true, [], v4), undefined);
    assert.ok(keRedirectPeer(true, true, peers, v4));
  });

  test("a peer of the client's own address family, or none", () => {
    assert.equal(keRedirectPeer(true, true, peers, v6)?.host, "2001:db8::3");
    assert.equal(keRedirectPeer(true, true, peers.slice(0, 2), v6), undefined);
    for (let i = 1; i < 200; i++) {
      assert.equal(keRedirectPeer(true, true, peers, addressKey(`203.0.113.${i}`)!)?.v4, true);
    }
  });

  test("the same client always meets the same peer; many clients spread over all of them", () => {
    fc.assert(
      fc.property(fc.ipV4(), (a) => {
        const key = addressKey(a)!;
        assert.equal(keRedirectPeer(true, true, peers, key), keRedirectPeer(true, true, peers, key));
      }),
    );
    const seen = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      const p = keRedirectPeer(true, true, peers, addressKey(`10.${i >> 8}.${i & 255}.1`)!)!;
      seen.set(p.host, (seen.get(p.host) ?? 0) + 1);
    }
    assert.deepEqual([...seen.keys()].sort(), ["192.0.2.1", "192.0.2.2", "192.0.2.4"]);
    for (const n of seen.values()) assert.ok(n > 700, `${[...seen.values()]}`);
  });
});
