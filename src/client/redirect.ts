// The redirection extension field a server may put in its reply (paper §8; src/protocol/redirect.ts): read
// into the address and port the client should use from now on. The client asks for it only with
// followRedirects (its request then carries the placeholder), and honours it only in the reply to its own
// request from the server it asked (match.ts): a forged packet cannot move it.

import { formatAddressKey } from "../defence/address-key.ts";
import { readRedirectField } from "../protocol/redirect.ts";

/** The server a reply redirects to, or undefined. */
export function redirectOf(reply: Uint8Array): { address: string; port: number } | undefined {
  const r = readRedirectField(reply);
  if (r === undefined) return undefined;
  const b = r.address16;
  const words = [0, 1, 2, 3].map(
    (w) => ((b[4 * w]! << 24) | (b[4 * w + 1]! << 16) | (b[4 * w + 2]! << 8) | b[4 * w + 3]!) >>> 0,
  );
  const address = formatAddressKey(words);
  // The family byte must agree with the address: an IPv4-mapped address is named as family 4.
  if ((r.family === 4) !== !address.includes(":")) return undefined;
  return { address, port: r.port };
}
