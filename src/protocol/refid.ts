// Refids for people (RFC 5905 §7.3). What the 32 bits mean depends on the stratum, so the stratum comes
// with them: at stratum 2-15 the refid names the upstream server (its IPv4 address, or the first four
// octets of the MD5 of its IPv6 address), shown as a dotted quad, as ntpq shows it; at stratum 0 (a kiss
// code), 1 (a reference clock's name) and 16 (unsynchronised: ntpd's "INIT", "STEP") it is ASCII, left
// justified and NUL padded. Without the stratum an upstream 76.79.67.76 would read as "LOCL". One function
// for every display: the HTTP endpoint, the dashboard, mode 6 (which quotes what ntpq would misread) and the
// CLI.

/** Octets that may stand in a refid shown as text: printable ASCII but space, quote, comma and backslash. */
function isPlain(c: number): boolean {
  return c > 0x20 && c < 0x7f && c !== 0x22 && c !== 0x2c && c !== 0x5c;
}

/**
 * A refid for display: a dotted quad at stratum 2-15; otherwise its ASCII up to the first NUL, or, if an
 * octet before it is not plain printable ASCII, the 32 bits in hex ("0x01020304").
 */
export function refIdText(refId: number, stratum: number): string {
  const r = refId >>> 0;
  if (stratum >= 2 && stratum <= 15)
    return `${r >>> 24}.${(r >>> 16) & 0xff}.${(r >>> 8) & 0xff}.${r & 0xff}`;
  let s = "";
  for (let shift = 24; shift >= 0; shift -= 8) {
    const c = (r >>> shift) & 0xff;
    if (c === 0) break;
    if (!isPlain(c)) return `0x${r.toString(16).padStart(8, "0")}`;
    s += String.fromCharCode(c);
  }
  return s;
}
