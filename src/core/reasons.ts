// Every packet the server receives ends in exactly one reason (ARCHITECTURE.md: "one event per packet").
// Reasons are small integers so that the hot path counts them in a typed array without allocating; the
// tables below give each its stable name and the response it implies.

export const RESPONSE_SERVED = 0;
export const RESPONSE_KISSED = 1;
export const RESPONSE_DROPPED = 2;
export type Response = typeof RESPONSE_SERVED | typeof RESPONSE_KISSED | typeof RESPONSE_DROPPED;
export const RESPONSE_NAMES = ["served", "kissed", "dropped"] as const;

// Served.
export const R_SERVED_CLIENT = 0; // mode 3 (or NTPv1 mode 0) answered in mode 4
export const R_SERVED_SYMMETRIC = 1; // mode 1 from an unknown peer answered in mode 2
// Dropped because the packet is not a well-formed NTP packet (RFC 5905 §7.3, RFC 7822).
export const R_MALFORMED_TOO_SHORT = 2;
export const R_MALFORMED_BAD_VERSION = 3;
export const R_MALFORMED_BAD_LENGTH = 4;
export const R_MALFORMED_BAD_EXTENSION = 5;
export const R_MALFORMED_BAD_MAC = 6;
export const R_MALFORMED_TOO_LONG = 7;
export const R_MALFORMED_OTHER = 8;
// Dropped because of the mode: answering these could start loops between servers or amplify traffic.
export const R_DROP_MODE_RESERVED = 9; // mode 0 with a version above 1
export const R_DROP_MODE_PASSIVE = 10; // mode 2: we never asked
export const R_DROP_MODE_SERVER = 11; // mode 4: a reply we never asked for
export const R_DROP_MODE_BROADCAST = 12; // mode 5: we are no broadcast client here
export const R_DROP_MODE_CONTROL = 13; // mode 6: not answered until monitoring defines it
export const R_DROP_MODE_PRIVATE = 14; // mode 7: ntpd's monlist, the CVE-2013-5211 amplifier; never answered
export const R_DROP_SYMMETRIC_DISABLED = 15; // mode 1 while [server] answer-symmetric = false
export const R_DROP_INTERNAL_ERROR = 16; // the shell caught an exception: counted, never fatal
// The defences (docs/defences-*.md), in the order the pipeline applies them (src/core/defences.ts).
export const R_DROP_ACL_IGNORE = 17; // access list `ignore` (paper §10)
export const R_DROP_BLOCKLISTED = 18; // on the blocklist: an elephant already shot (paper §11)
export const R_DROP_ACL_NOSERVE = 19; // access list `noserve` without `kod`
export const R_KISS_RSTR = 20; // access list `noserve` with `kod`: RSTR kiss-o'-death (RFC 5905 §7.4)
export const R_DROP_GAPPED = 21; // call-gap (paper §12) without `kod`, or KoD disabled
export const R_KISS_RATE = 22; // call-gap with `kod`: RATE kiss-o'-death (paper §11)
export const R_DROP_KOD_LIMITED = 23; // gapped, would have been kissed RATE, but the KoD limiter said no
export const R_SERVED_LEAK = 24; // gapped, but answered by the leak (1 in 2^leak) so a spoofed victim is not cut off
export const R_DROP_NOQUERY = 25; // mode 6 from an address not allowed to query (access list `noquery`)
export const R_SERVED_CONTROL = 26; // mode 6 answered (ntpq)
export const R_DROP_NAME_DENY = 27; // reverse-DNS name rule (or the [names] default) says deny (paper §10)
export const R_DROP_NAME_PENDING = 28; // name lookup not finished, and [names] pending = "drop"
export const R_KISS_DENY = 29; // a name rule denies, the address has `kod`: DENY kiss-o'-death (RFC 5905 §7.4)
export const R_DROP_OVERLOAD = 30; // past the redline, its class's pool withheld for this period (paper §12)
export const R_DROP_KOD_LIMITED_DENIED = 31; // refused (noserve, name rule), its RSTR/DENY kiss withheld by the limiter
// Manycast (paper §9): requests that arrived on a [manycast] group socket (src/core/manycast.ts).
export const R_SERVED_MANYCAST = 32; // mode 3 to a group, answered by unicast
export const R_DROP_MANYCAST_UNSYNCHRONISED = 33; // to a group while we cannot vouch for our time: silence
export const R_DROP_MANYCAST_SOURCE = 34; // from a multicast or broadcast source: never answered
export const R_DROP_MANYCAST_MODE = 35; // anything but mode 3 to a group (ntpq, symmetric): never answered

// NTS (RFC 8915 §5.7, src/core/nts.ts): the defences above decide first, as for any request; these are the
// fates of an NTS request they would serve.
export const R_SERVED_NTS = 36; // authenticated reply with new cookies (stamped before it was sealed)
export const R_KISS_NTSN_UNKNOWN_KEY = 37; // NTS NAK: the cookie's key is none of ours (expired, another fleet)
export const R_KISS_NTSN_BAD_COOKIE = 38; // NTS NAK: the cookie does not open (tampered, forged, wrong length)
export const R_KISS_NTSN_BAD_AUTH = 39; // NTS NAK: the cookie opens but the request's authenticator does not verify
export const R_DROP_NTS_MALFORMED = 40; // NTS fields missing, repeated or of bad lengths: dropped

export const REASON_COUNT = 41;

export const REASON_NAMES: readonly string[] = Object.freeze([
  "served_client",
  "served_symmetric",
  "malformed_too_short",
  "malformed_bad_version",
  "malformed_bad_length",
  "malformed_bad_extension",
  "malformed_bad_mac",
  "malformed_too_long",
  "malformed_other",
  "drop_mode_reserved",
  "drop_mode_passive",
  "drop_mode_server",
  "drop_mode_broadcast",
  "drop_mode_control",
  "drop_mode_private",
  "drop_symmetric_disabled",
  "drop_internal_error",
  "drop_acl_ignore",
  "drop_blocklisted",
  "drop_acl_noserve",
  "kiss_rstr",
  "drop_gapped",
  "kiss_rate",
  "drop_kod_limited",
  "served_leak",
  "drop_noquery",
  "served_control",
  "drop_name_deny",
  "drop_name_pending",
  "kiss_deny",
  "drop_overload",
  "drop_kod_limited_denied",
  "served_manycast",
  "drop_manycast_unsynchronised",
  "drop_manycast_source",
  "drop_manycast_mode",
  "served_nts",
  "kiss_ntsn_unknown_key",
  "kiss_ntsn_bad_cookie",
  "kiss_ntsn_bad_auth",
  "drop_nts_malformed",
]);

export const REASON_RESPONSE: readonly Response[] = Object.freeze(
  Array.from({ length: REASON_COUNT }, (_, r): Response => {
    if (
      r === R_SERVED_CLIENT ||
      r === R_SERVED_SYMMETRIC ||
      r === R_SERVED_LEAK ||
      r === R_SERVED_CONTROL ||
      r === R_SERVED_MANYCAST ||
      r === R_SERVED_NTS
    ) {
      return RESPONSE_SERVED;
    }
    return r === R_KISS_RATE ||
      r === R_KISS_RSTR ||
      r === R_KISS_DENY ||
      r === R_KISS_NTSN_UNKNOWN_KEY ||
      r === R_KISS_NTSN_BAD_COOKIE ||
      r === R_KISS_NTSN_BAD_AUTH
      ? RESPONSE_KISSED
      : RESPONSE_DROPPED;
  }),
);

// What the shell sends back for a reason, in the request's own bytes: nothing, the reply decide wrote (stamp
// its transmit time first), or a kiss-o'-death (sent as written: it carries no time of ours). A control reply
// is served, but in datagrams of its own (src/server/control.ts), so nothing goes back in place. An NTS reply
// is sent as written: its transmit timestamp was stamped before the authenticator sealed it.
export const REPLY_NONE = 0;
export const REPLY_STAMPED = 1;
export const REPLY_AS_IS = 2;

export const REASON_REPLY: Readonly<Uint8Array> = Uint8Array.from({ length: REASON_COUNT }, (_, r) => {
  if (r === R_SERVED_CONTROL) return REPLY_NONE;
  if (r === R_SERVED_NTS) return REPLY_AS_IS;
  const response = REASON_RESPONSE[r];
  return response === RESPONSE_SERVED
    ? REPLY_STAMPED
    : response === RESPONSE_KISSED
      ? REPLY_AS_IS
      : REPLY_NONE;
});

export function isServed(reason: number): boolean {
  return REASON_RESPONSE[reason] === RESPONSE_SERVED;
}

// Every reason in one of the four families ntpd-rs's exporter counts, so that /metrics, /api/stats, `stats` and
// `top` add up to the packets received: accepted (answered), denied (refused because of who sent it: access
// list, name rule, blocklist), rate-limited (refused because of how much it or the server is asked: the
// call-gap, its KoDs, overload control), ignored (refused for what the packet is: malformed, a mode never
// answered, access list `ignore`).
export const CATEGORY_ACCEPTED = 0;
export const CATEGORY_DENIED = 1;
export const CATEGORY_RATE_LIMITED = 2;
export const CATEGORY_IGNORED = 3;
export const CATEGORY_NAMES = ["accepted", "denied", "rate_limited", "ignored"] as const;

export const REASON_CATEGORY: Readonly<Uint8Array> = Uint8Array.from({ length: REASON_COUNT }, (_, r) => {
  if (REASON_RESPONSE[r] === RESPONSE_SERVED) return CATEGORY_ACCEPTED;
  switch (r) {
    case R_DROP_ACL_NOSERVE:
    case R_KISS_RSTR:
    case R_DROP_NOQUERY:
    case R_DROP_NAME_DENY:
    case R_KISS_DENY:
    case R_DROP_NAME_PENDING:
    case R_DROP_BLOCKLISTED:
    case R_DROP_KOD_LIMITED_DENIED:
    case R_KISS_NTSN_UNKNOWN_KEY:
    case R_KISS_NTSN_BAD_COOKIE:
    case R_KISS_NTSN_BAD_AUTH:
      return CATEGORY_DENIED;
    case R_DROP_GAPPED:
    case R_KISS_RATE:
    case R_DROP_KOD_LIMITED:
    case R_DROP_OVERLOAD:
      return CATEGORY_RATE_LIMITED;
    default:
      return CATEGORY_IGNORED;
  }
});
