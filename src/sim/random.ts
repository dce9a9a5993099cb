// Seeded random numbers for the simulator: every draw of a run comes from generators made here from the
// run's one seed, so that the same seed gives the same run, packet for packet (issue 6: "seeded and
// deterministic"). Each population, the balancer, the network and each simulated server get their own
// stream (`Random.derive`), so adding a population to a scenario does not shift the draws of the others.
//
// The generator is xoshiro128** (Blackman and Vigna): 128 bits of state in a Uint32Array, 32-bit outputs,
// fast in V8 because every step is int32 arithmetic. Not cryptographic, and it need not be: a simulated
// client's jitter only has to look random to the server's defences.
//
// `hash01(seed, i)` is a stateless counterpart: the same uniform number for the same (seed, i) without
// keeping a generator per client, which is how the settled-mice stream gives millions of virtual clients
// each its own phase with no memory per client.

/** Mixes a 32-bit value (a finaliser with good avalanche; the constants are the well-known "lowbias32"). */
export function mix32(x: number): number {
  let z = x | 0;
  z ^= z >>> 16;
  z = Math.imul(z, 0x7feb352d);
  z ^= z >>> 15;
  z = Math.imul(z, 0x846ca68b);
  z ^= z >>> 16;
  return z >>> 0;
}

/** A uniform number in [0, 1) fixed by (seed, i): the same inputs always give the same number. */
export function hash01(seed: number, i: number): number {
  return mix32(mix32(seed ^ 0x9e3779b9) ^ Math.imul(i | 0, 0x85ebca6b) ^ ((i / 4294967296) | 0)) / 4294967296;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

export class Random {
  private readonly s: Uint32Array;
  /** The seed this generator was made from (for derive). */
  readonly seed: number;

  constructor(seed: number) {
    this.seed = seed >>> 0;
    this.s = new Uint32Array(4);
    // Fill the state from the seed through the mixer so that nearby seeds give unrelated streams and the
    // state is never all zero.
    let x = this.seed;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      this.s[i] = mix32(x) | (i === 0 ? 1 : 0);
    }
  }

  /** An independent stream for a named part of the run (a population, the balancer, a server). */
  derive(label: string | number): Random {
    let h = mix32(this.seed ^ 0x51ed270b);
    const text = String(label);
    for (let i = 0; i < text.length; i++) h = mix32(h ^ text.charCodeAt(i));
    return new Random(h);
  }

  /** A uniform 32-bit unsigned integer. */
  next32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = s[1]! << 9;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  /** A uniform number in [0, 1) with 32 bits of resolution (plenty for jitter and choices). */
  float(): number {
    return this.next32() / 4294967296;
  }

  /** A uniform number in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.float();
  }

  /** A uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** An exponentially distributed number with the given mean. */
  exponential(mean: number): number {
    return -mean * Math.log(1 - this.float());
  }

  /** A normally distributed number (Box-Muller; one of the pair is dropped, which is fine here). */
  normal(mean: number, sd: number): number {
    const u = 1 - this.float();
    const v = this.float();
    return mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Picks an index with probability proportional to its weight. */
  weighted(weights: readonly number[]): number {
    let total = 0;
    for (const w of weights) total += w;
    let x = this.float() * total;
    for (let i = 0; i < weights.length; i++) {
      x -= weights[i]!;
      if (x < 0) return i;
    }
    return weights.length - 1;
  }

  /**
   * The defence modules' Rng (src/defence/random.ts): an integer in [0, 2^30). Bound to this stream, so that
   * MRU admission sampling and the call-gap leak are part of the seeded run.
   */
  rng30(): () => number {
    return () => this.next32() >>> 2;
  }
}
