// Training the JIT on the whole per-packet decision before the first real packet.
//
// Why: V8 compiles the hot path with what it has seen. A server that has only met its everyday clients has
// never recycled an MRU record, withheld a request or hashed a pool, so its optimised code carries a
// "never seen" exit on each of those branches. The first flood takes them all at once: each exit throws the
// function back to the interpreter, and the recompilations (tens of milliseconds of CPU each for the larger
// functions, taken from the same CPU the server has) fall exactly when the socket queue is filling. Measured
// under bench/overload.ts: the processing rate sank to a third for about 300 ms at the flood's onset, and
// nearly every request lost in the flood was lost then (docs/benchmarks.md).
//
// So each worker, before it reads its sockets, runs a few thousand synthetic requests through a scratch
// copy of its defences (a small MRU list of its own, so recycling happens; a tiny redline, so every class
// is withheld and admitted; clients that poll as mice, as known clients and as bursters; IPv4 and IPv6
// sources). The scratch copy shares nothing with the server: no record, counter or blocklist entry of the
// server changes. Feedback is per function, not per object, so what the scratch copy teaches holds for the
// real one. Pure and deterministic; allocates only its scratch state, once.

import { KEY_WORDS } from "../defence/address-key.ts";
import { OFF_TRANSMIT_TS } from "../protocol/index.ts";
import { type DefenceSettings, Defences } from "./defences.ts";
import type { ServeState } from "./serve-state.ts";

/** Records of the scratch MRU list: small, so that a few thousand new sources recycle it many times over. */
const SCRATCH_RECORDS = 256;

export interface WarmupResult {
  /** Requests run through the scratch defences. */
  readonly packets: number;
  /** How many ended in each reason (index: reason code), to show that each branch was taken. */
  readonly reasons: Uint32Array;
}

/**
 * Runs about `rounds` x 1,100 synthetic requests through a scratch copy of the defences built from
 * `settings` (the server's own, so that the same options and branches are live), and returns what became of
 * them. Nothing of the server's state is touched.
 */
export function warmDecisionPath(settings: DefenceSettings, state: ServeState, rounds = 6): WarmupResult {
  const scratch: DefenceSettings = {
    ...settings,
    mru: { ...settings.mru, maxEntries: SCRATCH_RECORDS, maxMemory: settings.mru.maxMemory },
    // Rules of the operator's access list could ignore the synthetic sources and train nothing.
    acl: { rule: [], default: ["limited", "kod"] },
    overload: { ...settings.overload, redline: 0 },
  };
  // Built as a worker builds its own: a first instance owns the shared buffers, a second attaches to them.
  const owner = Defences.fromConfig(scratch, { workers: 1 });
  const d = Defences.fromConfig(scratch, { shared: owner.shared(), slot: 0 });
  const reasons = new Uint32Array(256);
  const buf = new Uint8Array(48);
  const key = new Uint32Array(KEY_WORDS);
  let packets = 0;
  let nowMs = 1_700_000_000_000;

  const send = (source: number, v6: boolean, mode: number, length: number): void => {
    buf.fill(0);
    buf[0] = (4 << 3) | mode;
    buf[2] = 6;
    for (let i = 0; i < 8; i++) buf[OFF_TRANSMIT_TS + i] = (packets * 31 + i) & 0xff;
    if (v6) {
      // 2001:db8:(source high)::(source low): sources that differ only in the low word share a /64.
      key[0] = 0x20010db8;
      key[1] = source >>> 12;
      key[2] = 0;
      key[3] = source & 0xfff;
    } else {
      key[0] = 0;
      key[1] = 0;
      key[2] = 0xffff;
      key[3] = (0x7f000000 | (source & 0xffffff)) >>> 0;
    }
    d.time[0] = nowMs;
    const reason = d.decideNow(buf, length, key, 123, state);
    reasons[reason]!++;
    packets++;
  };

  const mice = 64;
  for (let round = 0; round < rounds; round++) {
    // Below the redline: the mice poll (one in 20 s), a burster asks every 0.3 s, new sources pour in past
    // the list's size, some malformed and some of other modes.
    d.overload.setRedline(0);
    for (let step = 0; step < 4; step++) {
      nowMs += 20_000;
      for (let m = 0; m < mice; m++) send(m, m % 4 === 3, 3, 48);
      for (let b = 0; b < 20; b++) {
        nowMs += 300;
        send(1_000, false, 3, 48);
        send(2_000, true, 3, 48);
      }
      for (let n = 0; n < 300; n++) send(10_000 + round * 4_000 + step * 300 + n, n % 5 === 0, 3, 48);
      send(3_000, false, 3, 20); // too short
      send(3_001, false, 4, 48); // a server's reply
      send(3_002, false, 1, 48); // symmetric active
    }
    // Past a redline of a few requests per second: every class is measured, pools withheld and rotated.
    d.overload.setRedline(5);
    for (let step = 0; step < 6; step++) {
      nowMs += 20_000;
      for (let m = 0; m < mice; m++) send(m, m % 4 === 3, 3, 48);
      for (let n = 0; n < 150; n++) {
        nowMs += 2;
        send(100_000 + ((round * 6 + step) * 150 + n) * 7, n % 5 === 0, 3, 48);
        send(1_000 + (n % 8), false, 3, 48);
      }
    }
  }
  return { packets, reasons };
}
