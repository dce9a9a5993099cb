// Overload control (paper §12, MISSION part 10): what the server does when the *total* load passes what it
// can carry, as in §3's Wisconsin splurge (100,000-250,000 requests/s from 500,000 sources) or past §4's
// redline. The call-gap shoots elephants one by one; a flood from hundreds of thousands of sources, each
// polite on its own, passes it. Past the redline a server that answers at random answers everybody badly:
// every client loses some packets, retries, and the load grows. The paper's remedy is the telephone
// network's: "a rotating power blackout where dial tone is withheld for varying periods for varying pools of
// customers", so that whoever is served is served well, and a withheld client meets silence for a whole
// period, from which a properly designed client concludes it should slow down.
//
// Admission, in order, each class only with the capacity that the ones before it leave:
//   1. mice: clients with a history of polite polling (an MRU record whose averaged interval is at least
//      `mouseInterval`, never gapped). They are the clients a public server exists for, and they are cheap.
//   2. other known clients (an MRU record with more than one packet).
//   3. newcomers (no record, or a record made by this very packet): a flood from random or spoofed
//      sources is mostly here, and it is the class that can grow without bound.
// Within a class that cannot be served whole, sources are hashed into POOLS pools and a run of consecutive
// pools is withheld; the run moves on to the next pools after a period drawn at random (the "varying
// periods"), so no pool is withheld for ever and a withheld client is withheld for a whole period rather
// than losing random packets. Withheld requests are dropped, never kissed: a KoD per withheld packet would
// make the server the reflector §11 warns of.
//
// Measurement. Time is cut into windows of WINDOW seconds. Each worker counts the requests that reach this
// decision, by class, in its own slot of the shared buffer (only that thread writes it, so no lock and no
// atomic read-modify-write on the hot path). The first worker to see a new window (a compare-and-swap on
// the window number) sums every worker's counts of the window just ended and sets, for each class, how many
// pools to withhold: demand is counted before withholding, so the figures do not chase their own effect.
// The capacity is the sum of the workers' redlines (requests per second each; a worker's redline is set by
// the operator or measured by the shell from kernel drops, see nextAutoRedline and src/server/worker.ts). No
// redline, no overload control.
//
// Pure: time comes in through `clock[0]` (seconds), randomness from the caller's Rng; O(1) and
// allocation-free per packet; the once-a-window rollover is O(workers).

import { DefenceError } from "./errors.ts";
import { RNG_RANGE, type Rng } from "./random.ts";

/** Class 1: a client with a polite history. */
export const CLASS_MOUSE = 0;
/** Class 2: any other client the MRU list knows. */
export const CLASS_KNOWN = 1;
/** Class 3: a source never seen before (or not kept by the MRU list). */
export const CLASS_NEW = 2;
export const CLASS_COUNT = 3;
export const CLASS_NAMES: readonly string[] = Object.freeze(["mice", "known", "new"]);

/**
 * Pools per class: a power of two, so a pool is the low bits of a hash; 1/64 of a class is the grain. 256
 * pools were tried: a flood then always has a pool or two served, and in the Wisconsin simulation those
 * answers cost the mice their share.
 */
export const POOLS = 64;
/**
 * Pools by which a run may grow or shrink before its period ends (a change of more than 1/32 of the class):
 * smaller changes wait for the period's end, so the window-to-window jitter of the demand does not let a
 * pool at the run's edge in or out for a moment.
 */
const CHANGE_NOW = POOLS / 32;
/**
 * Seconds per measurement window. A second holds enough requests to measure even at a small redline (the
 * simulator's Wisconsin server answers a hundred a second, and its mice need the counts steady); a flood
 * need not wait for the window's end, since a changed redline makes the pools be set again at once from the
 * window's counts so far.
 */
export const WINDOW = 1;
/** Most worker slots one buffer holds. */
export const MAX_WORKERS = 256;

/** Admit the request. */
export const OVERLOAD_ADMIT = 0;
/** Withhold it: its pool is withheld for this period. */
export const OVERLOAD_WITHHOLD = 1;

export interface OverloadOptions {
  /** Worker slots (threads that decide packets). */
  workers?: number;
  /** Shortest and longest period a run of pools is withheld, seconds. */
  periodMin?: number;
  periodMax?: number;
  /** Seed of the pool hash; random unless given (tests). */
  hashSeed?: number;
}

export const OVERLOAD_DEFAULTS = Object.freeze({ workers: 1, periodMin: 4, periodMax: 32 });

/** The figures of the last window, for logs, metrics and the dashboard. */
export interface OverloadStats {
  overloaded: boolean;
  /** Times overload was entered and left since start. */
  entered: number;
  left: number;
  /** Requests per second all workers can carry (sum of their redlines); 0 = no redline known. */
  capacity: number;
  /** Requests per second of the last whole window, by class (mice, known, new). */
  demand: number[];
  /** Pools withheld now, by class, out of POOLS. */
  withheldPools: number[];
  /** Requests withheld since start, by class. */
  withheld: number[];
}

// Header: Int32 words 0-31 (128 bytes), Float64 slots 16-31 overlay bytes 128-255.
const I_MAGIC = 0;
const I_LAYOUT = 1;
const I_WORKERS = 2;
const I_WINDOW = 3;
const I_OVERLOADED = 4;
const I_SEED = 5;
const I_ENTERED = 6;
const I_LEFT = 7;
const I_POOLS_WITHHELD = 8; // + class
const I_OFFSET = 12; // + class
/** Set when a redline changed enough that the pools must be set again now, not at the window's end. */
const I_FORCE = 20;
const F_PERIOD_END = 16; // + class
const F_CAPACITY = 20;
const F_DEMAND = 21; // + class
const F_PERIOD_MIN = 24;
const F_PERIOD_MAX = 25;
const HEADER_BYTES = 256;
const MAGIC = 0x4f564c31; // "OVL1"
const LAYOUT_VERSION = 1;

// A worker's slot: Float64 words. The window its counts belong to, its redline, this window's and the last
// window's demand by class, and its withheld counts since start.
const S_WINDOW = 0;
const S_REDLINE = 1;
const S_CUR = 2; // + class
const S_PREV = 5; // + class
const S_WITHHELD = 8; // + class
const SLOT_WORDS = 12;

function check(ok: boolean, message: string): void {
  if (!ok) throw new DefenceError("ERR_DEFENCE_OPTION", message);
}

/** Bytes of the shared buffer for `workers` slots. */
export function overloadBufferBytes(workers: number): number {
  return HEADER_BYTES + workers * SLOT_WORDS * 8;
}

/**
 * The shared overload state and one worker's view of it. Create once (`OverloadControl.create`), hand
 * `buffer` to the workers, `attach` there with the worker's slot.
 */
export class OverloadControl {
  readonly buffer: SharedArrayBuffer;
  readonly workers: number;
  /** This view's worker slot. */
  readonly slot: number;
  /** This view's "now", seconds: written by the caller before admitNow. */
  readonly clock = new Float64Array(1);
  /** The pool seed, for the caller's hash of the source. */
  readonly seed: number;

  private readonly h: Int32Array;
  private readonly f: Float64Array;
  private readonly s: Float64Array;
  private readonly base: number;
  private readonly rng: Rng;

  private constructor(buffer: SharedArrayBuffer, slot: number, rng: Rng) {
    const h = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    const workers = h[I_WORKERS]!;
    if (
      h[I_MAGIC] !== MAGIC ||
      h[I_LAYOUT] !== LAYOUT_VERSION ||
      workers < 1 ||
      buffer.byteLength !== overloadBufferBytes(workers)
    ) {
      throw new DefenceError("ERR_DEFENCE_BUFFER", "not the shared buffer of the overload control");
    }
    check(
      Number.isInteger(slot) && slot >= 0 && slot < workers,
      `slot must be an integer from 0 to ${workers - 1}`,
    );
    this.buffer = buffer;
    this.workers = workers;
    this.slot = slot;
    this.h = h;
    this.f = new Float64Array(buffer, 0, HEADER_BYTES / 8);
    this.s = new Float64Array(buffer, HEADER_BYTES, workers * SLOT_WORDS);
    this.base = slot * SLOT_WORDS;
    this.seed = h[I_SEED]!;
    this.rng = rng;
  }

  static create(options: OverloadOptions, rng: Rng): OverloadControl {
    const o = { ...OVERLOAD_DEFAULTS, ...options };
    check(Number.isInteger(o.workers) && o.workers >= 1 && o.workers <= MAX_WORKERS, "workers out of range");
    check(o.periodMin > 0 && o.periodMax >= o.periodMin, "periods must be > 0 and periodMax >= periodMin");
    const buffer = new SharedArrayBuffer(overloadBufferBytes(o.workers));
    const h = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    const f = new Float64Array(buffer, 0, HEADER_BYTES / 8);
    h[I_MAGIC] = MAGIC;
    h[I_LAYOUT] = LAYOUT_VERSION;
    h[I_WORKERS] = o.workers;
    h[I_WINDOW] = -1;
    h[I_SEED] = o.hashSeed ?? globalThis.crypto.getRandomValues(new Int32Array(1))[0]! & 0x3fffffff;
    f[F_PERIOD_MIN] = o.periodMin;
    f[F_PERIOD_MAX] = o.periodMax;
    const s = new Float64Array(buffer, HEADER_BYTES, o.workers * SLOT_WORDS);
    for (let w = 0; w < o.workers; w++) s[w * SLOT_WORDS + S_WINDOW] = -1;
    return new OverloadControl(buffer, 0, rng);
  }

  static attach(buffer: SharedArrayBuffer, slot: number, rng: Rng): OverloadControl {
    if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength < HEADER_BYTES) {
      throw new DefenceError("ERR_DEFENCE_BUFFER", "not the shared buffer of the overload control");
    }
    return new OverloadControl(buffer, slot, rng);
  }

  /** A view of the same state for another slot (tests, the simulator's several servers on one thread). */
  view(slot: number): OverloadControl {
    return new OverloadControl(this.buffer, slot, this.rng);
  }

  /** Sets the shortest and longest withholding period (a reload). Shared by all workers. */
  setPeriods(periodMin: number, periodMax: number): void {
    check(periodMin > 0 && periodMax >= periodMin, "periods must be > 0 and periodMax >= periodMin");
    this.f[F_PERIOD_MIN] = periodMin;
    this.f[F_PERIOD_MAX] = periodMax;
  }

  /** This worker's redline in requests per second (0: none known; the worker then adds no capacity). */
  setRedline(requestsPerSecond: number): void {
    const next = requestsPerSecond > 0 && Number.isFinite(requestsPerSecond) ? requestsPerSecond : 0;
    const was = this.s[this.base + S_REDLINE]!;
    this.s[this.base + S_REDLINE] = next;
    // A redline that appears, vanishes or moves by more than a tenth acts at the next request, from what
    // this window has counted so far: a flood is met within a measurement of its start, not a window later.
    if ((was === 0) !== (next === 0) || Math.abs(next - was) > 0.1 * was) Atomics.store(this.h, I_FORCE, 1);
  }

  get redline(): number {
    return this.s[this.base + S_REDLINE]!;
  }

  /** Whether the server is past its redline now (any worker's view). */
  get overloaded(): boolean {
    return this.h[I_OVERLOADED] === 1;
  }

  /**
   * Whether the server is past its redline at `nowS` (the clock's seconds), seen from outside the packet path
   * (the NTS-KE server, in the main thread). The state is recomputed only as requests arrive: once a flood
   * stops and nothing more comes, the last state says "past the redline" for ever. A state not recomputed
   * for two windows is taken as over.
   */
  overloadedAt(nowS: number): boolean {
    if (this.h[I_OVERLOADED] !== 1) return false;
    return Atomics.load(this.h, I_WINDOW) >= Math.floor(nowS / WINDOW) - 2;
  }

  /**
   * One request of class `klass` from a source whose hash is `hash` (any 30-bit hash of the source seeded
   * with `seed`), at the time in `clock[0]`. Returns OVERLOAD_ADMIT or OVERLOAD_WITHHOLD. Allocation-free.
   */
  admitNow(klass: number, hash: number): number {
    const s = this.s;
    const b = this.base;
    const h = this.h;
    const now = this.clock[0]!;
    const window = Math.floor(now / WINDOW);
    if (window !== s[b + S_WINDOW]) this.roll(window, now);
    else if (h[I_FORCE] !== 0 && Atomics.compareExchange(h, I_FORCE, 1, 0) === 1)
      this.recompute(window, now, true);
    s[b + S_CUR + klass]!++;
    if (h[I_OVERLOADED] === 0) return OVERLOAD_ADMIT;
    const held = h[I_POOLS_WITHHELD + klass]!;
    if (held === 0) return OVERLOAD_ADMIT;
    if (((hash - h[I_OFFSET + klass]!) & (POOLS - 1)) >= held) return OVERLOAD_ADMIT;
    s[b + S_WITHHELD + klass]!++;
    return OVERLOAD_WITHHOLD;
  }

  /** This worker enters window `window`: keep its last window's counts, and maybe recompute the shared state. */
  private roll(window: number, now: number): void {
    const s = this.s;
    const b = this.base;
    const mine = s[b + S_WINDOW]!;
    for (let k = 0; k < CLASS_COUNT; k++) {
      // Counts of a window older than the last one mean the worker was idle in between: its last window is 0.
      s[b + S_PREV + k] = mine === window - 1 ? s[b + S_CUR + k]! : 0;
      s[b + S_CUR + k] = 0;
    }
    s[b + S_WINDOW] = window;
    const h = this.h;
    const seen = Atomics.load(h, I_WINDOW);
    if (seen >= window) return;
    if (Atomics.compareExchange(h, I_WINDOW, seen, window) !== seen) return;
    Atomics.store(h, I_FORCE, 0);
    this.recompute(window, now, false);
  }

  /**
   * Sums every worker's last window and sets the pools withheld per class. Run by one worker a window, or,
   * `partial`, mid-window after a redline changed: then from the current window's counts so far, scaled to
   * the whole window (the last whole window, if less than a tenth of this one has passed).
   */
  private recompute(window: number, now: number, partial: boolean): void {
    const s = this.s;
    const f = this.f;
    const h = this.h;
    let capacity = 0;
    let d0 = 0;
    let d1 = 0;
    let d2 = 0;
    const elapsed = now - window * WINDOW;
    const sofar = partial && elapsed >= 0.1 * WINDOW;
    for (let w = 0; w < this.workers; w++) {
      const o = w * SLOT_WORDS;
      const at = s[o + S_WINDOW]!;
      // A worker still in the window just ended has it in CUR; one already past it, in PREV. Mid-window, the
      // current window is CUR of the workers in it.
      let base = -1;
      if (sofar) base = at === window ? o + S_CUR : -1;
      else base = at === window - 1 ? o + S_CUR : at === window ? o + S_PREV : -1;
      if (at >= window - 1) capacity += s[o + S_REDLINE]!;
      if (base < 0) continue;
      d0 += s[base]!;
      d1 += s[base + 1]!;
      d2 += s[base + 2]!;
    }
    if (sofar) {
      const scale = WINDOW / elapsed;
      d0 *= scale;
      d1 *= scale;
      d2 *= scale;
    }
    f[F_CAPACITY] = capacity;
    f[F_DEMAND] = d0 / WINDOW;
    f[F_DEMAND + 1] = d1 / WINDOW;
    f[F_DEMAND + 2] = d2 / WINDOW;
    const total = d0 + d1 + d2;
    // The redlines are per second; the counts are per window.
    capacity *= WINDOW;
    const was = h[I_OVERLOADED] === 1;
    // Enter past the redline; leave only below 90% of it, so a load that hovers at the redline does not
    // flap in and out (each change is logged).
    const over = capacity > 0 && (total > capacity || (was && total > 0.9 * capacity));
    let left = capacity;
    for (let k = 0; k < CLASS_COUNT; k++) {
      const d = k === 0 ? d0 : k === 1 ? d1 : d2;
      let held = 0;
      if (over && d > left) {
        // Serve the share `left / d` of the class: withhold the rest, rounded up to whole pools.
        held = Math.min(POOLS, Math.ceil((1 - left / d) * POOLS));
        left = 0;
      } else {
        left -= d;
      }
      const before = h[I_POOLS_WITHHELD + k]!;
      if (held === 0) {
        h[I_POOLS_WITHHELD + k] = 0;
        f[F_PERIOD_END + k] = 0;
        continue;
      }
      if (before === 0 || now >= f[F_PERIOD_END + k]!) {
        // A new period: the next run of pools, for a length drawn between the shortest and longest.
        if (before !== 0) h[I_OFFSET + k] = (h[I_OFFSET + k]! + before) & (POOLS - 1);
        const span = f[F_PERIOD_MAX]! - f[F_PERIOD_MIN]!;
        f[F_PERIOD_END + k] = now + f[F_PERIOD_MIN]! + (span * this.rng()) / RNG_RANGE;
        h[I_POOLS_WITHHELD + k] = held;
      } else if (held > before + CHANGE_NOW || held < before - CHANGE_NOW) {
        // Mid-period the run keeps its length, so that a pool at its edge is not let in or shut out for a
        // moment by the window-to-window jitter of the demand; a real surge lengthens it at once, and a real
        // fall shortens it (else the server would sit idle while clients it could serve are held off).
        h[I_POOLS_WITHHELD + k] = held;
      }
    }
    if (over !== was) {
      h[I_OVERLOADED] = over ? 1 : 0;
      h[over ? I_ENTERED : I_LEFT]!++;
    }
  }

  /** Requests per second a class asked in the last whole window (the automatic redline's floor). */
  demandOf(klass: number): number {
    return this.f[F_DEMAND + klass]!;
  }

  /** The shared figures (allocates: for monitoring). */
  stats(): OverloadStats {
    const h = this.h;
    const f = this.f;
    const withheld = [0, 0, 0];
    for (let w = 0; w < this.workers; w++) {
      for (let k = 0; k < CLASS_COUNT; k++) withheld[k]! += this.s[w * SLOT_WORDS + S_WITHHELD + k]!;
    }
    return {
      overloaded: h[I_OVERLOADED] === 1,
      entered: h[I_ENTERED]!,
      left: h[I_LEFT]!,
      capacity: f[F_CAPACITY]!,
      demand: [f[F_DEMAND]!, f[F_DEMAND + 1]!, f[F_DEMAND + 2]!],
      withheldPools: [h[I_POOLS_WITHHELD]!, h[I_POOLS_WITHHELD + 1]!, h[I_POOLS_WITHHELD + 2]!],
      withheld,
    };
  }
}

/** What a worker measured over one second, for the automatic redline. */
export interface WorkerSecond {
  /** Requests this worker took from its sockets. */
  processed: number;
  /** Requests it answered (served or kissed). */
  answered: number;
  /** Datagrams the kernel dropped from its sockets' receive queues meanwhile. */
  kernelDrops: number;
  /** Share of its receive batches that came back full (0-1): it is behind what arrives. */
  fullBatches: number;
  /** Seconds the measurement covers (default 1); the rates above are per second whatever it is. */
  seconds?: number;
  /** Seconds since the kernel last dropped requests of this worker (default: long ago). */
  sinceDrops?: number;
  /** The most this worker answered per second in a saturated measurement lately (0: not known). */
  ceiling?: number;
}

/** The automatic redline's steps. */
export const AUTO_REDLINE = Object.freeze({
  /** A saturated second sets the redline to this share of what was answered in it. */
  cut: 0.85,
  /** A second past the redline without saturation lifts it by this factor (probing for room). */
  raise: 1.05,
  /** Batches this full, on average, mean the worker is at its edge: the redline is not raised then. */
  fullBatches: 0.5,
  /** Seconds without drops before the redline is raised again. */
  quiet: 10,
  /**
   * Batches this empty, on average (nearly every receive emptied the queue), mean the worker has room: the
   * redline is then raised sooner and faster (`roomyRaise` a second, from `settle` seconds after the drops).
   */
  roomyFull: 0.1,
  roomyRaise: 1.25,
  settle: 1,
  /** Answers shed per request the kernel dropped, in a saturated second. */
  perDrop: 1.5,
  /** The redline stays this much above the mice's demand. */
  floorMargin: 1.5,
});

/**
 * The automatic redline of one worker (requests per second), from what it measured over the last second: cut
 * sharply and raised slowly, as a congestion window is. A worker that is saturated (the kernel dropped
 * requests from its sockets, and so lost mice with everything else) answers at most what it just managed,
 * less a margin, and again each second the drops go on: answers are the one cost it can shed (a reply costs
 * about what the receive it answers costs, or more), and each cut leaves more of the worker for taking
 * requests off the queue. The more it lost, the deeper the cut: one and a half answers per dropped request. It never cuts below `floor`, what the mice asked in the last second (with a margin): the redline
 * is there to serve them, and if the drops go on even then, the worker is bound by what it receives and
 * withholding more would only starve the clients it can serve. A worker past its redline but no longer
 * saturated probes upward, unless its batches come back full (it is at its edge). Returns 0 (no redline)
 * until the first saturated second: a server that never saturates is never limited. Pure.
 */
export function nextAutoRedline(
  redline: number,
  second: WorkerSecond,
  overloaded: boolean,
  floor = 0,
): number {
  // Only drops say the worker lost requests; full batches alone are what a busy worker that keeps up sees
  // too (a burst, or a scheduler pause), so they only stop the redline from being raised.
  if (second.kernelDrops > 0) {
    const least = Math.ceil(floor * AUTO_REDLINE.floorMargin) + 1;
    // At least 15% off, and more the more was lost: a withheld answer frees about what taking one more
    // request off the queue costs, so the drops say how many answers to shed (with half again as margin).
    const byShare = second.answered * AUTO_REDLINE.cut;
    const byDrops = second.answered - AUTO_REDLINE.perDrop * second.kernelDrops;
    const cut = Math.max(least, Math.floor(Math.min(byShare, byDrops)));
    return redline === 0 ? cut : Math.max(least, Math.min(redline, cut));
  }
  // Probe upward only after a quiet spell: raised again at once after a cut, the redline would walk back into
  // the drops it just left, and each visit loses requests (mice among them) at random.
  const since = second.sinceDrops ?? Number.POSITIVE_INFINITY;
  // Except where the worker plainly has room: its receive batches come back nearly empty (it takes what
  // arrives as fast as it arrives) a second after the drops, once the queue they filled has drained. A cut
  // made in a flood's first instant, or deeper than needed, then climbs back at once and quickly, and stops
  // as soon as the batches fill again: the worker's own edge, below the drops. A worker that is only just
  // keeping up (a flood taking all it has, as under a CPU cap) never looks roomy and keeps the slow rule.
  const roomy = since >= AUTO_REDLINE.settle && second.fullBatches <= AUTO_REDLINE.roomyFull;
  const quiet = since >= AUTO_REDLINE.quiet;
  if (redline > 0 && overloaded && (quiet || roomy) && second.fullBatches < AUTO_REDLINE.fullBatches) {
    // 5% a second (25% when roomy), however often it is measured, and at least that share of the ceiling a
    // second: a redline cut to a handful of mice by a spike must not take hours to climb back.
    const rate = roomy ? AUTO_REDLINE.roomyRaise : AUTO_REDLINE.raise;
    const step = Math.max(redline, second.ceiling ?? 0) * (rate - 1) * (second.seconds ?? 1);
    return Math.ceil(redline + step);
  }
  return redline;
}
