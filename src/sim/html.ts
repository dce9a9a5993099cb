// A scenario report as one self-contained HTML page (`ntpshield simulate <name> --html FILE`): the tables,
// the notes, and each chart as inline SVG drawn here, with no script, no stylesheet and no font from
// anywhere else, so the file can be mailed or archived and still open the same.

import type { ReportChart, ReportTable, ScenarioReport } from "./report.ts";
import { fmtInt } from "./report.ts";

const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** "Nice" tick step for a range: 1, 2 or 5 times a power of ten, about `count` ticks. */
function tickStep(range: number, count: number): number {
  if (!(range > 0)) return 1;
  const raw = range / count;
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

function tickLabel(v: number): string {
  if (Math.abs(v) >= 1e6) return `${+(v / 1e6).toFixed(2)}M`;
  if (Math.abs(v) >= 1e4) return `${+(v / 1e3).toFixed(1)}k`;
  return Number.isInteger(v) ? fmtInt(v) : `${+v.toFixed(2)}`;
}

/** One line chart as an SVG element. */
export function chartSvg(c: ReportChart, id: number): string {
  const W = 860;
  const H = 320;
  const L = 70;
  const R = 20;
  const T = 30;
  const B = 46;
  const n = Math.max(0, ...c.lines.map((l) => l.values.length));
  const xMax = c.x0 + c.dx * Math.max(1, n - 1);
  let yMax = 0;
  for (const l of c.lines) for (const v of l.values) if (Number.isFinite(v) && v > yMax) yMax = v;
  const yStep = tickStep(yMax || 1, 5);
  const yTop = Math.max(yStep, Math.ceil((yMax || 1) / yStep) * yStep);
  const px = (x: number) => L + ((x - c.x0) / (xMax - c.x0 || 1)) * (W - L - R);
  const py = (y: number) => T + (1 - y / yTop) * (H - T - B);
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-labelledby="c${id}">`,
  );
  parts.push(`<title id="c${id}">${escapeHtml(c.title)}</title>`);
  parts.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#fff"/>`);
  for (let y = 0; y <= yTop + yStep / 2; y += yStep) {
    const yy = py(y).toFixed(1);
    parts.push(`<line x1="${L}" y1="${yy}" x2="${W - R}" y2="${yy}" stroke="#e5e5e5"/>`);
    parts.push(
      `<text x="${L - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle" font-size="11">${tickLabel(y)}</text>`,
    );
  }
  const xStep = tickStep(xMax - c.x0, 8);
  for (let x = Math.ceil(c.x0 / xStep) * xStep; x <= xMax + 1e-9; x += xStep) {
    const xx = px(x).toFixed(1);
    parts.push(`<line x1="${xx}" y1="${H - B}" x2="${xx}" y2="${H - B + 4}" stroke="#333"/>`);
    parts.push(
      `<text x="${xx}" y="${H - B + 16}" text-anchor="middle" font-size="11">${tickLabel(x)}</text>`,
    );
  }
  parts.push(`<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#333"/>`);
  parts.push(`<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#333"/>`);
  for (const m of c.marks ?? []) {
    const xx = px(m.x).toFixed(1);
    parts.push(`<line x1="${xx}" y1="${T}" x2="${xx}" y2="${H - B}" stroke="#888" stroke-dasharray="4 3"/>`);
    parts.push(
      `<text x="${xx}" y="${T - 6}" text-anchor="middle" font-size="11" fill="#555">${escapeHtml(m.label)}</text>`,
    );
  }
  c.lines.forEach((l, i) => {
    const pts: string[] = [];
    l.values.forEach((v, k) => {
      if (Number.isFinite(v)) pts.push(`${px(c.x0 + k * c.dx).toFixed(1)},${py(v).toFixed(1)}`);
    });
    const colour = COLOURS[i % COLOURS.length]!;
    parts.push(`<polyline fill="none" stroke="${colour}" stroke-width="1.5" points="${pts.join(" ")}"/>`);
    const ly = T + 4 + i * 15;
    parts.push(`<rect x="${W - R - 190}" y="${ly}" width="12" height="3" fill="${colour}"/>`);
    parts.push(`<text x="${W - R - 172}" y="${ly + 4}" font-size="11">${escapeHtml(l.name)}</text>`);
  });
  parts.push(
    `<text x="${(L + W - R) / 2}" y="${H - 8}" text-anchor="middle" font-size="12">${escapeHtml(c.xLabel)}</text>`,
  );
  parts.push(
    `<text x="14" y="${(T + H - B) / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 14 ${(T + H - B) / 2})">${escapeHtml(c.yLabel)}</text>`,
  );
  parts.push("</svg>");
  return parts.join("\n");
}

function tableHtml(t: ReportTable): string {
  const head = t.columns.map((c) => `<th>${escapeHtml(c)}</th>`).join("");
  const rows = t.rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join("")}</tr>`).join("\n");
  return `<h2>${escapeHtml(t.title)}</h2>\n<table>\n<thead><tr>${head}</tr></thead>\n<tbody>\n${rows}\n</tbody>\n</table>`;
}

export function htmlReport(r: ScenarioReport): string {
  const packets = r.runs.reduce((a, b) => a + b.packets, 0);
  const body: string[] = [];
  body.push(`<h1>ntpshield simulate ${escapeHtml(r.scenario)}: ${escapeHtml(r.title)}</h1>`);
  body.push(
    `<p class="meta">Paper ${escapeHtml(r.sections)}. Seed ${r.seed}, scale ${r.scale}; ${r.runs.length} run(s), ` +
      `${fmtInt(packets)} simulated packets in ${(r.wallMs / 1000).toFixed(1)} s.</p>`,
  );
  for (const s of r.summary) body.push(`<p>${escapeHtml(s)}</p>`);
  for (const t of r.tables) body.push(tableHtml(t));
  r.charts.forEach((c, i) => {
    body.push(`<h2>${escapeHtml(c.title)}</h2>`);
    body.push(`<figure>${chartSvg(c, i)}</figure>`);
  });
  if (r.notes.length > 0) {
    body.push("<h2>Notes</h2>");
    body.push(`<ul>\n${r.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join("\n")}\n</ul>`);
  }
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>ntpshield simulate ${escapeHtml(r.scenario)}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.meta { color: #555; }
figure { margin: 0 0 1.5em; }
</style>
</head>
<body>
${body.join("\n")}
</body>
</html>
`;
}
