// The defences' random numbers: the draws of the MRU list's admission sampling (§5) and the call-gap's leak
// (§12), and the seeds of the address hashes. The draw is a function the caller supplies, so that a test
// or the simulator can make it reproducible.

/**
 * A cheap uniform PRNG supplied by the caller: returns an integer in [0, 2^30), RNG_RANGE values. Thirty
 * bits keep every result a small integer (Smi) in V8, so calling it allocates nothing.
 */
export type Rng = () => number;

/** Number of values an Rng returns: 2^30. */
export const RNG_RANGE = 2 ** 30;

/**
 * A small, fast PRNG (a 32-bit counter through an integer mixing function) for admission sampling and the
 * call-gap leak. Not cryptographic: it only needs to be unpredictable to a client that cannot see it.
 * The state lives in a typed array so that updating it never boxes a number.
 */
export function createRng(seed?: number): Rng {
  const state = new Int32Array(1);
  state[0] = seed ?? randomU32();
  return () => {
    const s = (state[0]! + 0x9e3779b9) | 0;
    state[0] = s;
    let z = Math.imul(s ^ (s >>> 16), 0x21f0aaad);
    z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
    return (z ^ (z >>> 15)) >>> 2;
  };
}

/** 32 bits from the platform's random source, for seeds (once per structure, never per packet). */
export function randomU32(): number {
  return globalThis.crypto.getRandomValues(new Uint32Array(1))[0]!;
}
