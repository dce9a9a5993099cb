// Where the client's randomness comes from. Every random choice it makes (the start delay, the jitter of
// each interval, the address picked among a name's addresses, the random low bits of the transmit
// timestamp that a reply must echo) draws from one `Random`: a function returning a uniform number in
// [0, 1). The pure core takes it as an argument, so that tests and the simulator replay a run exactly.
//
// In production it must be unpredictable to an off-path attacker: the transmit timestamp's random bits are
// what a forged reply or kiss-o'-death has to guess (RFC 5905 §8, RFC 8633 §3.2), so the default draws from
// the operating system's CSPRNG. `seededRandom` is for tests and simulations only.

import { getRandomValues } from "node:crypto";

/** A uniform number in [0, 1). */
export type Random = () => number;

const POOL = 256;

/**
 * The default source: node:crypto (the kernel's CSPRNG), 53 bits per number, fetched 128 numbers at a
 * time so that a busy simulation does not make a system call per draw.
 */
export function cryptoRandom(): Random {
  const words = new Uint32Array(POOL);
  let next = POOL;
  return () => {
    if (next >= POOL) {
      getRandomValues(words);
      next = 0;
    }
    const hi = words[next]! >>> 5; // 27 bits
    const lo = words[next + 1]! >>> 6; // 26 bits
    next += 2;
    return (hi * 67108864 + lo) / 9007199254740992; // (hi * 2^26 + lo) / 2^53
  };
}

/**
 * A small deterministic generator (a 32-bit counter through an integer mixer, two outputs per number) for
 * tests and simulations. Not for production: anyone who learns the seed can forge replies.
 */
export function seededRandom(seed: number): Random {
  let s = seed | 0;
  const next32 = (): number => {
    s = (s + 0x9e3779b9) | 0;
    let z = Math.imul(s ^ (s >>> 16), 0x21f0aaad);
    z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
    return (z ^ (z >>> 15)) >>> 0;
  };
  return () => ((next32() >>> 5) * 67108864 + (next32() >>> 6)) / 9007199254740992;
}

/** A uniform unsigned 32-bit integer from `random`. */
export function randomU32(random: Random): number {
  return Math.floor(random() * 4294967296) >>> 0;
}
