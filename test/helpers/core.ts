// The decision core's tests (test/core) share these: a synchronised server's state, the defences built from
// a configuration with a seeded random source, client keys, and requests whose transmit time is recognisable.

import assert from "node:assert/strict";
import { parseConfig } from "../../src/config/index.ts";
import { Defences } from "../../src/core/defences.ts";
import type { ServeState } from "../../src/core/serve-state.ts";
import { addressKey } from "../../src/defence/address-key.ts";
import { createRng } from "../../src/defence/random.ts";

/** A stratum 2 server synchronised ten seconds before `t0` (Unix ms). */
export function syncedState(t0: number): ServeState {
  return {
    leap: 0,
    stratum: 2,
    precision: -20,
    rootDelay: 0.01,
    rootDispersion: 0.02,
    dispersionRate: 0,
    refId: 0xc0000201,
    refTimeMs: t0 - 10_000,
    offsetMs: 0,
    answerSymmetric: true,
  };
}

/** The defences of the configuration `toml` (defaults for what it leaves out), the random source seeded. */
export function defences(toml = "", seed = 1): Defences {
  return Defences.fromConfig(parseConfig(toml), { rng: createRng(seed) });
}

/** The key of a valid address. */
export function key(address: string): Uint32Array {
  const k = addressKey(address);
  assert.ok(k, address);
  return k;
}

/** A request whose transmit timestamp is recognisable: `tag` in its low word. */
export function request(mode = 3, tag = 0x01020304, version = 4, length = 48): Uint8Array {
  const b = new Uint8Array(length);
  b[0] = (version << 3) | mode;
  b[2] = 6;
  if (length >= 48) {
    const dv = new DataView(b.buffer);
    dv.setUint32(40, 0xec000000);
    dv.setUint32(44, tag);
  }
  return b;
}
