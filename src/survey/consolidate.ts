// Consolidating the MRU lists of several servers into the figures of the paper's NIST survey (§5): the
// window the lists cover, the packets and rate captured in it and the share of all arrivals that is,
// the bursters (mean packet spacing under 5 s) with their share of the load, the bursters by rate and by
// burst duration, the top elephants, and the load-share curve behind "14 percent of the clients account
// for 78 percent of the total load". Pure: snapshots in, figures out, no I/O and no clock, so the CLI (over
// HTTP) and the simulator (over its simulated servers) run the same code. docs/survey.md explains each
// figure and where the paper is ambiguous; the short version:
//
// Window. An MRU list is ordered by last use, so once a list has lost a record (evicted or recycled), it
// still holds every client heard since its oldest record's lastSeen (the paper's lists were "swept out
// after only nine seconds": a 9 s window); a list that never lost one holds every client since the server
// started. The survey's window is the span common to all lists: from the latest of those starts to the
// earliest takenAt. Only packets in it are counted, so a skew between snapshots shortens the window
// instead of counting one server's last seconds alone.
//
// Records and clients. A record says (count, firstSeen, lastSeen). Its packets in the window are estimated
// as if evenly spaced from firstSeen to lastSeen (exact for a steady client; a count, so an integer). A
// client is an address: its records on all servers merge into one (counts and packets add up, firstSeen
// is the earliest, lastSeen the latest), since a balancer spreads one client's packets over the servers
// ("this assumes the load balancer distributes incoming packets at random to the three machines").
//
// Rate and duration of a burst. Duration = lastSeen - firstSeen of the merged client; mean spacing =
// duration / (count - 1); burst rate = 1 / spacing (packets per second while it lasted). A burster is a
// client whose mean spacing is under 5 s. The load a client puts on the servers in the window is its
// packets in the window; its share of the load is that over all packets in the window. Bins classify
// bursters by burst rate and by duration, and total their load in the window, so bins add up to the
// bursters' figures and, with the non-bursters, to 100%.

import { formatPrefixKey, KEY_WORDS, parsePrefixKey } from "../defence/address-key.ts";
import { SurveyError } from "./errors.ts";
import type { Snapshot } from "./snapshot.ts";

export interface SurveyOptions {
  /** A burster's mean packet spacing is under this many seconds (the paper's 5). */
  burstSpacing?: number;
  /** Elephants to list. */
  top?: number;
  /** Burst-rate bin edges in packets per second, increasing: [1, 2, 5] gives under 1, 1-2, 2-5, 5 or more. */
  rateEdges?: readonly number[];
  /** Burst-duration bin edges in seconds, increasing: a minute, an hour, a day. */
  durationEdges?: readonly number[];
  /** Most points of the load-share curve in the result (evenly chosen; the figures use every client). */
  maxCurvePoints?: number;
  /** A window of one's own choosing (Unix seconds) instead of the span common to all lists. */
  window?: { start: number; end: number } | undefined;
}

export const SURVEY_DEFAULTS = Object.freeze({
  burstSpacing: 5,
  top: 10,
  rateEdges: Object.freeze([1, 2, 5]) as readonly number[],
  durationEdges: Object.freeze([60, 3600, 86400]) as readonly number[],
  maxCurvePoints: 1001,
});

/** The span given to a burst of several packets with one timestamp, so that its rate stays finite. */
export const MIN_BURST_SPAN = 0.001;

/** Load shares at which the result says what share of the clients carries them. */
export const CURVE_TARGETS: readonly number[] = Object.freeze([0.5, 0.8, 0.9]);
/** Client shares at which the result says what share of the load they carry. */
export const CURVE_CLIENT_SHARES: readonly number[] = Object.freeze([0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1]);

// Tolerance, in units of a record's spacing, when deciding whether a packet time falls in the window.
const EPS = 1e-9;

/** One server as the survey saw it. */
export interface SurveyServer {
  server: string;
  /** The server's clock when its snapshot was taken, and that minus the earliest takenAt. */
  takenAt: number;
  offset: number;
  startedAt: number;
  /** From when its list holds every client heard: since start, or since its oldest record's lastSeen. */
  coverageStart: number;
  coverage: "since-start" | "oldest-record";
  /** Records in its snapshot; clients of the window among them; their packets in the window. */
  records: number;
  clientsInWindow: number;
  packetsInWindow: number;
  /** Its counter of datagrams received since start. */
  received: number;
  /** received / uptime: the mean arrival rate since start. */
  arrivalRate: number | null;
  /**
   * Arrivals in the window: received times the share of the list's packets that fall in it when the list is
   * complete since start (coverage "since-start"), else the mean arrival rate times the window.
   */
  arrivalsInWindow: number | null;
  /** packetsInWindow / arrivalsInWindow. */
  arrivalShare: number | null;
  mru: Snapshot["mru"];
}

/** One client (an address) with its records on every server merged. */
export interface SurveyClient {
  address: string;
  /** Names of the servers whose lists hold it, sorted. */
  servers: string[];
  records: number;
  /** Packets in its records (since each record began), firstSeen and lastSeen over all of them. */
  count: number;
  firstSeen: number;
  lastSeen: number;
  /** lastSeen - firstSeen: how long the burst has lasted. */
  duration: number;
  /** Mean interval between its packets, duration / (count - 1); null for a single packet. */
  spacing: number | null;
  /** Packets per second while the burst lasted, 1 / spacing; 0 for a single packet. */
  burstRate: number;
  /** Its packets in the window (estimated, evenly spaced), that over the window, and its share of the load. */
  packets: number;
  rate: number;
  share: number;
  /** Mean spacing under the burst spacing (5 s). */
  burster: boolean;
  /** A burster whose burst was already on when a server started: the duration is a lower bound. */
  sinceStart: boolean;
  gapped: number;
  kods: number;
  restrictions: string[];
}

/** A group of clients (bursters of a rate or duration bin, or the non-bursters). Shares are fractions. */
export interface SurveyGroup {
  clients: number;
  /** Of all clients in the window. */
  clientShare: number;
  packets: number;
  /** Packets in the window over the window, PPS. */
  rate: number;
  /** Of all packets in the window. */
  loadShare: number;
}

export interface SurveyBin extends SurveyGroup {
  label: string;
  /** The bin holds burst rates (PPS) or durations (s) from `from` (included) to `to` (excluded; null: no end). */
  from: number;
  to: number | null;
}

/** A point of the load-share curve: the heaviest `clients` share of the clients carries `load` of it. */
export interface CurvePoint {
  clients: number;
  load: number;
}

export interface SurveyResult {
  format: 1;
  options: { burstSpacing: number; top: number; rateEdges: number[]; durationEdges: number[] };
  servers: SurveyServer[];
  /** takenAt spread between the snapshots (server clocks), seconds. */
  skew: number;
  window: {
    start: number;
    end: number;
    duration: number;
    /** "common": the span common to all lists; "given": options.window. */
    kind: "common" | "given";
    /** The servers whose list coverage sets the start and whose snapshot time sets the end. */
    startServer: string | null;
    endServer: string | null;
  };
  /** Records in all snapshots. */
  records: number;
  /** Distinct clients with a packet in the window; those whose records all end before it. */
  clients: number;
  clientsOutsideWindow: number;
  /** Clients of the window seen by more than one server. */
  sharedClients: number;
  /** Packets captured in the window, and that per second. */
  packets: number;
  rate: number;
  /** Arrivals in the window estimated from the counters, and the share of them captured. */
  arrivals: { estimated: number | null; share: number | null };
  /** Bursters: also how many records they hold (the paper's "1,094 ... from 574 different clients"). */
  bursters: SurveyGroup & { records: number };
  nonBursters: SurveyGroup;
  byRate: SurveyBin[];
  byDuration: SurveyBin[];
  curve: {
    points: CurvePoint[];
    /** For each target load share, the smallest share of the clients (heaviest first) that carries it. */
    clientsFor: { load: number; clients: number }[];
    /** For each client share, the load share its heaviest clients carry. */
    at: CurvePoint[];
  };
  elephants: SurveyClient[];
  /** How evenly the clients spread over the servers (a fleet behind a balancer, §7, §12). */
  balance: SurveyBalance;
  warnings: string[];
}

/**
 * The spread of the window's clients over the servers. Behind a source-hash balancer every client meets
 * one server, the shares are even and `sharedClients` is 0; round robin puts every client on every server.
 */
export interface SurveyBalance {
  /** Per server (in name order): its clients of the window and their share of the sum over the servers. */
  servers: { server: string; clients: number; share: number; packets: number; packetShare: number }[];
  /** Mean clients per server, the most on one, their ratio (1 = even), and the coefficient of variation. */
  mean: number;
  max: number;
  maxOverMean: number;
  cv: number;
  /** The same ratio and coefficient for the packets. */
  packetsMaxOverMean: number;
  packetsCv: number;
}

/** max/mean and the coefficient of variation (population standard deviation over the mean) of `xs`. */
function spread(xs: readonly number[]): { mean: number; max: number; maxOverMean: number; cv: number } {
  if (xs.length === 0) return { mean: 0, max: 0, maxOverMean: 0, cv: 0 };
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const max = Math.max(...xs);
  if (mean === 0) return { mean, max, maxOverMean: 0, cv: 0 };
  const variance = xs.reduce((a, x) => a + (x - mean) ** 2, 0) / xs.length;
  return { mean, max, maxOverMean: max / mean, cv: Math.sqrt(variance) / mean };
}

/** The balance figures from the servers' rows. */
export function balanceOf(servers: readonly SurveyServer[]): SurveyBalance {
  const clients = servers.map((s) => s.clientsInWindow);
  const packets = servers.map((s) => s.packetsInWindow);
  const sumC = clients.reduce((a, b) => a + b, 0);
  const sumP = packets.reduce((a, b) => a + b, 0);
  const c = spread(clients);
  const p = spread(packets);
  return {
    servers: servers.map((s) => ({
      server: s.server,
      clients: s.clientsInWindow,
      share: sumC > 0 ? s.clientsInWindow / sumC : 0,
      packets: s.packetsInWindow,
      packetShare: sumP > 0 ? s.packetsInWindow / sumP : 0,
    })),
    mean: c.mean,
    max: c.max,
    maxOverMean: c.maxOverMean,
    cv: c.cv,
    packetsMaxOverMean: p.maxOverMean,
    packetsCv: p.cv,
  };
}

function optionError(message: string): never {
  throw new SurveyError("ERR_SURVEY_OPTION", message);
}

function checkEdges(name: string, edges: readonly number[]): number[] {
  if (!Array.isArray(edges)) optionError(`${name} must be an array of numbers`);
  for (let i = 0; i < edges.length; i++) {
    const e = edges[i]!;
    if (typeof e !== "number" || !Number.isFinite(e) || e <= 0)
      optionError(`${name}[${i}] must be a positive number, got ${e}`);
    if (i > 0 && e <= edges[i - 1]!) optionError(`${name} must increase: ${edges[i - 1]} then ${e}`);
  }
  return [...edges];
}

function resolveOptions(options: SurveyOptions) {
  const burstSpacing = options.burstSpacing ?? SURVEY_DEFAULTS.burstSpacing;
  if (typeof burstSpacing !== "number" || !Number.isFinite(burstSpacing) || burstSpacing <= 0)
    optionError(`burstSpacing must be a positive number of seconds, got ${burstSpacing}`);
  const top = options.top ?? SURVEY_DEFAULTS.top;
  if (!Number.isInteger(top) || top < 0) optionError(`top must be an integer of at least 0, got ${top}`);
  const maxCurvePoints = options.maxCurvePoints ?? SURVEY_DEFAULTS.maxCurvePoints;
  if (!Number.isInteger(maxCurvePoints) || maxCurvePoints < 2)
    optionError(`maxCurvePoints must be an integer of at least 2, got ${maxCurvePoints}`);
  const w = options.window;
  if (w !== undefined && !(Number.isFinite(w.start) && Number.isFinite(w.end) && w.start < w.end))
    throw new SurveyError("ERR_SURVEY_NO_WINDOW", `window must have a finite start before its end`);
  return {
    burstSpacing,
    top,
    maxCurvePoints,
    rateEdges: checkEdges("rateEdges", options.rateEdges ?? SURVEY_DEFAULTS.rateEdges),
    durationEdges: checkEdges("durationEdges", options.durationEdges ?? SURVEY_DEFAULTS.durationEdges),
    window: w,
  };
}

/**
 * Packets of a record (count packets from firstSeen to lastSeen) whose times fall in [start, end], the
 * packets taken as evenly spaced; both ends of the window are included. A single packet, or several at one
 * instant, count wholly or not at all.
 */
export function packetsInSpan(
  count: number,
  firstSeen: number,
  lastSeen: number,
  start: number,
  end: number,
) {
  if (count <= 0 || end < start || lastSeen < start || firstSeen > end) return 0;
  if (count === 1 || lastSeen === firstSeen) return count;
  const step = (lastSeen - firstSeen) / (count - 1);
  const lo = Math.max(0, Math.ceil((start - firstSeen) / step - EPS));
  const hi = Math.min(count - 1, Math.floor((end - firstSeen) / step + EPS));
  return hi >= lo ? hi - lo + 1 : 0;
}

/** Where a list is complete from: since start if it never lost a record, else its oldest lastSeen. */
export function coverageOf(s: Snapshot): { start: number; coverage: "since-start" | "oldest-record" } {
  const lost = s.mru.evicted + s.mru.recycled > 0 || s.clients.length < s.mru.size;
  if (!lost) return { start: s.startedAt, coverage: "since-start" };
  let oldest = Number.POSITIVE_INFINITY;
  for (const c of s.clients) if (c.lastSeen < oldest) oldest = c.lastSeen;
  // A list that lost records and lists none tells nothing about any span: it covers only its instant.
  if (oldest === Number.POSITIVE_INFINITY) return { start: s.takenAt, coverage: "oldest-record" };
  return { start: Math.max(oldest, s.startedAt), coverage: "oldest-record" };
}

/**
 * The canonical text of an address (dotted quad for IPv4 and IPv4-mapped, RFC 5952 otherwise), or of the
 * prefix a server knows a client by ("2001:db8:1:2::/64").
 */
export function canonicalAddress(address: string, server: string): string {
  const key = new Uint32Array(KEY_WORDS);
  const bits = parsePrefixKey(address, key);
  if (bits < 0)
    throw new SurveyError(
      "ERR_SURVEY_FORMAT",
      `${server}: client address ${JSON.stringify(address)} is not an IP address`,
      {
        server,
      },
    );
  return formatPrefixKey(key, bits);
}

interface Acc {
  address: string;
  /** Server names, unique (a client is on a handful of lists at most). */
  servers: string[];
  records: number;
  count: number;
  firstSeen: number;
  lastSeen: number;
  packets: number;
  gapped: number;
  kods: number;
  restrictions: Set<string> | undefined;
  /** A record beginning at firstSeen began within about one of its spacings of its server's start. */
  nearStart: boolean;
}

function compareSnapshots(a: Snapshot, b: Snapshot): number {
  if (a.server !== b.server) return a.server < b.server ? -1 : 1;
  return a.takenAt - b.takenAt || a.startedAt - b.startedAt || a.clients.length - b.clients.length;
}

/** Heaviest first: packets in the window, then burst rate, then address (so the order is total). */
export function compareClients(a: SurveyClient, b: SurveyClient): number {
  return (
    b.packets - a.packets ||
    b.burstRate - a.burstRate ||
    (a.address < b.address ? -1 : a.address > b.address ? 1 : 0)
  );
}

/**
 * Every client of the snapshots with its records merged, its packets counted in [start, end] and its
 * burst figures computed (rate and share are left 0: they need the totals). Order-independent.
 */
export function mergeClients(
  snapshots: readonly Snapshot[],
  start: number,
  end: number,
  burstSpacing: number = SURVEY_DEFAULTS.burstSpacing,
): SurveyClient[] {
  const byAddress = new Map<string, Acc>();
  // Each address is parsed once, however many lists hold it.
  const canonical = new Map<string, string>();
  for (const s of snapshots) {
    for (const c of s.clients) {
      let address = canonical.get(c.address);
      if (address === undefined) {
        address = canonicalAddress(c.address, s.server);
        canonical.set(c.address, address);
      }
      // The limit of observation: a record that began within about one of its spacings (at least 1 s) of
      // its server's start may belong to a burst that was on before (the paper's worst two, "over two days").
      const recordSpacing =
        c.count > 1 ? (c.lastSeen - c.firstSeen) / (c.count - 1) : Number.POSITIVE_INFINITY;
      const nearStart = c.firstSeen - s.startedAt <= Math.max(1, Math.min(recordSpacing, 2 * burstSpacing));
      let a = byAddress.get(address);
      if (a === undefined) {
        a = {
          address,
          servers: [],
          records: 0,
          count: 0,
          firstSeen: c.firstSeen,
          lastSeen: c.lastSeen,
          packets: 0,
          gapped: 0,
          kods: 0,
          restrictions: undefined,
          nearStart,
        };
        byAddress.set(address, a);
      } else if (c.firstSeen < a.firstSeen) {
        a.firstSeen = c.firstSeen;
        a.nearStart = nearStart;
      } else if (c.firstSeen === a.firstSeen) {
        a.nearStart ||= nearStart;
      }
      if (!a.servers.includes(s.server)) a.servers.push(s.server);
      a.records++;
      a.count += c.count;
      if (c.lastSeen > a.lastSeen) a.lastSeen = c.lastSeen;
      a.packets += packetsInSpan(c.count, c.firstSeen, c.lastSeen, start, end);
      a.gapped += c.gapped;
      a.kods += c.kods;
      if (c.restrictions.length > 0) {
        a.restrictions ??= new Set();
        for (const r of c.restrictions) a.restrictions.add(r);
      }
    }
  }
  const out: SurveyClient[] = [];
  for (const a of byAddress.values()) {
    const duration = a.lastSeen - a.firstSeen;
    const spacing = a.count > 1 ? duration / (a.count - 1) : null;
    const burstRate = a.count > 1 ? (a.count - 1) / Math.max(duration, MIN_BURST_SPAN) : 0;
    const burster = spacing !== null && spacing < burstSpacing;
    out.push({
      address: a.address,
      servers: a.servers.length > 1 ? a.servers.sort() : a.servers,
      records: a.records,
      count: a.count,
      firstSeen: a.firstSeen,
      lastSeen: a.lastSeen,
      duration,
      spacing,
      burstRate,
      packets: a.packets,
      rate: 0,
      share: 0,
      burster,
      sinceStart: burster && a.nearStart,
      gapped: a.gapped,
      kods: a.kods,
      restrictions: a.restrictions === undefined ? [] : [...a.restrictions].sort(),
    });
  }
  return out;
}

function group(clients: number, packets: number, allClients: number, allPackets: number, window: number) {
  return {
    clients,
    clientShare: allClients > 0 ? clients / allClients : 0,
    packets,
    rate: packets / window,
    loadShare: allPackets > 0 ? packets / allPackets : 0,
  };
}

function binIndex(value: number, edges: readonly number[]): number {
  let i = 0;
  while (i < edges.length && value >= edges[i]!) i++;
  return i;
}

function rateLabel(from: number, to: number | null): string {
  if (from === 0) return `under ${to} PPS`;
  if (to === null) return `${from} PPS or more`;
  return `${from}-${to} PPS`;
}

const NAMED_SPANS: Record<number, string> = {
  1: "a second",
  60: "a minute",
  3600: "an hour",
  86400: "a day",
};

function spanName(seconds: number): string {
  return NAMED_SPANS[seconds] ?? `${seconds} s`;
}

function durationLabel(from: number, to: number | null): string {
  if (to === null) return `${spanName(from)} or more`;
  return `under ${spanName(to)}`;
}

function bins(
  bursters: readonly SurveyClient[],
  edges: readonly number[],
  measure: (c: SurveyClient) => number,
  label: (from: number, to: number | null) => string,
  allClients: number,
  allPackets: number,
  window: number,
): SurveyBin[] {
  const clients = new Array<number>(edges.length + 1).fill(0);
  const packets = new Array<number>(edges.length + 1).fill(0);
  for (const c of bursters) {
    const i = binIndex(measure(c), edges);
    clients[i]!++;
    packets[i]! += c.packets;
  }
  return clients.map((n, i) => {
    const from = i === 0 ? 0 : edges[i - 1]!;
    const to = i < edges.length ? edges[i]! : null;
    return { label: label(from, to), from, to, ...group(n, packets[i]!, allClients, allPackets, window) };
  });
}

/** The load-share curve of clients sorted heaviest first (their packets in the window). */
function curveOf(sorted: readonly SurveyClient[], total: number, maxPoints: number): SurveyResult["curve"] {
  const n = sorted.length;
  const cumulative = new Array<number>(n + 1);
  cumulative[0] = 0;
  for (let i = 0; i < n; i++) cumulative[i + 1] = cumulative[i]! + sorted[i]!.packets;
  const share = (k: number) => (total > 0 ? cumulative[k]! / total : 0);
  const points: CurvePoint[] = [];
  if (n + 1 <= maxPoints) {
    for (let k = 0; k <= n; k++) points.push({ clients: n > 0 ? k / n : 0, load: share(k) });
  } else {
    let last = -1;
    for (let j = 0; j < maxPoints; j++) {
      const k = Math.round((j * n) / (maxPoints - 1));
      if (k === last) continue;
      last = k;
      points.push({ clients: k / n, load: share(k) });
    }
  }
  const clientsFor = CURVE_TARGETS.map((load) => {
    let k = 0;
    // Integers compared with a product: the smallest k whose clients carry at least `load` of the total.
    while (k < n && cumulative[k]! < load * total * (1 - 1e-12)) k++;
    return { load, clients: n > 0 ? k / n : 0 };
  });
  const at = CURVE_CLIENT_SHARES.map((clients) => {
    const x = clients * n;
    const k = Math.min(n, Math.floor(x));
    const partial = k < n ? (x - k) * sorted[k]!.packets : 0;
    return { clients, load: total > 0 ? (cumulative[k]! + partial) / total : 0 };
  });
  return { points, clientsFor, at };
}

/**
 * The survey of `snapshots` (one per server, taken at substantially the same instant): every figure of
 * the paper's §5 (see the file header and docs/survey.md). Throws SurveyError: ERR_SURVEY_NO_SNAPSHOTS,
 * ERR_SURVEY_OPTION, ERR_SURVEY_NO_WINDOW (the lists share no span of time), ERR_SURVEY_FORMAT (a client
 * address that is not one). The result does not depend on the order of the snapshots or of their clients.
 */
export function consolidate(snapshots: readonly Snapshot[], options: SurveyOptions = {}): SurveyResult {
  const o = resolveOptions(options);
  if (snapshots.length === 0) throw new SurveyError("ERR_SURVEY_NO_SNAPSHOTS", "no snapshot to consolidate");
  const sorted = [...snapshots].sort(compareSnapshots);
  const coverages = sorted.map(coverageOf);
  const warnings: string[] = [];

  // The window: the span common to all lists, unless one was given.
  let start: number;
  let end: number;
  let startServer: string | null = null;
  let endServer: string | null = null;
  if (o.window !== undefined) {
    start = o.window.start;
    end = o.window.end;
  } else {
    start = Number.NEGATIVE_INFINITY;
    end = Number.POSITIVE_INFINITY;
    sorted.forEach((s, i) => {
      if (coverages[i]!.start > start) {
        start = coverages[i]!.start;
        startServer = s.server;
      }
      if (s.takenAt < end) {
        end = s.takenAt;
        endServer = s.server;
      }
    });
    if (!(end > start)) {
      throw new SurveyError(
        "ERR_SURVEY_NO_WINDOW",
        `the lists share no span of time: ${startServer}'s list covers only from ${start} s, but ` +
          `${endServer}'s snapshot was taken at ${end} s (${(start - end).toFixed(3)} s earlier); take the ` +
          `snapshots closer together, or give a window`,
      );
    }
  }
  const duration = end - start;

  const clientsAll = mergeClients(sorted, start, end, o.burstSpacing);
  const inWindow = clientsAll.filter((c) => c.packets > 0).sort(compareClients);
  const packets = inWindow.reduce((sum, c) => sum + c.packets, 0);
  const nClients = inWindow.length;
  for (const c of inWindow) {
    c.rate = c.packets / duration;
    c.share = packets > 0 ? c.packets / packets : 0;
  }
  const bursters = inWindow.filter((c) => c.burster);
  const burstPackets = bursters.reduce((sum, c) => sum + c.packets, 0);
  const burstRecords = bursters.reduce((sum, c) => sum + c.records, 0);

  // Servers, in name order (so that sums of fractions do not depend on the input's order).
  const earliest = Math.min(...sorted.map((s) => s.takenAt));
  const latest = Math.max(...sorted.map((s) => s.takenAt));
  const names = new Set<string>();
  const servers: SurveyServer[] = sorted.map((s, i) => {
    if (names.has(s.server))
      warnings.push(
        `two snapshots call themselves ${s.server}: if they are one server, its packets count twice`,
      );
    names.add(s.server);
    let clientsInWindow = 0;
    let packetsInWindow = 0;
    let recorded = 0;
    for (const c of s.clients) {
      const n = packetsInSpan(c.count, c.firstSeen, c.lastSeen, start, end);
      if (n > 0) clientsInWindow++;
      packetsInWindow += n;
      recorded += c.count;
    }
    const uptime = s.takenAt - s.startedAt;
    const arrivalRate = uptime > 0 ? s.counters.received / uptime : null;
    // A list complete since start shows when its packets came: the counter is spread over time as they
    // are. Otherwise all that is known is the mean rate since start.
    const fromList = coverages[i]!.coverage === "since-start" && recorded > 0;
    const arrivalsInWindow = fromList
      ? (s.counters.received * packetsInWindow) / recorded
      : arrivalRate === null
        ? null
        : arrivalRate * duration;
    if (s.mru.refused > 0)
      warnings.push(
        `${s.server}'s list refused ${s.mru.refused} newcomers while full: it is a sample of its clients, not a census`,
      );
    return {
      server: s.server,
      takenAt: s.takenAt,
      offset: s.takenAt - earliest,
      startedAt: s.startedAt,
      coverageStart: coverages[i]!.start,
      coverage: coverages[i]!.coverage,
      records: s.clients.length,
      clientsInWindow,
      packetsInWindow,
      received: s.counters.received,
      arrivalRate,
      arrivalsInWindow,
      arrivalShare:
        arrivalsInWindow !== null && arrivalsInWindow > 0 ? packetsInWindow / arrivalsInWindow : null,
      mru: { ...s.mru },
    };
  });
  let estimated: number | null = 0;
  for (const s of servers)
    estimated = s.arrivalsInWindow === null || estimated === null ? null : estimated + s.arrivalsInWindow;
  const skew = latest - earliest;
  if (o.window === undefined && skew > Math.max(1, duration / 10))
    warnings.push(
      `the snapshots were taken ${skew.toFixed(3)} s apart (server clocks), a large part of the ${duration.toFixed(3)} s window`,
    );

  return {
    format: 1,
    options: {
      burstSpacing: o.burstSpacing,
      top: o.top,
      rateEdges: [...o.rateEdges],
      durationEdges: [...o.durationEdges],
    },
    servers,
    skew,
    balance: balanceOf(servers),
    window: {
      start,
      end,
      duration,
      kind: o.window === undefined ? "common" : "given",
      startServer,
      endServer,
    },
    records: sorted.reduce((sum, s) => sum + s.clients.length, 0),
    clients: nClients,
    clientsOutsideWindow: clientsAll.length - nClients,
    sharedClients: inWindow.filter((c) => c.servers.length > 1).length,
    packets,
    rate: packets / duration,
    arrivals: {
      estimated,
      share: estimated !== null && estimated > 0 ? packets / estimated : null,
    },
    bursters: { ...group(bursters.length, burstPackets, nClients, packets, duration), records: burstRecords },
    nonBursters: group(nClients - bursters.length, packets - burstPackets, nClients, packets, duration),
    byRate: bins(bursters, o.rateEdges, (c) => c.burstRate, rateLabel, nClients, packets, duration),
    byDuration: bins(
      bursters,
      o.durationEdges,
      (c) => c.duration,
      durationLabel,
      nClients,
      packets,
      duration,
    ),
    curve: curveOf(inWindow, packets, o.maxCurvePoints),
    elephants: inWindow.slice(0, o.top),
    warnings,
  };
}
