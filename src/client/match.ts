// Whether a datagram is the reply to our request (RFC 5905 §8, paper §8-§9, RFC 8633 §3.2). Pure. Used by
// each source of the running client (source.ts) and by the one-shot query (query.ts).
//
// A datagram counts only if its origin timestamp equals, all 64 bits, the transmit timestamp of our request
// (whose fraction is random: measure.ts buildRequest), and if it comes from the address and port we asked.
// With `followRedirects`, a reply with that exact origin from another address counts too, marked as
// redirected: the paper's active redirection (§8), where the random fraction is the "very fine-grained
// value" that ties the answer to the question. Everything else is not our reply, and the caller goes on
// waiting, so a spoofed or stale packet, kiss-o'-death included, changes nothing.

import { NTP_HEADER_LENGTH, OFF_ORIGIN_TS } from "../protocol/index.ts";
import { unmapAddress } from "./address.ts";

/** Why a datagram that arrived during an exchange was not taken as its reply. */
export type IgnoreReason = "origin-mismatch" | "unexpected-address" | "refused-address" | "not-a-reply";

/**
 * Whether a datagram is the reply to a request (the rules above): at least a header, the origin timestamp
 * equal to our transmit timestamp in all 64 bits, and from the address and port asked, or, with
 * `followRedirects`, from anywhere with that exact origin (then `redirected`).
 */
export function matchReply(
  expected: { readonly address: string; readonly port: number; readonly transmit: Uint8Array },
  data: Uint8Array,
  from: { readonly address: string; readonly port: number },
  followRedirects: boolean,
): { ok: true; redirected: boolean } | { ok: false; reason: IgnoreReason } {
  if (data.length < NTP_HEADER_LENGTH) return { ok: false, reason: "not-a-reply" };
  for (let i = 0; i < 8; i++) {
    if (data[OFF_ORIGIN_TS + i] !== expected.transmit[i]) return { ok: false, reason: "origin-mismatch" };
  }
  const same = unmapAddress(from.address) === unmapAddress(expected.address) && from.port === expected.port;
  if (same) return { ok: true, redirected: false };
  if (!followRedirects) return { ok: false, reason: "unexpected-address" };
  return { ok: true, redirected: true };
}
