// The blocklist's entries as the store hands them out, and the writes it takes in (paper §11: an address
// kept "indefinitely", or here until an expiry, with why it was put there and how often it was seen since).

export type BlocklistSource = "auto" | "manual";

/** One row of the blocklist. Times are ms since the epoch. */
export interface BlocklistEntry {
  /**
   * Canonical text: dotted quad for IPv4 (IPv4-mapped unmapped), RFC 5952 for IPv6; an automatic entry is
   * "prefix/length" where the server knows clients by a prefix shorter than the address ([mru] ipv6-prefix).
   */
  address: string;
  reason: string;
  /** When the address was first put on the list (reset when it comes back after expiring). */
  addedMs: number;
  /** The last write or hit. */
  updatedMs: number;
  /** When the entry stops counting; null = for ever. */
  expiresMs: number | null;
  /** KoDs that put it there plus the packets discarded since (as the server reports them). */
  hits: number;
  source: BlocklistSource;
}

/** What a writer hands in. The address (or prefix) may be in any text form; it is stored canonical. */
export interface BlocklistWrite {
  address: string;
  reason: string;
  source: BlocklistSource;
  /** null or omitted = for ever. */
  expiresMs?: number | null | undefined;
  /** Added to the entry's count (default 0). */
  hits?: number | undefined;
  /** When it happened (default: the store's clock). */
  atMs?: number | undefined;
}
