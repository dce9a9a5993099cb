// Refids for people: the monitoring endpoint's /api/stats and dashboard show the served clock's refid
// (RFC 5905 §7.3) without asking what the stratum is, so the text form is guessed from the octets.

/** A refid for people: four printable ASCII characters as text ("LOCL", "GPS"), else a dotted quad. */
export function refIdDisplay(refId: number): string {
  const r = refId >>> 0;
  const bytes = [r >>> 24, (r >>> 16) & 255, (r >>> 8) & 255, r & 255];
  let text = "";
  let ended = false;
  let ascii = bytes[0]! !== 0;
  for (const b of bytes) {
    if (b === 0) ended = true;
    else if (ended || b < 0x20 || b > 0x7e) ascii = false;
    else text += String.fromCharCode(b);
  }
  return ascii ? text : bytes.join(".");
}
