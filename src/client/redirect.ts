// The redirection extension field a server may put in its reply (paper §8; src/protocol/redirect.ts): read
// into the address and port the client should use from now on. The client asks for it only with
// followRedirects (its request then carries the placeholder), and honours it only in the reply to its own
// request from the server it asked (match.ts): a forged packet cannot move it.

import { readRedirectField } from "../protocol/redirect.ts";

/** 16 octets as address text: dotted quad for IPv4-mapped (::ffff:a.b.c.d), RFC 5952 text otherwise. */
function addressText(b: Uint8Array): string {
  const mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  if (mapped) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  // The URL parser writes IPv6 hosts in the RFC 5952 form (zeros compressed, lower case).
  return new URL(`http://[${groups.join(":")}]/`).hostname.slice(1, -1);
}

/** The server a reply redirects to, or undefined. */
export function redirectOf(reply: Uint8Array): { address: string; port: number } | undefined {
  const r = readRedirectField(reply);
  if (r === undefined) return undefined;
  const address = addressText(r.address16);
  // The family byte must agree with the address: an IPv4-mapped address is named as family 4.
  if ((r.family === 4) !== !address.includes(":")) return undefined;
  return { address, port: r.port };
}
