// The redirection extension field (paper §8; src/protocol/redirect.ts): a valid RFC 7822 field in a
// request (the placeholder) and in a reply, found only where it is, never growing a reply past its request.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkPacket, decodePacket, encodePacket, makeExtensionField } from "../../src/protocol/index.ts";
import {
  hasRedirectRoom,
  REDIRECT_FIELD_LENGTH,
  REDIRECT_FIELD_TYPE,
  REDIRECT_PACKET_LENGTH,
  readRedirectField,
  redirectTarget,
  writeRedirectField,
  writeRedirectPlaceholder,
} from "../../src/protocol/redirect.ts";

function request(withRoom: boolean): Uint8Array {
  const b = new Uint8Array(withRoom ? REDIRECT_PACKET_LENGTH : 48);
  b[0] = (4 << 3) | 3;
  if (withRoom) writeRedirectPlaceholder(b);
  return b;
}

const v4 = Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 7]);

describe("the redirection extension field", () => {
  it("is an experimental RFC 7822 type, 28 octets: the least a last field may be without a MAC", () => {
    assert.ok(REDIRECT_FIELD_TYPE >= 0xf000 && REDIRECT_FIELD_TYPE <= 0xffff);
    assert.equal(REDIRECT_FIELD_LENGTH, 28);
    assert.equal(REDIRECT_PACKET_LENGTH, 76);
  });

  it("the placeholder makes a valid NTPv4 request with one extension field of our type", () => {
    const r = request(true);
    assert.equal(checkPacket(r, r.length), 0);
    const p = decodePacket(r);
    assert.equal(p.extensions.length, 1);
    assert.equal(p.extensions[0]!.type, REDIRECT_FIELD_TYPE);
    assert.equal(p.mac, null);
    assert.equal(readRedirectField(r), undefined, "a placeholder names no server");
  });

  it("room only where the request brought the placeholder first", () => {
    assert.equal(hasRedirectRoom(request(true), REDIRECT_PACKET_LENGTH), true);
    assert.equal(hasRedirectRoom(request(false), 48), false);
    // A MAC alone (key ID + SHA-1: 24 octets) is 72 octets: no room.
    const mac = new Uint8Array(72);
    mac[0] = (4 << 3) | 3;
    assert.equal(hasRedirectRoom(mac, 72), false);
    // Another field first: no room (we never write over someone else's field).
    const other = encodePacket({
      ...decodePacket(request(false)),
      extensions: [makeExtensionField(0x0104, new Uint8Array(24), 28)],
    });
    assert.equal(other.length, 76);
    assert.equal(hasRedirectRoom(other, other.length), false);
    // Truncated.
    assert.equal(hasRedirectRoom(request(true), 60), false);
  });

  it("written over the placeholder it names the server, the reply as long as the request and still valid", () => {
    const r = request(true);
    r[0] = (4 << 3) | 4;
    writeRedirectField(r, redirectTarget(4, 1123, v4));
    assert.equal(checkPacket(r, r.length), 0);
    const got = readRedirectField(r);
    assert.equal(got?.family, 4);
    assert.equal(got?.port, 1123);
    assert.deepEqual([...got!.address16], [...v4]);
    assert.throws(() => redirectTarget(4, 0, v4), /port/);
    assert.throws(() => redirectTarget(4, 123, new Uint8Array(4)), /16-octet/);
  });

  it("found after another field too, and not past a malformed length", () => {
    const first = makeExtensionField(0x0104, new Uint8Array(12), 16);
    const body = redirectTarget(6, 123, new Uint8Array(16).fill(1));
    const p = encodePacket({
      ...decodePacket(request(false)),
      extensions: [first, { type: REDIRECT_FIELD_TYPE, value: Uint8Array.from([...body, 0, 0, 0, 0]) }],
    });
    assert.equal(readRedirectField(p)?.family, 6);
    const bad = Uint8Array.from(p);
    bad[51] = 18; // the first field's length not a multiple of 4
    assert.equal(readRedirectField(bad), undefined);
  });
});
