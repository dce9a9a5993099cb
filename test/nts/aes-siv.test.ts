import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { aeadOpen, aeadSeal, cmac, SivKey, sivDecrypt, sivEncrypt } from "../../src/nts/aes-siv.ts";
import { NtsError } from "../../src/nts/errors.ts";

const hex = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("AES-CMAC (RFC 4493 §4 examples)", () => {
  const key = hex("2b7e1516 28aed2a6 abf71588 09cf4f3c");
  it("empty message (example 1: the padded K2 path)", () => {
    assert.equal(toHex(cmac(key)), "bb1d6929e95937287fa37d129b756746");
  });
  it("one whole block (example 2: the K1 path)", () => {
    assert.equal(
      toHex(cmac(key, hex("6bc1bee2 2e409f96 e93d7e11 7393172a"))),
      "070a16b46b4d4144f79bdd9dd04a287c",
    );
  });
  it("the same message given in several parts gives the same MAC", () => {
    const m = hex(
      "6bc1bee2 2e409f96 e93d7e11 7393172a ae2d8a57 1e03ac9c 9eb76fac 45af8e51 30c81c46 a35ce411",
    );
    assert.equal(toHex(cmac(key, m.subarray(0, 5), m.subarray(5, 33), m.subarray(33))), toHex(cmac(key, m)));
    assert.equal(toHex(cmac(key, m)), "dfa66747de9ae63030ca32611497c827");
  });
});

describe("AES-SIV-CMAC-256 (RFC 5297 Appendix A)", () => {
  it("A.1 deterministic authenticated encryption", () => {
    const key = hex("fffefdfc fbfaf9f8 f7f6f5f4 f3f2f1f0 f0f1f2f3 f4f5f6f7 f8f9fafb fcfdfeff");
    const ad = hex("10111213 14151617 18191a1b 1c1d1e1f 20212223 24252627");
    const plaintext = hex("11223344 55667788 99aabbcc ddee");
    const out = sivEncrypt(key, plaintext, [ad]);
    assert.equal(toHex(out), "85632d07c6e8f37f950acd320a2ecc9340c02b9690c4dc04daef7f6afe5c");
    assert.deepEqual(sivDecrypt(key, out, [ad]), plaintext);
  });

  it("A.2 nonce-based authenticated encryption (two AD components and a nonce)", () => {
    const key = hex("7f7e7d7c 7b7a7978 77767574 73727170 40414243 44454647 48494a4b 4c4d4e4f");
    const ad1 = hex(
      "00112233 44556677 8899aabb ccddeeff deaddada deaddada ffeeddcc bbaa9988 77665544 33221100",
    );
    const ad2 = hex("10203040 50607080 90a0");
    const nonce = hex("09f91102 9d74e35b d84156c5 635688c0");
    const plaintext = hex(
      "74686973 20697320 736f6d65 20706c61 696e7465 78742074 6f20656e 63727970 74207573 696e6720 5349562d 414553",
    );
    const out = sivEncrypt(key, plaintext, [ad1, ad2, nonce]);
    assert.equal(
      toHex(out),
      "7bdb6e3b432667eb06f4d14bff2fbd0fcb900f2fddbe404326601965c889bf17dba77ceb094fa663b7a3f748ba8af829ea64ad544a272e9c485b62a3fd5c0d",
    );
    assert.deepEqual(sivDecrypt(key, out, [ad1, ad2, nonce]), plaintext);
  });

  it("refuses a key that is not 32 octets, with a code", () => {
    assert.throws(
      () => sivEncrypt(new Uint8Array(16), new Uint8Array(0), []),
      (e: unknown) => e instanceof NtsError && e.code === "ERR_NTS_AEAD_ARGUMENT",
    );
  });

  it("a sealed message shorter than the tag opens to null, never throws", () => {
    assert.equal(sivDecrypt(new Uint8Array(32), new Uint8Array(15), []), null);
  });
});

describe("AEAD properties (fast-check)", () => {
  const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });

  it("open(seal(p)) = p for any key, nonce, associated data and plaintext", () => {
    fc.assert(
      fc.property(bytes(32, 32), bytes(1, 32), bytes(0, 80), bytes(0, 200), (key, nonce, ad, p) => {
        const sealed = aeadSeal(key, nonce, ad, p);
        assert.equal(sealed.length, p.length + 16);
        assert.deepEqual(aeadOpen(key, nonce, ad, sealed), p);
      }),
      { numRuns: 200 },
    );
  });

  it("any flipped bit of the ciphertext, associated data or nonce makes open fail", () => {
    fc.assert(
      fc.property(
        bytes(32, 32),
        bytes(1, 24),
        bytes(1, 64),
        bytes(0, 100),
        fc.nat(),
        fc.integer({ min: 0, max: 7 }),
        fc.constantFrom("sealed", "ad", "nonce", "key"),
        (key, nonce, ad, p, at, bit, where) => {
          const sealed = aeadSeal(key, nonce, ad, p);
          // With an empty plaintext the CTR half of the key (octets 16-31) is never used: flip the S2V half.
          const flip = (b: Uint8Array) => {
            const c = new Uint8Array(b);
            const span = where === "key" && p.length === 0 ? 16 : c.length;
            c[at % span]! ^= 1 << bit;
            return c;
          };
          const opened =
            where === "sealed"
              ? aeadOpen(key, nonce, ad, flip(sealed))
              : where === "ad"
                ? aeadOpen(key, nonce, flip(ad), sealed)
                : where === "nonce"
                  ? aeadOpen(key, flip(nonce), ad, sealed)
                  : aeadOpen(flip(key), nonce, ad, sealed);
          assert.equal(opened, null);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("a kept SivKey (its ciphers reused from message to message)", () => {
  it("gives, message after message, what a fresh key gives each one (the chaining carries nothing over)", () => {
    const msg = fc.record({
      nonce: fc.uint8Array({ minLength: 1, maxLength: 32 }),
      ad: fc.uint8Array({ maxLength: 90 }),
      p: fc.uint8Array({ maxLength: 150 }),
      tamper: fc.boolean(),
    });
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.array(msg, { minLength: 1, maxLength: 12 }),
        (key, msgs) => {
          const kept = new SivKey(key);
          for (const m of msgs) {
            const sealed = kept.seal(m.nonce, m.ad, m.p);
            assert.deepEqual(sealed, aeadSeal(key, m.nonce, m.ad, m.p));
            // A failed open in between leaves the kept key as good as new.
            if (m.tamper)
              assert.equal(
                kept.open(
                  m.nonce,
                  m.ad,
                  sealed.map((b, i) => (i === 0 ? b ^ 1 : b)),
                ),
                null,
              );
            assert.deepEqual(kept.open(m.nonce, m.ad, sealed), m.p);
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
