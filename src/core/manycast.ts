// Manycast server (paper §9): a client's request sent to a group the server joined ([manycast] group). The
// same pipeline as unicast decides it (access lists, blocklist, name rules, MRU, call-gap, KoD: Defences),
// after three checks of its own, in this order:
// - a source that is a multicast or broadcast address is never answered: a reply there would go to a whole
//   group or subnet, the amplifier a forged source makes of any server (the kernel drops most such
//   packets already; this does not rely on it);
// - only mode 3 is answered on a group: ntpq's mode 6 and symmetric modes are unicast matters;
// - a server that cannot vouch for its time (leap alarm, stratum 16) stays silent, so that the client
//   finds only servers worth keeping ("inviting participating servers to respond if they can provide
//   service"). A unicast request would get a leap-alarm reply; a manycast request gets none.
// No allocation: the hot path's rules (src/core/README.md).

import { isIPv4Key } from "../defence/address-key.ts";
import { MODE_CLIENT } from "../protocol/index.ts";
import type { Defences } from "./defences.ts";
import {
  R_DROP_MANYCAST_MODE,
  R_DROP_MANYCAST_SOURCE,
  R_DROP_MANYCAST_UNSYNCHRONISED,
  R_SERVED_CLIENT,
  R_SERVED_MANYCAST,
} from "./reasons.ts";
import { type ServeState, STRATUM_UNSYNCHRONISED } from "./serve-state.ts";

/** Whether a source key is an IPv4 group (224/4), the limited broadcast 255.255.255.255, or an IPv6 group. */
export function isGroupOrBroadcastKey(key: Uint32Array): boolean {
  if (isIPv4Key(key)) {
    const a = key[3]! >>> 0;
    return a >>> 28 === 0xe || a === 0xffffffff;
  }
  return key[0]! >>> 24 === 0xff;
}

/**
 * Decides a datagram received on a manycast group socket at `d.time[0]` (Unix ms): one of the R_*_MANYCAST
 * reasons, or what the unicast pipeline says (a kiss, a drop, the leak). On R_SERVED_MANYCAST the reply is
 * written over `buf`, as for R_SERVED_CLIENT; a kiss likewise.
 */
export function decideManycast(
  d: Defences,
  buf: Uint8Array,
  length: number,
  key: Uint32Array,
  port: number,
  state: ServeState,
): number {
  if (isGroupOrBroadcastKey(key)) return R_DROP_MANYCAST_SOURCE;
  if (length < 1 || (buf[0]! & 7) !== MODE_CLIENT) return R_DROP_MANYCAST_MODE;
  if (state.leap === 3 || state.stratum >= STRATUM_UNSYNCHRONISED) return R_DROP_MANYCAST_UNSYNCHRONISED;
  const r = d.decideNow(buf, length, key, port, state);
  return r === R_SERVED_CLIENT ? R_SERVED_MANYCAST : r;
}
