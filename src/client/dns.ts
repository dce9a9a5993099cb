// Names resolved by chosen DNS servers rather than the system's (paper §7: a server name that rotates over
// many addresses). Every call asks again, both families at once, and returns every address given: the
// client chooses among all of them each time (query.ts, source.ts) and never keeps one for good.

import { Resolver as DnsResolver } from "node:dns/promises";
import { isIP } from "node:net";
import type { ResolvedAddress } from "./address.ts";
import type { Resolver } from "./client.ts";

/** A Resolver that asks `servers` ("ADDR" or "ADDR:PORT", "[v6]:PORT") for A and AAAA records. */
export function dnsResolver(servers: readonly string[], options: { timeoutMs?: number } = {}): Resolver {
  const r = new DnsResolver({ timeout: options.timeoutMs ?? 2000, tries: 2 });
  r.setServers([...servers]);
  return async (host) => {
    const family = isIP(host);
    if (family !== 0) return [{ address: host, family: family === 6 ? 6 : 4 }];
    const [v4, v6] = await Promise.allSettled([r.resolve4(host), r.resolve6(host)]);
    const out: ResolvedAddress[] = [];
    if (v4.status === "fulfilled") for (const a of v4.value) out.push({ address: a, family: 4 });
    if (v6.status === "fulfilled") for (const a of v6.value) out.push({ address: a, family: 6 });
    // Neither family answered: the first error says why (ENOTFOUND, ETIMEOUT, ...).
    if (out.length === 0 && v4.status === "rejected") throw v4.reason;
    return out;
  };
}
