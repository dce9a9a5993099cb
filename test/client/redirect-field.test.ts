// The redirection extension field (paper §8; src/protocol/redirect.ts) on the client's side, in virtual
// time (test/client/sim.ts): with follow-redirects the request carries the room for it and a genuine reply
// that names another server moves the client there; without, or in anything but the reply to its request
// from the server it asked, the field changes nothing.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ClientOptions } from "../../src/client/options.ts";
import { seededRandom } from "../../src/client/random.ts";
import { redirectOf } from "../../src/client/redirect.ts";
import type { Refusal } from "../../src/client/state-file.ts";
import { parseAddressKey } from "../../src/defence/address-key.ts";
import {
  hasRedirectRoom,
  REDIRECT_PACKET_LENGTH,
  redirectTarget,
  writeRedirectField,
} from "../../src/protocol/redirect.ts";
import { answer, literal, type Network, Sim, type SimClient } from "./sim.ts";

const A = "192.0.2.1";
const B = "192.0.2.2";
const C = "2001:db8::3";
const HOUR = 3600;

function target(address: string, port: number): Uint8Array {
  const key = new Uint32Array(4);
  assert.ok(parseAddressKey(address, key));
  const bytes = new Uint8Array(16);
  for (let w = 0; w < 4; w++) new DataView(bytes.buffer).setUint32(4 * w, key[w]!);
  return redirectTarget(address.includes(":") ? 6 : 4, port, bytes);
}

/** The reply with the field naming `to` written over the request's placeholder (as the server does). */
function withField(reply: Uint8Array, to: Uint8Array): Uint8Array {
  const out = new Uint8Array(REDIRECT_PACKET_LENGTH);
  out.set(reply.subarray(0, 48));
  writeRedirectField(out, to);
  return out;
}

function oneClient(
  network: Network,
  options: Partial<ClientOptions> = {},
  refusals: Refusal[] = [],
): { sim: Sim; c: SimClient } {
  const sim = new Sim();
  const c = sim.client([{ host: A, port: 123 }], options, seededRandom(7), literal, network, refusals);
  c.start();
  return { sim, c };
}

/** A answers and names B:1123 in the field, where the request has room for it; B answers plainly. */
const aRedirectsToB: Network = (send, _at, wall) => {
  const a = answer(send, wall);
  if (send.address !== A || !hasRedirectRoom(send.packet, send.packet.length)) return [a];
  return [{ ...a, data: withField(a.data, target(B, 1123)) }];
};

describe("the redirection field, client side", () => {
  it("reads the server a reply names, IPv4 and IPv6; refuses a family that disagrees with the address", () => {
    const reply = new Uint8Array(48);
    assert.deepEqual(redirectOf(withField(reply, target(B, 1123))), { address: B, port: 1123 });
    assert.deepEqual(redirectOf(withField(reply, target(C, 123))), { address: C, port: 123 });
    const wrong = target(B, 123);
    wrong[0] = 6;
    assert.equal(redirectOf(withField(reply, wrong)), undefined);
    assert.equal(redirectOf(reply), undefined, "no field");
  });

  it("with follow-redirects: the request has room for it, and a genuine reply naming B moves the client there", () => {
    const { sim, c } = oneClient(aRedirectsToB, { followRedirects: true });
    sim.run(HOUR);
    assert.equal(c.sends[0]!.packet.length, REDIRECT_PACKET_LENGTH);
    assert.ok(hasRedirectRoom(c.sends[0]!.packet, c.sends[0]!.packet.length));
    const r = c.eventsOf("redirect");
    assert.equal(r.length, 1);
    assert.deepEqual([r[0]!.from, r[0]!.to, r[0]!.port], [A, B, 1123]);
    assert.equal(c.sends[0]!.address, A);
    assert.ok(c.sends.slice(1).every((s) => s.address === B && s.port === 1123));
    assert.ok(c.eventsOf("sample").length >= 5, "the redirecting reply is a sample too, and B's follow");
  });

  it("without follow-redirects: requests are the header alone and a field in a reply is ignored", () => {
    // A names B even without room (a server that breaks the rule): the client still stays.
    const pushy: Network = (send, _at, wall) => {
      const a = answer(send, wall);
      return [{ ...a, data: withField(a.data, target(B, 1123)) }];
    };
    const { sim, c } = oneClient(pushy);
    sim.run(HOUR);
    assert.ok(c.sends.every((s) => s.packet.length === 48 && s.address === A));
    assert.equal(c.eventsOf("redirect").length, 0);
    assert.ok(c.eventsOf("sample").length >= 5);
  });

  it("a forged packet with the field and a wrong origin moves nothing, even from the server's address", () => {
    const forged: Network = (send, _at, wall) => {
      const genuine = answer(send, wall);
      const fake = answer(send, wall, { origin: { seconds: 1, fraction: 2 } }, 0.005);
      return [{ ...fake, data: withField(fake.data, target(C, 123)) }, genuine];
    };
    const { sim, c } = oneClient(forged, { followRedirects: true });
    sim.run(HOUR);
    assert.equal(c.eventsOf("redirect").length, 0);
    assert.ok(c.eventsOf("ignored").length >= 5);
    assert.ok(c.eventsOf("ignored").every((e) => e.reason === "origin-mismatch"));
    assert.ok(c.sends.every((s) => s.address === A));
  });

  it("a redirection to a server that refused us before is not followed", () => {
    const wall0 = new Sim().wall0Ms;
    const refusals: Refusal[] = [
      { address: B, port: 1123, host: B, code: "DENY", sinceMs: wall0, untilMs: wall0 + 86400_000 },
    ];
    const { sim, c } = oneClient(aRedirectsToB, { followRedirects: true }, refusals);
    sim.run(HOUR);
    assert.equal(c.eventsOf("redirect").length, 0);
    assert.ok(c.sends.every((s) => s.address === A));
  });
});
