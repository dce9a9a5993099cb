// ntpq's mode 6 in a worker thread: builds the control context (who may ask, the system variables, the
// shared MRU list, the nonces) around the pure handler of src/control/mode6.ts and turns its result into a
// reason of the decision core. Mode 6 is rare and answered off the time path: this allocates per request.
//
// Who may ask: an address on the control allow list ([control] allow, default 127.0.0.1 and ::1) whose
// access-list flags do not include `noquery`. Everybody else gets nothing at all (docs/ntpq.md).

import type { Config } from "../config/index.ts";
import { CONTROL_DENIED, type ControlContext, controlReplied, handleControl } from "../control/mode6.ts";
import { NonceKeeper } from "../control/nonce.ts";
import { summarise } from "../core/counters.ts";
import type { Defences } from "../core/defences.ts";
import { R_DROP_MODE_CONTROL, R_DROP_NOQUERY, R_SERVED_CONTROL } from "../core/reasons.ts";
import type { ServeState } from "../core/serve-state.ts";
import { ACL_DEFAULT_RULE, ACL_NOQUERY, parseAclRules } from "../defence/acl.ts";
import { parseAddressKey } from "../defence/address-key.ts";

/**
 * The [control] allow list (validated by the configuration), compiled once: whether an address key, or an
 * address as text (an HTTP peer), is on it. One definition for ntpq's mode 6 and the HTTP endpoint's writes.
 */
export interface ControlAllow {
  allowsKey(key: Uint32Array): boolean;
  allowsAddress(address: string): boolean;
}

export function compileControlAllow(allow: readonly string[]): ControlAllow {
  const table = parseAclRules(
    allow.map((address) => ({ address, flags: [] })),
    [],
  );
  const key = new Uint32Array(4);
  const allowsKey = (k: Uint32Array) => table.match(k) !== ACL_DEFAULT_RULE;
  return { allowsKey, allowsAddress: (address) => parseAddressKey(address, key) && allowsKey(key) };
}

export interface ControlServiceOptions {
  config: Config;
  defences: Defences;
  /** The nonce secret, the same in every thread (made once by the main thread). */
  nonceSecret: Uint8Array;
  /** Every worker's counters, for the ss_* variables. */
  counters: readonly Float64Array[];
  /** When the server started, Unix ms. */
  startedMs: number;
  version: string;
  state: () => ServeState;
}

export class ControlService {
  private allow: ControlAllow;
  private readonly ctx: ControlContext;
  private readonly defences: Defences;
  /** Reply datagrams of the request being answered (reused; emptied before each request). */
  readonly out: Uint8Array[] = [];

  constructor(o: ControlServiceOptions) {
    this.allow = compileControlAllow(o.config.control.allow);
    this.defences = o.defences;
    this.ctx = {
      allowed: (key) => this.allow.allowsKey(key) && (this.defences.live.acl.lookup(key) & ACL_NOQUERY) === 0,
      system: () => {
        const c = summarise(o.counters);
        return {
          state: o.state(),
          version: `ntpshield ${o.version}`,
          uptimeS: Math.max(0, Math.floor((Date.now() - o.startedMs) / 1000)),
          counters: { received: c.received, byReason: c.byReason },
        };
      },
      mru: o.defences.mru,
      mruClientKey: (address, out) => {
        this.defences.clientKeyOf(address, out);
      },
      nonces: new NonceKeeper(o.nonceSecret),
    };
  }

  /** A reloaded configuration's allow list. */
  reconfigure(config: Config): void {
    this.allow = compileControlAllow(config.control.allow);
  }

  /**
   * Answers one mode 6 request: fills `this.out` with the reply datagrams (possibly none) and returns the
   * reason to count: R_SERVED_CONTROL, R_DROP_NOQUERY (not allowed: silence) or R_DROP_MODE_CONTROL.
   */
  handle(buf: Uint8Array, length: number, key: Uint32Array, port: number, nowMs: number): number {
    this.out.length = 0;
    const result = handleControl(buf, length, { key, port }, nowMs, this.ctx, this.out);
    if (controlReplied(result)) return R_SERVED_CONTROL;
    return result === CONTROL_DENIED ? R_DROP_NOQUERY : R_DROP_MODE_CONTROL;
  }
}
