// Wire constants of the NTP packet (RFC 5905 §7.3, RFC 7822, RFC 1305). Plain numbers, no enums: they are
// compared on the hot path and must stay erasable for Node's type stripping.

/** RFC 5905 §7.3: the fixed header, without extension fields or MAC. */
export const NTP_HEADER_LENGTH = 48;
/** Seconds from the NTP prime epoch (1900-01-01T00:00:00Z) to the Unix epoch (RFC 5905 §6, Figure 4). */
export const NTP_UNIX_EPOCH_OFFSET = 2208988800;
/** One NTP era: the 32-bit seconds field wraps every 2^32 s (about 136 years), first on 2036-02-07. */
export const NTP_ERA_SECONDS = 4294967296;

/** The version we speak (RFC 5905). Requests of versions 1-4 are accepted; 0 and 5-7 are not. */
export const NTP_VERSION = 4;
export const NTP_VERSION_MIN = 1;
export const NTP_VERSION_MAX = 4;

// RFC 5905 §7.3, Figure 10: association modes.
export const MODE_RESERVED = 0;
export const MODE_SYMMETRIC_ACTIVE = 1;
export const MODE_SYMMETRIC_PASSIVE = 2;
export const MODE_CLIENT = 3;
export const MODE_SERVER = 4;
export const MODE_BROADCAST = 5;
export const MODE_CONTROL = 6;
export const MODE_PRIVATE = 7;

// RFC 5905 §7.3, Figure 9: leap indicator.
export const LEAP_NONE = 0;
export const LEAP_ADD_SECOND = 1;
export const LEAP_DEL_SECOND = 2;
/** Clock unsynchronised: what a server must say rather than serve wrong time. */
export const LEAP_ALARM = 3;

// RFC 5905 §7.3, Figure 8: byte offsets of the header fields.
export const OFF_LI_VN_MODE = 0;
export const OFF_STRATUM = 1;
export const OFF_POLL = 2;
export const OFF_PRECISION = 3;
export const OFF_ROOT_DELAY = 4;
export const OFF_ROOT_DISPERSION = 8;
export const OFF_REFID = 12;
export const OFF_REF_TS = 16;
export const OFF_ORIGIN_TS = 24;
export const OFF_RECEIVE_TS = 32;
export const OFF_TRANSMIT_TS = 40;

/**
 * Bounds on the poll exponent (log2 seconds) a server echoes back: RFC 5905 §7.2 gives MINPOLL = 4 (16 s)
 * and MAXPOLL = 17 (36 h). A request's poll outside this range is clamped, never echoed as sent.
 */
export const POLL_MIN = 4;
export const POLL_MAX = 17;

/** Stratum 0 in a reply means "unspecified or invalid": the packet is a kiss-o'-death (RFC 5905 §7.4). */
export const STRATUM_KISS = 0;

// RFC 7822 §3 and the RFC 5905 §7.5 erratum (EID 3627): extension field sizes, header included.
/** Every extension field is at least 16 octets and a multiple of 4. */
export const EXTENSION_MIN_LENGTH = 16;
/** With no MAC after it, the last extension field is at least 28 octets, so it cannot pass for a MAC. */
export const EXTENSION_MIN_LAST_LENGTH = 28;
/** Type (16 bits) + length (16 bits). */
export const EXTENSION_HEADER_LENGTH = 4;

// The legacy MAC after the header/extensions (RFC 5905 §7.3 and §9.2; RFC 1305 Appendix C).
/** Key identifier alone: the crypto-NAK a server sends when it cannot authenticate a request. */
export const MAC_CRYPTO_NAK_LENGTH = 4;
/** Key identifier + 128-bit MD5 digest. */
export const MAC_MD5_LENGTH = 20;
/** Key identifier + 160-bit SHA-1 digest (also AES-CMAC truncated to 160 bits by NTPsec). */
export const MAC_SHA1_LENGTH = 24;
/** Anything longer than this after the last parsed field must begin with an extension field. */
export const MAC_MAX_LENGTH = 24;

/**
 * The most extension-field octets we accept in one packet. RFC 5905/7822 set no limit; we take chrony's
 * 1024 (its NTP_MAX_EXTENSIONS_LENGTH), enough for an NTS request (RFC 8915 §5.7: unique identifier,
 * cookie, up to seven cookie placeholders of ~100 octets, authenticator) and far less than a datagram.
 */
export const NTP_MAX_EXTENSIONS_LENGTH = 1024;
/**
 * The longest packet accepted: header + extensions budget + the longest MAC = 1096 octets. It stays under
 * IPv6's minimum MTU (1280 - 40 - 8 = 1232 octets of UDP payload), so a packet we accept never needed
 * fragmenting on any path, and a flood of jumbo datagrams costs us nothing beyond a length compare.
 */
export const NTP_MAX_PACKET_LENGTH = NTP_HEADER_LENGTH + NTP_MAX_EXTENSIONS_LENGTH + MAC_MAX_LENGTH;
