// The load balancer in front of the simulated servers (paper §5, §12). "It was noted for both USNO and NIST
// that the load balancer distributes arriving packets randomly to the three servers. To be more precise, the
// packets are delivered round-robin fashion; however, at aggregate arrival rates in the thousands of PPS
// [...] the effect is the same. A problem with random distribution is that the probability that all or even
// most of the packets land on the same server is small, so that the KoD and call-gap schemes become less
// effective. A remedy for the load balancer would be to hash arriving packet source IP addresses and select
// the server using a mask on the result."
//
// Three kinds, as the paper names them: round-robin (one counter over all packets), random (a seeded
// stream), and source-hash (a hash of the source address, so one client always meets the same server).
// With a power-of-two number of servers source-hash is exactly the paper's "mask on the result"; for other
// counts the hash is reduced by multiply-and-shift, which spreads as evenly as a mask and works for three.

import { mix32, type Random } from "./random.ts";

export type BalancerKind = "round-robin" | "random" | "source-hash";

export const BALANCER_KINDS: readonly BalancerKind[] = Object.freeze([
  "round-robin",
  "random",
  "source-hash",
]);

export class Balancer {
  readonly kind: BalancerKind;
  readonly servers: number;
  private counter = 0;
  private readonly rnd: Random;
  private readonly hashSeed: number;
  private readonly mask: number;

  constructor(kind: BalancerKind, servers: number, rnd: Random) {
    if (!BALANCER_KINDS.includes(kind)) {
      throw new RangeError(
        `balancer must be one of ${BALANCER_KINDS.join(", ")}, got ${JSON.stringify(kind)}`,
      );
    }
    if (!Number.isInteger(servers) || servers < 1 || servers > 1024) {
      throw new RangeError(`servers must be an integer from 1 to 1024, got ${servers}`);
    }
    this.kind = kind;
    this.servers = servers;
    this.rnd = rnd;
    this.hashSeed = rnd.next32();
    this.mask = (servers & (servers - 1)) === 0 ? servers - 1 : -1;
  }

  /** The server (0 .. servers-1) that gets a packet from this source (an address key, 4 words). */
  pick(key: Uint32Array): number {
    const n = this.servers;
    if (n === 1) return 0;
    switch (this.kind) {
      case "round-robin": {
        const s = this.counter;
        this.counter = s + 1 === n ? 0 : s + 1;
        return s;
      }
      case "random":
        return ((this.rnd.next32() * n) / 4294967296) >>> 0;
      default: {
        const h = mix32(mix32(key[3]! ^ this.hashSeed) ^ key[2]! ^ mix32(key[1]! ^ key[0]!));
        return this.mask >= 0 ? h & this.mask : ((h * n) / 4294967296) >>> 0;
      }
    }
  }
}
