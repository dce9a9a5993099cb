// The IPv4 multicast BCP (draft-nickless-ipv4-mcast-bcp-01, April 2001) as checks on the operator's
// multicast configuration (paper §9, MISSION part 8). Pure: addresses and TTLs in, findings out. The BCP's
// sections are unnumbered, so each finding cites its section by title.
//
// What the BCP says and what each check makes of it:
// - "Introduction and Terminology": a group G is an address of 224/4. Anything else is no group (error).
// - "Model IPv4 Multicast Inter-domain PIM Sparse Mode Configuration": the TTL threshold at an AS border is
//   generally 32 (earlier practice put inter-institution barriers at 16-32); a router forwards a packet over
//   a boundary only while its TTL exceeds the threshold. So a TTL above 32 leaves the domain, 16-32 depends
//   on the border, 15 or less stays inside. 224.0.1.39, 224.0.1.40 (Cisco's RP announcement and discovery)
//   and 239/8 (administratively scoped, RFC 2365) are never requested across a border.
// - "Model MSDP Configuration Between Autonomous Systems": sources in 224.0.1.2, .3, .22, .24, .35, .39,
//   .40, .60, 224.0.2.2, 229.55.150.208, 232/8 and 239/8 are neither advertised to nor accepted from other
//   domains, nor are sources with private addresses (RFC 1918).
// - "Source Specific Multicast": in 232/8 receivers join (S,G) with IGMPv3: a sender needs a fixed source
//   address S that they name, and nothing any-source (manycast, a client that listens to any server) works.

import { parseIPv4, parseIPv6 } from "./address.ts";

export type FindingSeverity = "error" | "warning";

/** One BCP rule applied to one key. */
export interface MulticastFinding {
  /** The configuration key ("broadcast.destination[0].ttl") or the command-line flag. */
  readonly key: string;
  readonly severity: FindingSeverity;
  /** The rule's short name, stable for tests and logs ("not-a-group", "reserved-group", ...). */
  readonly rule: string;
  /** What is wrong and why, citing the BCP's section. */
  readonly reason: string;
}

/** How an address is used: sent to by a broadcast server, joined by a manycast server, asked by a client. */
export type MulticastUse = "broadcast" | "manycast" | "client";

/** The TTL threshold at an AS border ("Model IPv4 Multicast Inter-domain PIM Sparse Mode Configuration"). */
export const BORDER_TTL_THRESHOLD = 32;
/** The low end of the earlier inter-institution barriers (16-32, the MBone FAQ the BCP cites). */
export const INSTITUTION_TTL_LOW = 16;

const SECTION_INTRO = 'BCP "Introduction and Terminology"';
const SECTION_PIM = 'BCP "Model IPv4 Multicast Inter-domain PIM Sparse Mode Configuration"';
const SECTION_MSDP = 'BCP "Model MSDP Configuration Between Autonomous Systems"';
const SECTION_SSM = 'BCP "Source Specific Multicast"';

/** The single groups the BCP lists as filtered between domains, with what uses them. */
export const RESERVED_GROUPS: ReadonlyMap<string, string> = new Map([
  ["224.0.1.2", 'SGI "Dogfight"'],
  ["224.0.1.3", "RWHOD"],
  ["224.0.1.22", "SVRLOC"],
  ["224.0.1.24", "MICROSOFT-DS"],
  ["224.0.1.35", "SVRLOC-DA"],
  ["224.0.1.39", "Cisco's Rendezvous Point Announcement Protocol"],
  ["224.0.1.40", "Cisco's Rendezvous Point Discovery Protocol"],
  ["224.0.1.60", "HP's Device Discovery Protocol"],
  ["224.0.2.2", "Sun's Remote Procedure Call Protocol"],
  ["229.55.150.208", 'Norton "Ghost"'],
]);

function v4(s: string): number | undefined {
  const p = parseIPv4(s);
  return p === undefined ? undefined : ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

function inPrefix(addr: number, base: number, bits: number): boolean {
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return (addr & mask) >>> 0 === (base & mask) >>> 0;
}

/** 224/4: every IPv4 group ("Introduction and Terminology"). */
export function isIPv4Group(address: string): boolean {
  const a = v4(address);
  return a !== undefined && inPrefix(a, 0xe0000000, 4);
}

/** ff00::/8: every IPv6 group (RFC 4291 §2.7). */
export function isIPv6Group(address: string): boolean {
  const g = parseIPv6(address.replace(/%.*$/, ""));
  return g !== undefined && g[0]! >> 8 === 0xff;
}

/** 239/8, administratively scoped (RFC 2365). */
export function isAdminScoped(address: string): boolean {
  const a = v4(address);
  return a !== undefined && inPrefix(a, 0xef000000, 8);
}

/** 232/8, source-specific multicast. */
export function isSourceSpecific(address: string): boolean {
  const a = v4(address);
  return a !== undefined && inPrefix(a, 0xe8000000, 8);
}

/** 224.0.0/24, the local network control block: never forwarded by a router whatever the TTL (RFC 5771). */
export function isLinkLocalGroup(address: string): boolean {
  const a = v4(address);
  return a !== undefined && inPrefix(a, 0xe0000000, 24);
}

/** RFC 1918: 10/8, 172.16/12, 192.168/16. */
export function isPrivateIPv4(address: string): boolean {
  const a = v4(address);
  if (a === undefined) return false;
  return inPrefix(a, 0x0a000000, 8) || inPrefix(a, 0xac100000, 12) || inPrefix(a, 0xc0a80000, 16);
}

/** Whether a packet sent with `ttl` passes a border whose threshold is 32 (it must exceed it). */
export function crossesBorder(ttl: number): boolean {
  return ttl > BORDER_TTL_THRESHOLD;
}

export interface GroupUse {
  /** The key the address was given under, and the keys of its TTL and source (when they exist). */
  readonly key: string;
  readonly ttlKey?: string | undefined;
  readonly sourceKey?: string | undefined;
  readonly address: string;
  /** IPv4 TTL or IPv6 hop limit; undefined where the use sends nothing (a listening client). */
  readonly ttl?: number | undefined;
  /** The source address S (the interface the server sends from, or the source a client names). */
  readonly source?: string | undefined;
  readonly use: MulticastUse;
}

/**
 * The BCP's rules applied to one multicast address and how it is used. IPv6 groups are only checked for
 * being groups: the BCP is about IPv4, and an IPv6 group carries its scope in the address itself.
 */
export function groupFindings(g: GroupUse): MulticastFinding[] {
  const out: MulticastFinding[] = [];
  const ttlKey = g.ttlKey ?? g.key;
  const sourceKey = g.sourceKey ?? g.key;
  const add = (key: string, severity: FindingSeverity, rule: string, reason: string) =>
    out.push({ key, severity, rule, reason });
  if (g.address.includes(":")) {
    if (!isIPv6Group(g.address))
      add(
        g.key,
        "error",
        "not-a-group",
        `${g.address} is not an IPv6 multicast group (ff00::/8, RFC 4291 §2.7)`,
      );
    return out;
  }
  if (!isIPv4Group(g.address)) {
    add(
      g.key,
      "error",
      "not-a-group",
      `${g.address} is not an IPv4 multicast group: a group is in 224/4 (${SECTION_INTRO})`,
    );
    return out;
  }
  const reserved = RESERVED_GROUPS.get(g.address);
  if (reserved !== undefined) {
    add(
      g.key,
      "error",
      "reserved-group",
      `${g.address} belongs to ${reserved} and is filtered between domains; NTP must not use it ` +
        `(${SECTION_MSDP}${g.address === "224.0.1.39" || g.address === "224.0.1.40" ? `; ${SECTION_PIM}` : ""})`,
    );
    return out;
  }
  if (isSourceSpecific(g.address)) {
    if (g.use === "manycast") {
      add(
        g.key,
        "error",
        "ssm-any-source",
        `${g.address} is in 232/8, source-specific: receivers join (S,G) naming each source with IGMPv3, so ` +
          `a manycast request, which any server answers, cannot work there (${SECTION_SSM})`,
      );
    } else if (g.source === undefined || g.source === "") {
      add(
        sourceKey,
        "error",
        "ssm-needs-source",
        `${g.address} is in 232/8, source-specific: receivers join (S,G) with IGMPv3 and name the source S, ` +
          `so ${g.use === "client" ? "the source must be given" : "the address sent from must be set"} (${SECTION_SSM})`,
      );
    } else {
      add(
        g.key,
        "warning",
        "ssm-igmpv3",
        `${g.address} is in 232/8, source-specific: only receivers that join (${g.source},${g.address}) with ` +
          `IGMPv3 get it (${SECTION_SSM})`,
      );
    }
  }
  if (g.ttl === undefined) return out;
  if (isAdminScoped(g.address)) {
    if (crossesBorder(g.ttl))
      add(
        ttlKey,
        "warning",
        "admin-scope-ttl",
        `ttl ${g.ttl} with ${g.address} (239/8, administratively scoped, RFC 2365): above the border threshold ` +
          `of ${BORDER_TTL_THRESHOLD} it leaves the organisation wherever the border is a TTL threshold only; ` +
          `keep it at ${BORDER_TTL_THRESHOLD} or less (${SECTION_PIM})`,
      );
  } else if (isLinkLocalGroup(g.address)) {
    if (g.ttl > 1)
      add(
        ttlKey,
        "warning",
        "link-local-ttl",
        `ttl ${g.ttl} with ${g.address}: 224.0.0/24 is never forwarded by a router (RFC 5771), so a TTL above 1 ` +
          "only suggests a reach it does not have",
      );
  } else if (g.ttl >= INSTITUTION_TTL_LOW && !crossesBorder(g.ttl)) {
    add(
      ttlKey,
      "warning",
      "border-ttl",
      `ttl ${g.ttl} is within the inter-institution barriers (${INSTITUTION_TTL_LOW}-${BORDER_TTL_THRESHOLD}): ` +
        `whether it leaves the domain depends on the border; the threshold at an AS border is generally ` +
        `${BORDER_TTL_THRESHOLD}: use ${INSTITUTION_TTL_LOW - 1} or less to stay inside, above ` +
        `${BORDER_TTL_THRESHOLD} to cross (${SECTION_PIM})`,
    );
  }
  if (
    g.source !== undefined &&
    isPrivateIPv4(g.source) &&
    crossesBorder(g.ttl) &&
    !isAdminScoped(g.address)
  ) {
    add(
      sourceKey,
      "warning",
      "private-source",
      `source ${g.source} is a private address (RFC 1918): other domains neither accept nor advertise such ` +
        `sources, so a TTL of ${g.ttl} reaches no receiver beyond the site; use a public source or a TTL of ` +
        `${BORDER_TTL_THRESHOLD} or less (${SECTION_MSDP})`,
    );
  }
  return out;
}

/** The parts of the configuration the rules read (satisfied by Config). */
export interface MulticastConfig {
  readonly broadcast: {
    readonly destination: readonly {
      readonly address: string;
      readonly kind: string;
      readonly ttl: number;
      readonly interface: string;
    }[];
  };
  readonly manycast: { readonly group: readonly string[]; readonly interface: string };
}

/**
 * Every BCP finding of a configuration: each [[broadcast.destination]] of kind "multicast" and each
 * manycast group. A destination of kind "broadcast" is a subnet broadcast address, never a group: one in
 * 224/4 is refused, since it would be sent as multicast with none of these checks.
 */
export function multicastFindings(config: MulticastConfig): MulticastFinding[] {
  const out: MulticastFinding[] = [];
  config.broadcast.destination.forEach((d, i) => {
    const key = `broadcast.destination[${i}]`;
    if (d.kind === "broadcast") {
      if (d.address.includes(":") || isIPv4Group(d.address))
        out.push({
          key: `${key}.address`,
          severity: "error",
          rule: "broadcast-not-group",
          reason: `${d.address} is ${d.address.includes(":") ? "IPv6, which has no broadcast" : "a multicast group"}: use kind = "multicast"`,
        });
      return;
    }
    out.push(
      ...groupFindings({
        key: `${key}.address`,
        ttlKey: `${key}.ttl`,
        sourceKey: `${key}.interface`,
        address: d.address,
        ttl: d.ttl,
        source: d.interface === "" ? undefined : d.interface.replace(/%.*$/, ""),
        use: "broadcast",
      }),
    );
  });
  config.manycast.group.forEach((address, i) => {
    out.push(
      ...groupFindings({
        key: `manycast.group[${i}]`,
        sourceKey: "manycast.interface",
        address,
        source: config.manycast.interface === "" ? undefined : config.manycast.interface,
        use: "manycast",
      }),
    );
  });
  return out;
}
