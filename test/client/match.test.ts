// Reply matching (src/client/match.ts) on its own: which datagram is the reply to a request, by the origin
// timestamp's 64 bits and the address asked (RFC 5905 §8, RFC 8633 §3.2, paper §8). The same rules in a
// running client are tested through it in source.test.ts.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { matchReply } from "../../src/client/match.ts";
import { buildRequest } from "../../src/client/measure.ts";
import { seededRandom } from "../../src/client/random.ts";
import { makeReply } from "./sim.ts";

// Virtual only (RFC 5737): never reaches a socket.
const A = "192.0.2.1";
const B = "192.0.2.2";
const WALL = Date.UTC(2026, 0, 1);

function exchange(seed = 1) {
  const request = buildRequest(WALL, seededRandom(seed), 6);
  return {
    expected: { address: A, port: 123, transmit: request.transmit },
    reply: makeReply(request.packet, WALL + 5),
  };
}

describe("matchReply", () => {
  it("the reply from the address and port asked, echoing our transmit timestamp, is ours", () => {
    const { expected, reply } = exchange();
    assert.deepEqual(matchReply(expected, reply, { address: A, port: 123 }, false), {
      ok: true,
      redirected: false,
    });
  });

  it("an IPv4-mapped source address is the same address", () => {
    const { expected, reply } = exchange();
    assert.deepEqual(matchReply(expected, reply, { address: `::ffff:${A}`, port: 123 }, false), {
      ok: true,
      redirected: false,
    });
  });

  it("a difference in any one of the origin's 64 bits makes it not ours, redirects or not", () => {
    const { expected, reply } = exchange();
    for (let byte = 0; byte < 8; byte++) {
      const forged = reply.slice();
      forged[24 + byte]! ^= 1;
      for (const follow of [false, true]) {
        assert.deepEqual(matchReply(expected, forged, { address: A, port: 123 }, follow), {
          ok: false,
          reason: "origin-mismatch",
        });
      }
    }
    // Another request's reply (other random bits) is not ours either.
    const other = exchange(2);
    assert.equal(matchReply(expected, other.reply, { address: A, port: 123 }, true).ok, false);
  });

  it("our origin from another address or port: ignored, unless following redirects", () => {
    const { expected, reply } = exchange();
    for (const from of [
      { address: B, port: 123 },
      { address: A, port: 124 },
    ]) {
      assert.deepEqual(matchReply(expected, reply, from, false), {
        ok: false,
        reason: "unexpected-address",
      });
      assert.deepEqual(matchReply(expected, reply, from, true), { ok: true, redirected: true });
    }
  });

  it("less than a header is not a reply", () => {
    const { expected, reply } = exchange();
    assert.deepEqual(matchReply(expected, reply.subarray(0, 47), { address: A, port: 123 }, true), {
      ok: false,
      reason: "not-a-reply",
    });
  });
});
