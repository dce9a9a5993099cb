// Which server NTS-KE names to a client (RFC 8915 §4.1.7, paper §8): this one (or the one [nts] server
// names), or, while overload control withholds requests here, another server of the fleet. The paper asks for
// redirection "not frozen at the time the server name is resolved"; NTS-KE is where a modern client asks
// where to send its NTP, and it asks again whenever its cookies run out or are refused, so a client sent
// elsewhere during a flood comes back by itself once the flood is over.
//
// The peer is chosen by the client's address, so that one client always meets the same peer (paper §12: the
// call-gap works only where a client keeps meeting the server that remembers it), and only among peers of
// the client's own address family. Pure: the shell passes the overload state and the peers.

import { hashKey, isIPv4Key } from "../defence/address-key.ts";

export interface KePeer {
  /** An IP address, as NTS-KE's Server Negotiation record carries it. */
  readonly host: string;
  readonly port: number;
  /** Whether `host` is an IPv4 address. */
  readonly v4: boolean;
}

/** The seed of the peer choice: any fixed value; the same client must land on the same peer each time. */
const SEED = 0x6b65;

/**
 * The fleet peer NTS-KE names to the client at `client` (an address key, src/defence/address-key.ts), or
 * undefined to name this server as configured: when shedding is off, when the server is not past its
 * redline, or when no peer shares the client's address family.
 */
export function keRedirectPeer(
  shed: boolean,
  overloaded: boolean,
  peers: readonly KePeer[],
  client: Uint32Array,
): KePeer | undefined {
  if (!shed || !overloaded || peers.length === 0) return undefined;
  const v4 = isIPv4Key(client);
  let n = 0;
  for (const p of peers) if (p.v4 === v4) n++;
  if (n === 0) return undefined;
  let pick = hashKey(client, SEED) % n;
  for (const p of peers) {
    if (p.v4 !== v4) continue;
    if (pick === 0) return p;
    pick--;
  }
  return undefined;
}
