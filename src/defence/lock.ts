// The lock of every structure the worker threads share (the MRU list, the name gate's cache, the KoD
// limiter's bucket): one Int32 word in the structure's SharedArrayBuffer, a three-state futex mutex
// (0 free, 1 held, 2 held with sleepers). The critical sections are a hash probe and a few stores, so a
// thread first spins briefly on contention, and only then sleeps on the word with Atomics.wait, so that a
// holder descheduled by the OS does not keep the others spinning. Atomics operations are sequentially
// consistent, so the plain typed-array reads and writes made under the lock are ordered with it
// (ECMAScript memory model: the release store synchronizes-with the next acquire).
//
// Plain functions of (word array, index), not an object or a closure per lock: nothing is allocated, and
// the uncontended path is one compare-exchange that V8 inlines into the caller.

const FREE = 0;
const HELD = 1;
const SLEEPERS = 2;
/** Tries on a contended lock before sleeping on it. */
const SPINS = 64;

/** Takes the lock in word `i` of `words` (spins briefly, then sleeps). Not reentrant. */
export function acquireLock(words: Int32Array, i: number): void {
  if (Atomics.compareExchange(words, i, FREE, HELD) !== FREE) acquireContended(words, i);
}

// Out of line, so that acquireLock stays small enough to inline.
function acquireContended(words: Int32Array, i: number): void {
  for (let n = 0; n < SPINS; n++) {
    if (Atomics.load(words, i) === FREE && Atomics.compareExchange(words, i, FREE, HELD) === FREE) return;
  }
  // Announce a sleeper so the holder's release wakes one; retry after every wake.
  while (Atomics.exchange(words, i, SLEEPERS) !== FREE) Atomics.wait(words, i, SLEEPERS);
}

/** Releases the lock in word `i` of `words`, waking one sleeper if there is any. */
export function releaseLock(words: Int32Array, i: number): void {
  if (Atomics.exchange(words, i, FREE) === SLEEPERS) Atomics.notify(words, i, 1);
}
