// Active redirection between the servers of a fleet (paper §8; docs/fleet.md), both ways:
//
// - Forwarding: a server shedding load sends a client's request on to a fleet peer, wrapped in a small
//   header that names the client; the peer answers the client directly, from its own address. The client
//   library takes that reply because it echoes the request's exact origin timestamp (--follow-redirects,
//   src/client/match.ts), the paper's "very fine-grained value" that ties an answer to its question.
//   The peer accepts the wrapping only from the fleet's own addresses ([fleet] peers): from anyone else
//   it is dropped and counted, so the server is never an open relay.
// - In the protocol: a served reply may carry the redirection extension field (src/protocol/redirect.ts)
//   naming a peer, where the request brought the room for it; the client moves to that peer.
//
// The forwarding header (FORWARD_HEADER_LENGTH octets, then the client's request as it came):
//   0xF8 (LI 3, VN 7, mode 0: no NTP packet reads so) | "fwd" | family 4/6 (1) | 0 (1) | client port (2)
//   | client address (16, IPv4 as ::ffff:a.b.c.d)
// A peer that is not ntpshield drops it as a bad version; nothing else in the fleet starts so.
//
// The peer for a client is chosen by a hash of its address: one client always meets the same peer, so
// the peer's call-gap sees all of that client's forwarded requests (§12's reason for source hashing).

import { hashKeyWords, parseAddressKey } from "../defence/address-key.ts";
import { redirectTarget } from "../protocol/redirect.ts";

export const FORWARD_HEADER_LENGTH = 24;
const B0 = 0xf8;
const B1 = 0x66; // f
const B2 = 0x77; // w
const B3 = 0x64; // d

/** The [fleet] section as the server needs it. */
export interface FleetSettings {
  peers: readonly string[];
  forwardShare: number;
  forwardWithheld: boolean;
  redirectShare: number;
}

interface Peer {
  host: string;
  port: number;
  family: 4 | 6;
  /** The redirection field's body naming it. */
  target: Uint8Array;
}

/** "ADDR:PORT" or "[v6]:PORT" as the configuration writes it (validated there). */
function splitHostPort(s: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:]+):(\d+)$/.exec(s);
  if (m === null) throw new RangeError(`fleet peer ${s}: expected ADDR:PORT`);
  return { host: m[1]!, port: Number(m[2]) };
}

function keyBytes(key: Uint32Array, out: Uint8Array, offset: number): void {
  for (let w = 0; w < 4; w++) {
    const v = key[w]!;
    out[offset + 4 * w] = v >>> 24;
    out[offset + 4 * w + 1] = (v >>> 16) & 0xff;
    out[offset + 4 * w + 2] = (v >>> 8) & 0xff;
    out[offset + 4 * w + 3] = v & 0xff;
  }
}

/** The fleet as one worker sees it: its peers, the shares, and the codecs of the forwarding header. */
export class Fleet {
  readonly peers: readonly Peer[];
  readonly forwardShare: number;
  readonly forwardWithheld: boolean;
  readonly redirectShare: number;
  /** Source addresses whose forwarding headers are taken (the peers' addresses, as sockets report them). */
  readonly #accept: Set<string>;
  /** The peers of each family: a client is sent only to a peer it can reach and that can answer it. */
  readonly #v4: readonly Peer[];
  readonly #v6: readonly Peer[];

  constructor(s: FleetSettings) {
    const key = new Uint32Array(4);
    this.peers = s.peers.map((text) => {
      const { host, port } = splitHostPort(text);
      if (!parseAddressKey(host, key)) throw new RangeError(`fleet peer ${text}: not an IP address`);
      const bytes = new Uint8Array(16);
      keyBytes(key, bytes, 0);
      const family: 4 | 6 = host.includes(":") ? 6 : 4;
      return { host, port, family, target: redirectTarget(family, port, bytes) };
    });
    this.#accept = new Set(this.peers.flatMap((p) => [p.host, `::ffff:${p.host}`]));
    this.#v4 = this.peers.filter((p) => p.family === 4);
    this.#v6 = this.peers.filter((p) => p.family === 6);
    this.forwardShare = this.peers.length > 0 ? s.forwardShare : 0;
    this.forwardWithheld = this.peers.length > 0 && s.forwardWithheld;
    this.redirectShare = this.peers.length > 0 ? s.redirectShare : 0;
  }

  get active(): boolean {
    return this.peers.length > 0;
  }

  /**
   * The peer for a client: one of the client's address family (`isV4`), chosen by a hash of its address so
   * that one client always meets the same peer; undefined when the fleet has none of that family.
   */
  peerFor(key: Uint32Array, isV4: boolean): Peer | undefined {
    const peers = isV4 ? this.#v4 : this.#v6;
    if (peers.length === 0) return undefined;
    const h = hashKeyWords(key[0]!, key[1]!, key[2]!, key[3]!, 0x5eed) >>> 0;
    return peers[h % peers.length];
  }

  /** Whether this datagram is a forwarding header (from anyone: acceptsFrom decides whether to take it). */
  static isForwarded(buf: Uint8Array, length: number): boolean {
    return (
      length >= FORWARD_HEADER_LENGTH + 48 && buf[0] === B0 && buf[1] === B1 && buf[2] === B2 && buf[3] === B3
    );
  }

  /** Whether `address` (as the socket reported it) is one of the fleet's. */
  acceptsFrom(address: string): boolean {
    return this.#accept.has(address);
  }

  /** A request from `clientKey`:`clientPort` wrapped for a peer (one new buffer: only for forwarded requests). */
  wrap(
    request: Uint8Array,
    length: number,
    clientKey: Uint32Array,
    clientPort: number,
    family: 4 | 6,
  ): Buffer {
    const out = Buffer.allocUnsafe(FORWARD_HEADER_LENGTH + length);
    out[0] = B0;
    out[1] = B1;
    out[2] = B2;
    out[3] = B3;
    out[4] = family;
    out[5] = 0;
    out[6] = clientPort >>> 8;
    out[7] = clientPort & 0xff;
    keyBytes(clientKey, out, 8);
    out.set(request.subarray(0, length), FORWARD_HEADER_LENGTH);
    return out;
  }

  /**
   * The client a forwarding header names: its key into `key`, its port returned (0 when the header is
   * bad: a family other than 4 or 6, port 0).
   */
  unwrap(buf: Uint8Array, key: Uint32Array): number {
    const family = buf[4];
    const port = (buf[6]! << 8) | buf[7]!;
    if ((family !== 4 && family !== 6) || port === 0) return 0;
    for (let w = 0; w < 4; w++) {
      const o = 8 + 4 * w;
      key[w] = ((buf[o]! << 24) | (buf[o + 1]! << 16) | (buf[o + 2]! << 8) | buf[o + 3]!) >>> 0;
    }
    return port;
  }
}
