// What a scenario reports (issue 6: "each printing a table with the paper's figure beside the simulated
// one"), and its text and JSON forms. A report is plain data: tables of text cells (the paper's figure, the
// simulated one, a note on the difference), charts as series of numbers, notes, and per run the raw
// counts. html.ts draws the same report as a page with plots.

import type { PopulationResult, ServerResult, SimulationResult } from "./engine.ts";

export interface ReportTable {
  title: string;
  columns: string[];
  rows: string[][];
}

export interface ChartLine {
  name: string;
  values: number[];
}

export interface ReportChart {
  title: string;
  xLabel: string;
  yLabel: string;
  /** x of values[0] and the step between values. */
  x0: number;
  dx: number;
  lines: ChartLine[];
  /** Vertical markers (an hour, an outage). */
  marks?: { x: number; label: string }[];
}

/** One simulation run of a scenario, its raw counts. */
export interface RunSummary {
  label: string;
  seed: number;
  duration: number;
  servers: number;
  balancer: string;
  packets: number;
  events: number;
  wallMs: number;
  populations: PopulationResult[];
  serverResults: ServerResult[];
}

export interface ScenarioReport {
  format: 1;
  scenario: string;
  title: string;
  /** The paper's sections it reproduces. */
  sections: string;
  seed: number;
  scale: number;
  summary: string[];
  tables: ReportTable[];
  charts: ReportChart[];
  notes: string[];
  runs: RunSummary[];
  wallMs: number;
}

export function runSummary(label: string, r: SimulationResult, wallMs: number): RunSummary {
  return {
    label,
    seed: r.seed,
    duration: r.duration,
    servers: r.servers,
    balancer: r.balancer,
    packets: r.packets,
    events: r.events,
    wallMs,
    populations: r.populations,
    serverResults: r.serverResults,
  };
}

// --- Number formats -----------------------------------------------------------------------------------

/** 1234567 -> "1,234,567". */
export function fmtInt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  return Math.round(n).toLocaleString("en-US");
}

/** A rate in packets per second, with sensible precision. */
export function fmtPps(pps: number): string {
  if (!Number.isFinite(pps)) return "-";
  if (pps >= 100) return `${fmtInt(pps)} PPS`;
  if (pps >= 10) return `${pps.toFixed(1)} PPS`;
  return `${pps.toFixed(2)} PPS`;
}

/** A fraction as a percentage. */
export function fmtPct(f: number | null | undefined): string {
  if (f === null || f === undefined || !Number.isFinite(f)) return "-";
  const p = f * 100;
  if (p !== 0 && Math.abs(p) < 0.1) return `${p.toFixed(3)}%`;
  if (Math.abs(p) < 10) return `${p.toFixed(1)}%`;
  return `${p.toFixed(0)}%`;
}

/** Seconds as "9.1 s", "4.0 min", "2.5 h". */
export function fmtSeconds(s: number): string {
  if (!Number.isFinite(s)) return "-";
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/** a / b, or NaN when b is 0. */
export function ratio(a: number, b: number): number {
  return b === 0 ? Number.NaN : a / b;
}

/** The rows of a per-population table for one run: what each population sent and got. */
export function populationTable(run: RunSummary): ReportTable {
  const rows = run.populations.map((p) => {
    const kisses = Object.entries(p.kisses)
      .map(([code, n]) => `${code} ${fmtInt(n)}`)
      .join(", ");
    return [
      p.name,
      fmtPps(p.sent / run.duration),
      fmtPct(ratio(p.answered, p.sent)),
      `${fmtPct(ratio(p.kissed, p.sent))}${kisses ? ` (${kisses})` : ""}`,
      fmtPct(ratio(p.nothing, p.sent)),
      fmtPct(ratio(p.caught, p.arrived)),
      p.description,
    ];
  });
  return {
    title: `Populations, run "${run.label}" (${fmtSeconds(run.duration)}, ${run.servers === 1 ? "1 server" : `${run.servers} servers, ${run.balancer}`})`,
    columns: ["population", "offered", "answered", "kissed", "nothing back", "call-gap caught", "what it is"],
    rows,
  };
}

// --- Text ---------------------------------------------------------------------------------------------

/** Lays out a table in aligned columns. */
export function textTable(t: ReportTable): string {
  const all = [t.columns, ...t.rows];
  const widths = t.columns.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  const rule = widths.map((w) => "-".repeat(w)).join("  ");
  return [t.title, "", line(t.columns), rule, ...t.rows.map(line)].join("\n");
}

export function textReport(r: ScenarioReport): string {
  const packets = r.runs.reduce((a, b) => a + b.packets, 0);
  const out: string[] = [];
  out.push(`ntpshield simulate ${r.scenario}: ${r.title} (paper ${r.sections})`);
  out.push(
    `seed ${r.seed}, scale ${r.scale}; ${r.runs.length} run${r.runs.length === 1 ? "" : "s"}, ` +
      `${fmtInt(packets)} simulated packets in ${(r.wallMs / 1000).toFixed(1)} s`,
  );
  if (r.summary.length > 0) out.push("", ...r.summary);
  for (const t of r.tables) out.push("", textTable(t));
  if (r.notes.length > 0) {
    out.push("", "Notes");
    for (const n of r.notes) out.push(`- ${n}`);
  }
  return `${out.join("\n")}\n`;
}

/** The report as JSON (series as plain arrays). */
export function jsonReport(r: ScenarioReport): string {
  return `${JSON.stringify(r, null, 2)}\n`;
}
