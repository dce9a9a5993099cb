// The server's own addresses, for the warning before an operator blocks one (src/defence/blocklist-input.ts):
// its listen hosts, and every address of the machine's interfaces when one of them is a wildcard.

import { networkInterfaces } from "node:os";
import { canonicalAddress } from "../../defence/blocklist.ts";

/** Canonical addresses of `hosts` (names skipped); a wildcard (0.0.0.0, ::) adds the interfaces' addresses. */
export function ownAddresses(hosts: readonly string[]): string[] {
  const out = new Set<string>();
  let wildcard = false;
  for (const h of hosts) {
    try {
      const a = canonicalAddress(h);
      if (a === "0.0.0.0" || a === "::") wildcard = true;
      else out.add(a);
    } catch {
      // A host name: not ours to resolve here.
    }
  }
  if (wildcard) {
    for (const list of Object.values(networkInterfaces())) {
      for (const i of list ?? []) {
        try {
          out.add(canonicalAddress(i.address.split("%")[0]!));
        } catch {
          // Not an address we can key: skip it.
        }
      }
    }
  }
  return [...out];
}
