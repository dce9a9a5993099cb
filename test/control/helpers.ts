// Shared fixtures of the control tests: a system description, an MRU list filled with known clients, and a
// context around them.

import type { ControlContext } from "../../src/control/mode6.ts";
import { createNonceSecret, NonceKeeper } from "../../src/control/nonce.ts";
import type { SystemInfo } from "../../src/control/sysvars.ts";
import { MruList } from "../../src/defence/mru.ts";
import { createRng } from "../../src/defence/random.ts";
import { key } from "./client.ts";

export const NOW = Date.UTC(2026, 5, 1, 12, 0, 0);

export function systemInfo(over: Partial<SystemInfo> = {}): SystemInfo {
  return {
    state: {
      leap: 0,
      stratum: 2,
      precision: -20,
      rootDelay: 0.0125,
      rootDispersion: 0.002,
      dispersionRate: 15e-6,
      refId: 0xc0000201, // 192.0.2.1
      refTimeMs: NOW - 64_000,
      offsetMs: 0.25,
      answerSymmetric: false,
    },
    version: "ntpshield 0.1.0",
    processor: "x86_64",
    system: "Linux/6.1.0",
    poll: 6,
    minPoll: 4,
    uptimeS: 3600.7,
    counters: {
      received: 1000,
      byReason: {
        served_client: 880,
        served_symmetric: 5,
        served_leak: 2,
        kiss_rate: 10,
        kiss_rstr: 1,
        drop_gapped: 50,
        drop_kod_limited: 4,
        malformed_too_short: 3,
        malformed_bad_version: 2,
        drop_mode_server: 7,
        drop_noquery: 6,
        served_control: 12,
      },
    },
    ...over,
  };
}

export function emptyMru(capacity = 1000): MruList {
  return MruList.create({ maxEntries: capacity, maxAge: 1e9, hashSeed: 1 }, createRng(1));
}

/** Touches `address` at each of `times` (Unix s). */
export function feed(
  mru: MruList,
  address: string,
  times: number[],
  port = 123,
  mode = 3,
  version = 4,
): void {
  for (const t of times) mru.touch(key(address), t, mode, version, port);
}

export interface CtxOptions {
  allow?: string[];
  mru?: MruList | null;
  info?: SystemInfo;
  loopbackProven?: boolean;
  nonces?: NonceKeeper;
}

export function makeCtx(o: CtxOptions = {}): ControlContext {
  const allow = (o.allow ?? ["127.0.0.1", "::1"]).map(key);
  const info = o.info ?? systemInfo();
  return {
    allowed: (k) => allow.some((a) => a.every((w, i) => w === k[i])),
    system: () => info,
    mru: o.mru === undefined ? emptyMru() : o.mru,
    nonces: o.nonces ?? new NonceKeeper(createNonceSecret()),
    ...(o.loopbackProven === undefined ? {} : { loopbackProven: o.loopbackProven }),
  };
}
