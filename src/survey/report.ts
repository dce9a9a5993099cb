// The survey's report (paper §5) in three forms: text for a terminal (aligned tables, the paper's figures
// in the paper's order and words), JSON for scripts (the SurveyResult as it is, shares as fractions), and
// one self-contained HTML page with the three plots drawn here as inline SVG (load-share curve, bursters by
// rate, bursters by duration): no script, no stylesheet or font fetched, so the file can be mailed or
// archived and still open the same. Pure: strings out.

import type { SurveyBin, SurveyClient, SurveyGroup, SurveyResult } from "./consolidate.ts";
import type { FetchSkew, SurveySource } from "./fetch.ts";

/** What the fetch adds to a report: each server's URL and timing, and the skew seen from here. */
export interface ReportContext {
  sources?: readonly SurveySource[];
  fetchSkew?: FetchSkew;
}

// ---------------------------------------------------------------------------------------------------------
// Numbers as people read them

export function formatInt(n: number): string {
  const sign = n < 0 ? "-" : "";
  return sign + String(Math.round(Math.abs(n))).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** A fraction as a percentage: one decimal, two below 1%, "<0.01%" for a crumb, "0%" for nothing. */
export function formatPercent(f: number): string {
  if (f === 0) return "0%";
  const p = f * 100;
  if (p < 0.01) return "<0.01%";
  return `${p.toFixed(p < 1 ? 2 : 1)}%`;
}

export function formatRate(pps: number): string {
  if (pps === 0) return "0";
  if (pps >= 100) return formatInt(pps);
  if (pps >= 10) return pps.toFixed(1);
  return pps.toFixed(pps >= 1 ? 2 : 3);
}

export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  if (seconds < 3600) return `${(seconds / 60).toFixed(1)} min`;
  if (seconds < 86400) return `${(seconds / 3600).toFixed(2)} h`;
  return `${(seconds / 86400).toFixed(2)} d`;
}

function iso(unixSeconds: number): string {
  const ms = unixSeconds * 1000;
  return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : String(unixSeconds);
}

function signed(seconds: number): string {
  return `${seconds < 0 ? "-" : "+"}${Math.abs(seconds).toFixed(3)}`;
}

// ---------------------------------------------------------------------------------------------------------
// Text

type Align = "l" | "r";

/** Rows under a header, each column as wide as its widest cell, two spaces apart, indented. */
export function table(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  align: string,
  indent = "  ",
) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    indent +
    cells
      .map((c, i) =>
        (align[i] as Align | undefined) === "l" ? c.padEnd(widths[i]!) : c.padStart(widths[i]!),
      )
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

function groupRow(label: string, g: SurveyGroup): string[] {
  return [
    label,
    formatInt(g.clients),
    formatPercent(g.clientShare),
    formatInt(g.packets),
    formatRate(g.rate),
    formatPercent(g.loadShare),
  ];
}

function binTable(title: string, bins: readonly SurveyBin[], r: SurveyResult): string[] {
  const rows = bins.map((b) => groupRow(b.label, b));
  rows.push(groupRow("all bursters", r.bursters), groupRow("not bursters", r.nonBursters));
  return table([title, "clients", "of clients", "packets", "rate PPS", "of load"], rows, "lrrrrr");
}

function elephantRow(c: SurveyClient): string[] {
  return [
    c.address,
    String(c.servers.length),
    formatInt(c.packets),
    formatRate(c.rate),
    formatPercent(c.share),
    formatRate(c.burstRate),
    c.spacing === null ? "-" : formatDuration(c.spacing),
    `${c.sinceStart ? ">=" : ""}${formatDuration(c.duration)}`,
    formatInt(c.count),
    formatInt(c.gapped),
    formatInt(c.kods),
    c.burster ? "yes" : "no",
  ];
}

/** The headline of §5: "In effect, 14 percent of the clients account for 78 percent of the total load." */
export function headline(r: SurveyResult): string {
  if (r.clients === 0) return "No client sent a packet in the window.";
  return `In effect, ${formatPercent(r.bursters.clientShare)} of the clients (the bursters) carry ${formatPercent(
    r.bursters.loadShare,
  )} of the load.`;
}

function curveSentence(r: SurveyResult): string {
  return r.curve.clientsFor
    .map(
      (p, i) => `${i === 0 ? "" : ", "}${formatPercent(p.load)} of the load from ${formatPercent(p.clients)}`,
    )
    .join("");
}

/** Which list starts the window and which snapshot ends it. */
function windowReason(r: SurveyResult): string {
  const first = r.servers.find((s) => s.server === r.window.startServer);
  const from =
    first?.coverage === "since-start"
      ? `${first.server}'s start`
      : `the last packet of ${r.window.startServer}'s oldest record`;
  return `from ${from} to ${r.window.endServer}'s snapshot`;
}

/** The per-server table's columns and rows, for both the text and the HTML report. */
const SERVER_COLUMNS = [
  "server",
  "taken at (its clock)",
  "skew s",
  "list complete since",
  "records",
  "capacity",
  "lost",
  "refused",
  "received",
  "captured",
];

const BALANCE_COLUMNS = ["server", "clients", "of clients", "packets", "of packets"];

function balanceRows(r: SurveyResult, sourceOf: (name: string) => SurveySource | undefined): string[][] {
  return r.balance.servers.map((b) => [
    sourceOf(b.server)?.url ?? b.server,
    formatInt(b.clients),
    formatPercent(b.share),
    formatInt(b.packets),
    formatPercent(b.packetShare),
  ]);
}

/** The balance in one sentence: how even, and whether clients were split between servers (§12). */
function balanceSentence(r: SurveyResult): string {
  const b = r.balance;
  return (
    `clients per server: mean ${b.mean.toFixed(1)}, max/mean ${b.maxOverMean.toFixed(2)}, ` +
    `coefficient of variation ${b.cv.toFixed(2)} (packets: max/mean ${b.packetsMaxOverMean.toFixed(2)}, ` +
    `CV ${b.packetsCv.toFixed(2)}); ${formatInt(r.sharedClients)} of ${formatInt(r.clients)} clients ` +
    "seen by more than one server (0 behind a source-hash balancer)"
  );
}

function balanceLines(r: SurveyResult, sourceOf: (name: string) => SurveySource | undefined): string[] {
  return [
    "Balance over the servers (clients of the window each server saw)",
    ...table(BALANCE_COLUMNS, balanceRows(r, sourceOf), "lrrrr"),
    `  ${balanceSentence(r)}.`,
  ];
}

function serverRows(
  r: SurveyResult,
  sourceOf: (name: string) => SurveySource | undefined,
  markStart: boolean,
): string[][] {
  return r.servers.map((s) => [
    sourceOf(s.server)?.url ?? s.server,
    iso(s.takenAt),
    signed(s.offset),
    `${iso(s.coverageStart)}${markStart && s.coverage === "since-start" ? " (start)" : ""}`,
    formatInt(s.records),
    formatInt(s.mru.capacity),
    formatInt(s.mru.evicted + s.mru.recycled),
    formatInt(s.mru.refused),
    formatInt(s.received),
    s.arrivalShare === null ? "-" : formatPercent(s.arrivalShare),
  ]);
}

export function textReport(r: SurveyResult, context: ReportContext = {}): string {
  const out: string[] = [];
  const sp = r.options.burstSpacing;
  out.push(`ntpshield survey: ${r.servers.length} server${r.servers.length === 1 ? "" : "s"} (paper §5)`, "");

  const sourceOf = (name: string) => context.sources?.find((s) => s.ok && s.server === name);
  out.push(...table(SERVER_COLUMNS, serverRows(r, sourceOf, true), "llrlrrrrrr"));
  if (r.servers.length > 1) out.push("", ...balanceLines(r, sourceOf));
  for (const s of context.sources ?? [])
    if (!s.ok) out.push(`  ${s.url}: FAILED: ${s.error?.message ?? "?"}`);
  const local =
    context.fetchSkew?.localSpread == null
      ? ""
      : `; requests answered within ${context.fetchSkew.localSpread.toFixed(3)} s of each other here`;
  out.push(
    `  Skew: the snapshots were taken ${r.skew.toFixed(3)} s apart by the servers' clocks${local}.`,
    "",
  );

  const w = r.window;
  const why = w.kind === "given" ? "as given" : `the span common to all lists (${windowReason(r)})`;
  const arrivals =
    r.arrivals.share === null || r.arrivals.estimated === null
      ? "unknown (no counters)"
      : `${formatPercent(r.arrivals.share)} of about ${formatInt(r.arrivals.estimated)} arrivals in the window (from the servers' counters)`;
  out.push(
    ...table(
      ["", ""],
      [
        [
          "Window",
          `${formatDuration(w.duration)} (${w.duration.toFixed(3)} s), ${iso(w.start)} to ${iso(w.end)}, ${why}`,
        ],
        ["Captured", `${formatInt(r.packets)} packets (${formatRate(r.rate)} PPS)`],
        ["Share of arrivals", arrivals],
        [
          "Clients",
          `${formatInt(r.clients)} in ${formatInt(r.records)} records; ${formatInt(r.sharedClients)} seen by more than one server; ${formatInt(r.clientsOutsideWindow)} more only before the window`,
        ],
        [
          `Bursters (spacing < ${sp} s)`,
          `${formatInt(r.bursters.clients)} clients (${formatPercent(r.bursters.clientShare)}) in ${formatInt(r.bursters.records)} records, ${formatInt(r.bursters.packets)} packets, ${formatRate(r.bursters.rate)} PPS: ${formatPercent(r.bursters.loadShare)} of the load`,
        ],
      ],
      "ll",
      "",
    ).slice(1),
  );
  out.push("", headline(r), "");

  out.push(...binTable("Bursters by rate", r.byRate, r), "");
  out.push(...binTable("Bursters by duration", r.byDuration, r), "");

  if (r.elephants.length > 0) {
    out.push(
      `Top ${r.elephants.length} elephants (packets in the window; >= marks a burst on since a server started)`,
    );
    out.push(
      ...table(
        [
          "address",
          "servers",
          "packets",
          "rate PPS",
          "of load",
          "burst PPS",
          "spacing",
          "lasted",
          "count",
          "gapped",
          "kods",
          "burster",
        ],
        r.elephants.map(elephantRow),
        "lrrrrrrrrrrl",
      ),
      "",
    );
  }

  out.push("Load-share curve (clients from the heaviest)");
  out.push(
    ...table(
      ["clients", ...r.curve.at.map((p) => formatPercent(p.clients))],
      [["load", ...r.curve.at.map((p) => formatPercent(p.load))]],
      "l".padEnd(r.curve.at.length + 1, "r"),
    ),
  );
  if (r.clients > 0) out.push(`  ${curveSentence(r)} of the clients.`);

  if (r.warnings.length > 0) out.push("", "Warnings", ...r.warnings.map((m) => `  ${m}`));
  return `${out.join("\n")}\n`;
}

// ---------------------------------------------------------------------------------------------------------
// JSON

/** The result and, when fetched, the sources and the skew seen from here; non-finite numbers become null. */
export function jsonReport(r: SurveyResult, context: ReportContext = {}): string {
  const value = { ...r, sources: context.sources ?? null, fetchSkew: context.fetchSkew ?? null };
  return `${JSON.stringify(value, (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? null : v), 2)}\n`;
}

// ---------------------------------------------------------------------------------------------------------
// HTML with inline SVG

export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

const n2 = (v: number) => (Math.round(v * 100) / 100).toString();

const CHART = { width: 560, height: 360, left: 58, right: 18, top: 34, bottom: 62 };

function frame(id: string, title: string, body: string[]): string {
  return [
    `<svg id="${id}" class="plot" viewBox="0 0 ${CHART.width} ${CHART.height}" width="${CHART.width}" height="${CHART.height}" role="img" aria-labelledby="${id}-title">`,
    `<title id="${id}-title">${escapeHtml(title)}</title>`,
    `<text class="plot-title" x="${CHART.width / 2}" y="18" text-anchor="middle">${escapeHtml(title)}</text>`,
    ...body,
    "</svg>",
  ].join("\n");
}

/** Horizontal grid lines and y labels from 0 to `max` (a fraction), every `step`. */
function yAxis(max: number, step: number, y: (v: number) => number): string[] {
  const out: string[] = [];
  const x0 = CHART.left;
  const x1 = CHART.width - CHART.right;
  for (let v = 0; v <= max + 1e-9; v += step) {
    const yy = n2(y(v));
    out.push(`<line class="grid" x1="${x0}" y1="${yy}" x2="${x1}" y2="${yy}"/>`);
    out.push(
      `<text class="tick" x="${x0 - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle">${Math.round(v * 100)}%</text>`,
    );
  }
  return out;
}

/** The load-share curve: share of the clients (heaviest first) against the share of the load they carry. */
export function loadShareSvg(r: SurveyResult): string {
  const pw = CHART.width - CHART.left - CHART.right;
  const ph = CHART.height - CHART.top - CHART.bottom;
  const x = (f: number) => CHART.left + f * pw;
  const y = (f: number) => CHART.top + (1 - f) * ph;
  const body = yAxis(1, 0.2, y);
  for (let v = 0; v <= 1 + 1e-9; v += 0.2) {
    const xx = n2(x(v));
    body.push(`<line class="grid" x1="${xx}" y1="${CHART.top}" x2="${xx}" y2="${n2(y(0))}"/>`);
    body.push(
      `<text class="tick" x="${xx}" y="${n2(y(0) + 16)}" text-anchor="middle">${Math.round(v * 100)}%</text>`,
    );
  }
  body.push(`<line class="diagonal" x1="${x(0)}" y1="${y(0)}" x2="${x(1)}" y2="${y(1)}"/>`);
  const points = r.curve.points.map((p) => `${n2(x(p.clients))},${n2(y(p.load))}`).join(" ");
  body.push(`<polyline class="curve" points="${points}"/>`);
  if (r.clients > 0) {
    const bx = n2(x(r.bursters.clientShare));
    const by = n2(y(r.bursters.loadShare));
    const anchor = r.bursters.clientShare > 0.35 ? "end" : "start";
    const dx = anchor === "end" ? -8 : 8;
    body.push(`<circle class="marker" cx="${bx}" cy="${by}" r="4.5"/>`);
    body.push(
      `<text class="note" x="${n2(Number(bx) + dx)}" y="${n2(Number(by) + 16)}" text-anchor="${anchor}">bursters: ${formatPercent(r.bursters.clientShare)} of clients, ${formatPercent(r.bursters.loadShare)} of load</text>`,
    );
  }
  body.push(
    `<text class="axis" x="${n2(x(0.5))}" y="${CHART.height - 14}" text-anchor="middle">share of the clients, heaviest first</text>`,
    `<text class="axis" transform="translate(14 ${n2(y(0.5))}) rotate(-90)" text-anchor="middle">share of the load</text>`,
  );
  return frame("load-share", "Load-share curve", body);
}

const NICE = [0.05, 0.1, 0.2, 0.25, 0.4, 0.5, 0.6, 0.8, 1];

/** Grouped bars per bin: share of the clients and share of the load, with the counts and PPS above. */
export function binsSvg(id: string, title: string, bins: readonly SurveyBin[]): string {
  const pw = CHART.width - CHART.left - CHART.right;
  const ph = CHART.height - CHART.top - CHART.bottom;
  const top = Math.max(...bins.map((b) => Math.max(b.clientShare, b.loadShare)), 0);
  const max = NICE.find((v) => v >= top - 1e-12) ?? 1;
  const step = max <= 0.1 ? max / 5 : max <= 0.5 ? max / 5 : 0.2;
  const y = (f: number) => CHART.top + (1 - f / max) * ph;
  const body = yAxis(max, step, y);
  const slot = pw / Math.max(bins.length, 1);
  const bar = Math.min(34, slot / 3);
  bins.forEach((b, i) => {
    const cx = CHART.left + slot * (i + 0.5);
    const bars: [string, number, string][] = [
      ["bar-clients", b.clientShare, formatInt(b.clients)],
      ["bar-load", b.loadShare, `${formatRate(b.rate)} PPS`],
    ];
    // Two labels at about the same height would overlap: lift the second one a line.
    const lift = Math.abs(y(b.clientShare) - y(b.loadShare)) < 18 ? 13 : 0;
    bars.forEach(([cls, value, label], j) => {
      const x0 = cx - bar - 2 + j * (bar + 4);
      const yy = y(value);
      body.push(
        `<rect class="${cls}" x="${n2(x0)}" y="${n2(yy)}" width="${n2(bar)}" height="${n2(y(0) - yy)}"><title>${escapeHtml(`${b.label}: ${label} (${formatPercent(value)})`)}</title></rect>`,
      );
      body.push(
        `<text class="value" x="${n2(x0 + bar / 2)}" y="${n2(yy - 4 - (j === 1 ? lift : 0))}" text-anchor="middle">${escapeHtml(label)}</text>`,
      );
    });
    body.push(
      `<text class="tick" x="${n2(cx)}" y="${n2(y(0) + 16)}" text-anchor="middle">${escapeHtml(b.label)}</text>`,
    );
  });
  const ly = CHART.height - 16;
  body.push(
    `<rect class="bar-clients" x="${CHART.left}" y="${ly - 9}" width="10" height="10"/>`,
    `<text class="axis" x="${CHART.left + 14}" y="${ly}">share of all clients (count above)</text>`,
    `<rect class="bar-load" x="${CHART.left + 250}" y="${ly - 9}" width="10" height="10"/>`,
    `<text class="axis" x="${CHART.left + 264}" y="${ly}">share of the load (PPS above)</text>`,
  );
  return frame(id, title, body);
}

function htmlTable(header: readonly string[], rows: readonly (readonly string[])[], numericFrom = 1): string {
  const th = header
    .map((h, i) => `<th${i >= numericFrom ? ' class="n"' : ""}>${escapeHtml(h)}</th>`)
    .join("");
  const trs = rows
    .map(
      (r) =>
        `<tr>${r.map((c, i) => `<td${i >= numericFrom ? ' class="n"' : ""}>${escapeHtml(c)}</td>`).join("")}</tr>`,
    )
    .join("\n");
  return `<table><thead><tr>${th}</tr></thead><tbody>\n${trs}\n</tbody></table>`;
}

const STYLE = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto; max-width: 1180px; color: #1d2430; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
.headline { font-size: 18px; background: #fff6e0; border-left: 4px solid #d98c00; padding: 10px 14px; margin: 16px 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; } dt { font-weight: 600; } dd { margin: 0; }
table { border-collapse: collapse; margin: 6px 0 12px; } th, td { padding: 3px 10px; border-bottom: 1px solid #e2e6ec; text-align: left; }
th { background: #f3f5f8; } td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.plots { display: flex; flex-wrap: wrap; gap: 16px; } .plot { border: 1px solid #e2e6ec; background: #fff; max-width: 100%; height: auto; }
.plot .grid { stroke: #e7eaef; } .plot .tick, .plot .value { font-size: 11px; fill: #4b5563; } .plot .axis { font-size: 12px; fill: #1d2430; }
.plot .plot-title { font-size: 14px; font-weight: 600; } .plot .curve { fill: none; stroke: #2060c0; stroke-width: 2; }
.plot .diagonal { stroke: #9aa3ae; stroke-dasharray: 5 4; } .plot .marker { fill: #d98c00; } .plot .note { font-size: 12px; fill: #8a5600; paint-order: stroke; stroke: #fff; stroke-width: 4px; }
.plot .bar-clients { fill: #7aa7e0; } .plot .bar-load { fill: #d98c00; }
.warn { color: #9a3412; } .failed { color: #b91c1c; }
`;

export function htmlReport(r: SurveyResult, context: ReportContext = {}): string {
  const sp = r.options.burstSpacing;
  const sourceOf = (name: string) => context.sources?.find((s) => s.ok && s.server === name);
  const facts: [string, string][] = [
    [
      "Window",
      `${formatDuration(r.window.duration)} (${r.window.duration.toFixed(3)} s), ${iso(r.window.start)} to ${iso(r.window.end)}${r.window.kind === "common" ? `, the span common to all lists (${windowReason(r)})` : ", as given"}`,
    ],
    ["Captured", `${formatInt(r.packets)} packets (${formatRate(r.rate)} PPS)`],
    [
      "Share of arrivals",
      r.arrivals.share === null || r.arrivals.estimated === null
        ? "unknown"
        : `${formatPercent(r.arrivals.share)} of about ${formatInt(r.arrivals.estimated)} arrivals (from the servers' counters)`,
    ],
    [
      "Clients",
      `${formatInt(r.clients)} in ${formatInt(r.records)} records; ${formatInt(r.sharedClients)} seen by more than one server`,
    ],
    [
      `Bursters (spacing < ${sp} s)`,
      `${formatInt(r.bursters.clients)} clients (${formatPercent(r.bursters.clientShare)}), ${formatInt(r.bursters.packets)} packets, ${formatRate(r.bursters.rate)} PPS: ${formatPercent(r.bursters.loadShare)} of the load`,
    ],
    ["Skew", `${r.skew.toFixed(3)} s between the snapshots (server clocks)`],
  ];
  const binRows = (bins: readonly SurveyBin[]) => [
    ...bins.map((b) => groupRow(b.label, b)),
    groupRow("all bursters", r.bursters),
    groupRow("not bursters", r.nonBursters),
  ];
  const binHeader = ["", "clients", "of clients", "packets", "rate PPS", "of load"];
  const failed = (context.sources ?? []).filter((s) => !s.ok);
  const parts = [
    "<!doctype html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>ntpshield survey: ${r.servers.length} servers, ${escapeHtml(iso(r.window.end))}</title>`,
    `<style>${STYLE}</style>`,
    "</head>",
    "<body>",
    `<h1>ntpshield survey of ${r.servers.length} server${r.servers.length === 1 ? "" : "s"}</h1>`,
    `<p>The figures of the NIST survey (Mills et al., "Coping with Overload on the Network Time Protocol Public Servers", §5), from the MRU lists of the servers below.</p>`,
    `<p class="headline">${escapeHtml(headline(r))}</p>`,
    `<dl>${facts.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join("")}</dl>`,
    "<h2>Plots</h2>",
    '<div class="plots">',
    loadShareSvg(r),
    binsSvg("rate-histogram", "Bursters by rate", r.byRate),
    binsSvg("duration-histogram", "Bursters by duration", r.byDuration),
    "</div>",
    "<h2>Bursters by rate</h2>",
    htmlTable(binHeader, binRows(r.byRate)),
    "<h2>Bursters by duration</h2>",
    htmlTable(binHeader, binRows(r.byDuration)),
    `<h2>Top ${r.elephants.length} elephants</h2>`,
    htmlTable(
      [
        "address",
        "servers",
        "packets",
        "rate PPS",
        "of load",
        "burst PPS",
        "spacing",
        "lasted",
        "count",
        "gapped",
        "kods",
        "burster",
      ],
      r.elephants.map(elephantRow),
    ),
    "<h2>Load-share curve</h2>",
    htmlTable(
      ["clients (heaviest first)", "share of the load"],
      r.curve.at.map((p) => [formatPercent(p.clients), formatPercent(p.load)]),
    ),
    r.clients > 0 ? `<p>${escapeHtml(curveSentence(r))} of the clients.</p>` : "",
    "<h2>Servers</h2>",
    htmlTable(SERVER_COLUMNS, serverRows(r, sourceOf, false), 4),
    r.servers.length > 1
      ? `<h2>Balance over the servers</h2>\n${htmlTable(BALANCE_COLUMNS, balanceRows(r, sourceOf), 1)}\n<p>${escapeHtml(balanceSentence(r))}</p>`
      : "",
    ...failed.map(
      (s) => `<p class="failed">${escapeHtml(`${s.url}: FAILED: ${s.error?.message ?? "?"}`)}</p>`,
    ),
    ...r.warnings.map((m) => `<p class="warn">${escapeHtml(m)}</p>`),
    "</body>",
    "</html>",
    "",
  ];
  return parts.filter((p) => p !== "").join("\n");
}
