import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { refIdDisplay } from "../../src/protocol/index.ts";

describe("refIdDisplay", () => {
  it("shows printable ASCII as text, NUL-padded at the end", () => {
    assert.equal(refIdDisplay(0x4c4f434c), "LOCL");
    assert.equal(refIdDisplay(0x47505300), "GPS");
  });

  it("shows anything else as a dotted quad", () => {
    assert.equal(refIdDisplay(0xc0000201), "192.0.2.1");
    assert.equal(refIdDisplay(0), "0.0.0.0");
    assert.equal(refIdDisplay(0x47005300), "71.0.83.0", "text after a NUL");
    assert.equal(refIdDisplay(0x4c4f437f), "76.79.67.127", "DEL is not printable");
    assert.equal(refIdDisplay(-1), "255.255.255.255", "read as unsigned");
  });
});
