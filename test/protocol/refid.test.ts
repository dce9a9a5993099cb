import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { refIdText } from "../../src/protocol/index.ts";

describe("refIdText: one display of a refid, by its stratum (RFC 5905 §7.3)", () => {
  it("at stratum 0, 1 and 16: ASCII up to the first NUL", () => {
    assert.equal(refIdText(0x4c4f434c, 1), "LOCL");
    assert.equal(refIdText(0x47505300, 1), "GPS");
    assert.equal(refIdText(0x52415445, 0), "RATE");
    assert.equal(refIdText(0x494e4954, 16), "INIT");
    assert.equal(refIdText(0, 16), "");
    assert.equal(refIdText(0x47005300, 1), "G", "text ends at the first NUL");
  });

  it("at stratum 0, 1 and 16, what is not plain printable ASCII is shown in hex", () => {
    assert.equal(refIdText(0x4c4f437f, 1), "0x4c4f437f", "DEL");
    assert.equal(refIdText(0x41204200, 1), "0x41204200", "a space");
    assert.equal(refIdText(-1, 0), "0xffffffff", "read as unsigned");
  });

  it("at stratum 2-15: a dotted quad, even when the octets spell a word (an upstream 76.79.67.76 is not LOCL)", () => {
    assert.equal(refIdText(0x4c4f434c, 2), "76.79.67.76");
    assert.equal(refIdText(0x4c4f434c, 10), "76.79.67.76");
    assert.equal(refIdText(0xc0000201, 15), "192.0.2.1");
    assert.equal(refIdText(0, 3), "0.0.0.0");
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 2, max: 15 }), (n, stratum) => {
        const parts = refIdText(n, stratum).split(".").map(Number);
        assert.equal(((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0, n);
      }),
    );
  });
});
