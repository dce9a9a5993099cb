// The Prometheus exporter of /metrics (docs/monitoring.md): the text format and the metric families, apart
// from the HTTP server as ntpd-rs keeps its exporter apart from its daemon. It reads a MetricsInput taken
// when the scrape arrives and knows nothing of requests or sockets.

import { VERSION } from "../../base/version.ts";
import type { CounterSnapshot, FleetCounts } from "../../core/counters.ts";
import type { Defences } from "../../core/defences.ts";
import { REASON_NAMES } from "../../core/reasons.ts";
import type { ServeState } from "../../core/serve-state.ts";
import { NAME_COUNTER_NAMES } from "../../defence/names-cache.ts";
import { CLASS_NAMES, POOLS } from "../../defence/overload.ts";
import type { BlocklistStoreStats } from "../blocklist/index.ts";
import type { SharingStats } from "../blocklist/sharing.ts";
import { packetTotals } from "./packet-totals.ts";

/** The content type of a scrape (exposition format 0.0.4). */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** What one scrape shows, read from the server when it arrives. */
export interface MetricsInput {
  /** Seconds since the server started (its counters run from there). */
  uptimeS: number;
  counters: CounterSnapshot;
  /** The clock served; undefined until the clock source has started. */
  state: ServeState | undefined;
  defences: Defences;
  blocklist: BlocklistSummary;
  /** Broadcasts due by what became of them; absent where the source has no broadcaster. */
  broadcast?: Record<string, number> | undefined;
  /** Active redirection in a fleet; absent or undefined when no peers are configured. */
  fleet?: FleetCounts | undefined;
  /** NTS-KE connections by outcome (src/server/nts-ke.ts); absent while NTS is off. */
  nts?: Readonly<Record<string, number>> | undefined;
}

/** The blocklist as monitoring shows it: in use or not, its entries, and its database's write figures. */
export interface BlocklistSummary {
  enabled: boolean;
  entries: number;
  /** Absent when the blocklist is off. */
  database?: BlocklistStoreStats;
  /** The fleet's shared list in Redis; absent when not configured. */
  shared?: SharingStats;
}

interface Sample {
  labels?: Record<string, string>;
  value: number;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Number.POSITIVE_INFINITY) return "+Inf";
  if (v === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(v);
}

/** Prometheus text exposition format 0.0.4: a HELP and a TYPE line per family, then its samples. */
class MetricsText {
  private out: string[] = [];
  add(name: string, type: "counter" | "gauge", help: string, samples: Sample[] | number): void {
    this.out.push(`# HELP ${name} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`);
    this.out.push(`# TYPE ${name} ${type}`);
    const list = typeof samples === "number" ? [{ value: samples }] : samples;
    for (const s of list) {
      const labels = s.labels
        ? `{${Object.entries(s.labels)
            .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
            .join(",")}}`
        : "";
      this.out.push(`${name}${labels} ${formatValue(s.value)}`);
    }
  }
  text(): string {
    return `${this.out.join("\n")}\n`;
  }
}

/** The scrape's text: ntpd-rs's families where the meaning is the same, then ntpshield's own. */
export function metricsText(input: MetricsInput): string {
  const c = input.counters;
  const t = packetTotals(c);
  const d = input.defences;
  const mru = d.mru.stats();
  const kod = d.kod.stats();
  const state = input.state;
  const bl = input.blocklist;
  const m = new MetricsText();
  m.add("ntp_uptime_seconds", "gauge", "Time that the NTP daemon is running.", [
    { labels: { version: VERSION }, value: input.uptimeS },
  ]);
  if (state) {
    m.add("ntp_system_stratum", "gauge", "Stratum of our clock.", state.stratum);
    m.add("ntp_system_leap_indicator", "gauge", "Leap indicator served (3 = unsynchronised).", state.leap);
    m.add(
      "ntp_system_root_delay_seconds",
      "gauge",
      "Distance to the closest root time source.",
      state.rootDelay,
    );
    m.add(
      "ntp_system_root_dispersion_seconds",
      "gauge",
      "Estimate of how precise our time is.",
      state.rootDispersion,
    );
  }
  m.add("ntp_server_received_packets_total", "counter", "Number of incoming packets.", t.received);
  m.add(
    "ntp_server_accepted_packets_total",
    "counter",
    "Number of packets accepted (answered with the time, or a control reply).",
    t.accepted,
  );
  m.add(
    "ntp_server_denied_packets_total",
    "counter",
    "Number of denied packets (access list noserve/noquery, RSTR kiss-o'-death, name rules, blocklist).",
    t.denied,
  );
  m.add(
    "ntp_server_ignored_packets_total",
    "counter",
    "Number of packets ignored (malformed, a mode not answered, access list ignore).",
    t.ignored,
  );
  m.add(
    "ntp_server_rate_limited_packets_total",
    "counter",
    "Number of rate limited packets (refused by the call-gap, kissed or dropped).",
    t.rateLimited,
  );
  m.add(
    "ntp_server_response_send_errors_total",
    "counter",
    "Number of packets where there was an error responding.",
    t.sendErrors,
  );
  m.add("ntp_server_kod_packets_total", "counter", "Kiss-o'-death packets sent, by kiss code.", [
    { labels: { code: "RATE" }, value: t.kod.RATE },
    { labels: { code: "RSTR" }, value: t.kod.RSTR },
    { labels: { code: "DENY" }, value: t.kod.DENY },
  ]);
  m.add(
    "ntp_server_kod_limited_packets_total",
    "counter",
    "Kiss-o'-death packets due but withheld by the KoD limiter (the request was dropped).",
    t.kodLimited,
  );
  m.add(
    "ntpshield_packets_total",
    "counter",
    "Packets by what was done with them (src/core/reasons.ts); they add up to received.",
    REASON_NAMES.map((reason) => ({ labels: { reason }, value: c.byReason[reason] ?? 0 })),
  );
  if (input.broadcast !== undefined) {
    m.add(
      "ntpshield_broadcast_packets_total",
      "counter",
      "Mode 5 broadcasts due ([broadcast], one per destination per interval), by what became of them.",
      Object.entries(input.broadcast).map(([reason, value]) => ({ labels: { reason }, value })),
    );
  }
  if (input.nts !== undefined) {
    m.add(
      "ntpshield_nts_ke_total",
      "counter",
      "NTS-KE connections by outcome (RFC 8915 §4): served, refused with an error record, TLS failures, limits.",
      Object.entries(input.nts).map(([outcome, value]) => ({ labels: { outcome }, value })),
    );
  }
  m.add("ntpshield_socket_errors_total", "counter", "Errors reported by the NTP sockets.", t.socketErrors);
  m.add(
    "ntpshield_kernel_drops_total",
    "counter",
    "Requests the kernel dropped, the socket's receive buffer full, before the server read them.",
    t.kernelDrops,
  );
  m.add("ntpshield_mru_records", "gauge", "Client records in the MRU list.", mru.size);
  m.add("ntpshield_mru_capacity", "gauge", "Most client records the MRU list holds.", mru.capacity);
  m.add("ntpshield_mru_inserted_total", "counter", "MRU records created in free room.", mru.inserted);
  m.add(
    "ntpshield_mru_evicted_total",
    "counter",
    "MRU records evicted, younger than max-age, for a newcomer admitted by sampling.",
    mru.evicted,
  );
  m.add(
    "ntpshield_mru_recycled_total",
    "counter",
    "MRU records reused because older than max-age.",
    mru.recycled,
  );
  m.add(
    "ntpshield_mru_refused_total",
    "counter",
    "Newcomers refused a record by sampling while the MRU list was full.",
    mru.refused,
  );
  m.add(
    "ntpshield_mru_protected_total",
    "counter",
    "Second chances: a mouse's record at the tail of a full MRU list moved to the front instead of replaced (overload control).",
    mru.protected,
  );
  const ov = d.overload.stats();
  const byClass = (values: number[]) =>
    CLASS_NAMES.map((c, i) => ({ labels: { class: c }, value: values[i] ?? 0 }));
  m.add(
    "ntpshield_overload_active",
    "gauge",
    "1 while the server is past its redline (paper §12).",
    ov.overloaded ? 1 : 0,
  );
  m.add(
    "ntpshield_overload_capacity_requests_per_second",
    "gauge",
    "The redline: requests per second all workers can answer (configured, or measured; 0 = none known).",
    ov.capacity,
  );
  m.add(
    "ntpshield_overload_demand_requests_per_second",
    "gauge",
    "Requests about to be answered in the last second, by class (mice, known, new).",
    byClass(ov.demand),
  );
  m.add(
    "ntpshield_overload_withheld_pools",
    "gauge",
    `Pools of addresses withheld now, by class, out of ${POOLS}.`,
    byClass(ov.withheldPools),
  );
  m.add(
    "ntpshield_overload_withheld_total",
    "counter",
    "Requests withheld (dropped) by overload control, by class.",
    byClass(ov.withheld),
  );
  m.add("ntpshield_overload_transitions_total", "counter", "Times the server entered and left overload.", [
    { labels: { direction: "entered" }, value: ov.entered },
    { labels: { direction: "left" }, value: ov.left },
  ]);
  m.add("ntpshield_kod_limiter_total", "counter", "Decisions of the KoD limiter.", [
    { labels: { result: "sent" }, value: kod.sent },
    { labels: { result: "dropped_client" }, value: kod.droppedClient },
    { labels: { result: "dropped_rate" }, value: kod.droppedRate },
  ]);
  m.add(
    "ntpshield_name_rules_total",
    "counter",
    "Reverse-DNS name rules (docs/defences-names.md): verdicts given per packet, lookups queued or refused by the limits, cache evictions.",
    NAME_COUNTER_NAMES.map((event, i) => ({ labels: { event }, value: d.names.counters[i] ?? 0 })),
  );
  m.add("ntpshield_name_cache_entries", "gauge", "Addresses in the reverse-DNS verdict cache.", d.names.size);
  m.add("ntpshield_blocklist_enabled", "gauge", "1 if the blocklist is in use.", bl.enabled ? 1 : 0);
  m.add("ntpshield_blocklist_entries", "gauge", "Addresses on the blocklist (not expired).", bl.entries);
  const db = bl.database;
  if (db !== undefined) {
    m.add(
      "ntpshield_blocklist_db_writes_total",
      "counter",
      "Blocklist database writes since start: committed, hit-count updates dropped because the write queue was full (entries are never dropped), and expired entries pruned.",
      [
        { labels: { result: "committed" }, value: db.written },
        { labels: { result: "dropped_queue_full" }, value: db.dropped },
        { labels: { result: "pruned" }, value: db.pruned },
      ],
    );
    m.add(
      "ntpshield_blocklist_db_transactions_total",
      "counter",
      "Blocklist database write transactions committed.",
      db.transactions,
    );
    m.add(
      "ntpshield_blocklist_db_queued",
      "gauge",
      "Blocklist writes waiting for the next flush to the database.",
      db.queued,
    );
    m.add(
      "ntpshield_blocklist_db_errors_total",
      "counter",
      "Blocklist database flushes, polls or prunes that failed.",
      db.errors,
    );
  }
  const fl = input.fleet;
  if (fl !== undefined) {
    m.add(
      "ntpshield_fleet_requests_total",
      "counter",
      "Active redirection (paper §8): requests forwarded to a fleet peer, forwarded requests taken from peers, forwarding headers refused (not from a peer), replies that named a peer in the redirection field.",
      [
        { labels: { event: "forwarded" }, value: fl.forwarded },
        { labels: { event: "taken" }, value: fl.taken },
        { labels: { event: "refused" }, value: fl.refused },
        { labels: { event: "redirected" }, value: fl.redirected },
      ],
    );
  }
  const sh = bl.shared;
  if (sh !== undefined) {
    m.add(
      "ntpshield_blocklist_shared_up",
      "gauge",
      "1 while the fleet's shared blocklist (Redis) is reachable and caught up; 0: serving from the local copy.",
      sh.up ? 1 : 0,
    );
    m.add(
      "ntpshield_blocklist_shared_pending",
      "gauge",
      "Local blocklist writes waiting to be pushed to the shared store.",
      sh.pending,
    );
    m.add(
      "ntpshield_blocklist_shared_changes_total",
      "counter",
      "Blocklist changes pushed to the shared store, and changes made elsewhere applied here.",
      [
        { labels: { direction: "pushed" }, value: sh.pushed },
        { labels: { direction: "pulled" }, value: sh.pulled },
      ],
    );
    m.add(
      "ntpshield_blocklist_shared_resyncs_total",
      "counter",
      "Whole-list reconciliations with the shared store (first connection, lost records, a Redis that lost its data).",
      sh.resyncs,
    );
    m.add(
      "ntpshield_blocklist_shared_failures_total",
      "counter",
      "Times the shared store became unreachable.",
      sh.failures,
    );
  }
  return m.text();
}
