import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  ControlError,
  createNonceSecret,
  NONCE_EPOCH_S,
  NONCE_LIFETIME_S,
  NONCE_TEXT_LENGTH,
  NonceKeeper,
} from "../../src/control/nonce.ts";
import { key } from "./client.ts";

const T0 = Date.UTC(2026, 5, 1, 12, 0, 0);
const A = key("127.0.0.1");
const B = key("127.0.0.2");

describe("NonceKeeper", () => {
  test("a nonce is 24 hex digits starting with 'a', which ntpq can never read as a number", () => {
    const k = new NonceKeeper(createNonceSecret());
    for (let i = 0; i < 200; i++) {
      const n = k.issue(key(`10.0.${i}.1`), T0 + i * 1000);
      assert.equal(n.length, NONCE_TEXT_LENGTH);
      assert.match(n, /^a[0-9a-f]{23}$/);
    }
  });

  test("valid for its address for NONCE_LIFETIME_S seconds, then not", () => {
    const k = new NonceKeeper(createNonceSecret());
    const n = k.issue(A, T0);
    assert.equal(k.check(n, A, T0), true);
    assert.equal(k.check(n, A, T0 + NONCE_LIFETIME_S * 1000), true);
    assert.equal(k.check(n, A, T0 + (NONCE_LIFETIME_S + 1) * 1000), false);
    assert.equal(k.check(n, A, T0 - 10_000), false, "from the future");
    assert.equal(k.check(n, B, T0), false, "another address");
  });

  test("bound to the secret: another server start's keeper refuses it; the same secret in another thread accepts it", () => {
    const secret = createNonceSecret();
    const n = new NonceKeeper(secret).issue(A, T0);
    assert.equal(new NonceKeeper(secret).check(n, A, T0 + 1000), true);
    assert.equal(new NonceKeeper(createNonceSecret()).check(n, A, T0 + 1000), false);
  });

  test("valid across the hourly key change", () => {
    const k = new NonceKeeper(createNonceSecret());
    const edge = Math.ceil(T0 / 1000 / NONCE_EPOCH_S) * NONCE_EPOCH_S * 1000;
    const n = k.issue(A, edge - 1000);
    assert.equal(k.check(n, A, edge + 10_000), true);
    // Another hour's nonce was made with another key: moving its time field breaks the tag.
    const moved = `a${(Number.parseInt(n.slice(1, 8), 16) + NONCE_EPOCH_S).toString(16).padStart(7, "0")}${n.slice(8)}`;
    assert.equal(k.check(moved, A, edge + NONCE_EPOCH_S * 1000), false);
  });

  test("property: any change to a nonce's text makes it invalid", () => {
    const k = new NonceKeeper(createNonceSecret());
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: NONCE_TEXT_LENGTH - 1 }),
        fc.constantFrom(..."0123456789abcdefg-A"),
        fc.integer({ min: 0, max: 10 ** 9 }),
        (at, c, t) => {
          const now = T0 + t;
          const n = k.issue(A, now);
          const bad = n.slice(0, at) + c + n.slice(at + 1);
          fc.pre(bad !== n);
          assert.equal(k.check(bad, A, now), false);
        },
      ),
    );
    assert.equal(k.check("", A, T0), false);
    assert.equal(k.check(`${k.issue(A, T0)}0`, A, T0), false);
  });

  test("a short secret is refused with a stable code", () => {
    assert.throws(
      () => new NonceKeeper(new Uint8Array(8)),
      (e) => e instanceof ControlError && e.code === "ERR_CONTROL_OPTION",
    );
  });
});
