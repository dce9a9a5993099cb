// Addresses as the client writes and compares them. Pure.
//
// A dual-stack socket reports an IPv4 peer as an IPv4-mapped IPv6 address (::ffff:192.0.2.1): the client
// unmaps every address it is given or sees, so that a refusal, a reply's source and the address asked
// compare equal however the socket spelt them.

/** One address a name resolved to. */
export interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
}

/** "host:port", with IPv6 literals in brackets. */
export function formatServer(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The address as the wire has it: an IPv4-mapped IPv6 address (dual-stack sockets) is its IPv4 address. */
export function unmapAddress(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m ? m[1]! : address;
}

/** The family of an unmapped address. */
export function familyOf(address: string): 4 | 6 {
  return address.includes(":") ? 6 : 4;
}
