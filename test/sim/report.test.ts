// The report's forms: aligned text tables, number formats, the HTML page (escaped, self-contained, with a
// chart), and the progress bar that only a terminal gets.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { chartSvg, escapeHtml, htmlReport } from "../../src/sim/html.ts";
import { progressBar } from "../../src/sim/progress.ts";
import { fmtInt, fmtPct, fmtPps, type ScenarioReport, textReport, textTable } from "../../src/sim/report.ts";

const report: ScenarioReport = {
  format: 1,
  scenario: "demo",
  title: "A <demo> & more",
  sections: "§0",
  seed: 1,
  scale: 1,
  summary: ["one line"],
  tables: [
    {
      title: "T",
      columns: ["figure", "paper", "sim"],
      rows: [
        ["a", "1", "2"],
        ["longer name", "<b>", "3"],
      ],
    },
  ],
  charts: [
    {
      title: "C",
      xLabel: "s",
      yLabel: "PPS",
      x0: 0,
      dx: 1,
      lines: [
        { name: "one", values: [0, 5, 10, 5] },
        { name: "two", values: [1, 1, 1, 1] },
      ],
      marks: [{ x: 2, label: "here" }],
    },
  ],
  notes: ["a note"],
  runs: [],
  wallMs: 1234,
};

describe("report", () => {
  it("formats numbers for people", () => {
    assert.equal(fmtInt(1234567.4), "1,234,567");
    assert.equal(fmtPps(7000), "7,000 PPS");
    assert.equal(fmtPps(14), "14.0 PPS");
    assert.equal(fmtPps(0.5), "0.50 PPS");
    assert.equal(fmtPct(0.065), "6.5%");
    assert.equal(fmtPct(0.78), "78%");
    assert.equal(fmtPct(0.0001), "0.010%");
    assert.equal(fmtPct(Number.NaN), "-");
  });

  it("aligns text tables", () => {
    const lines = textTable(report.tables[0]!).split("\n");
    assert.equal(lines[0], "T");
    assert.equal(lines[2], "figure       paper  sim");
    assert.equal(lines[4], "a            1      2");
    assert.equal(lines[5], "longer name  <b>    3");
    const text = textReport(report);
    assert.match(text, /^ntpshield simulate demo: A <demo> & more \(paper §0\)\n/);
    assert.match(text, /\nNotes\n- a note\n$/);
  });

  it("writes one self-contained, escaped HTML page with an SVG chart", () => {
    const html = htmlReport(report);
    assert.match(html, /A &#60;demo&#62; &#38; more/);
    assert.match(html, /<td>&#60;b&#62;<\/td>/);
    assert.equal((html.match(/<polyline /g) ?? []).length, 2);
    assert.match(html, />here<\/text>/);
    assert.doesNotMatch(html, /<script|<link|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    assert.equal(escapeHtml(`"'`), "&#34;&#39;");
    const svg = chartSvg(report.charts[0]!, 0);
    assert.match(svg, /^<svg /);
    assert.match(svg, /<\/svg>$/);
  });
});

describe("progressBar", () => {
  it("draws nothing when stderr is not a terminal", () => {
    const out: string[] = [];
    const bar = progressBar({ isTTY: false, write: (t: string) => out.push(t) });
    bar.update("run", 0.5);
    bar.finish();
    assert.deepEqual(out, []);
  });

  it("draws on a terminal, at most ten times a second, and clears the line when done", () => {
    const out: string[] = [];
    let now = 0;
    const bar = progressBar({ isTTY: true, columns: 100, write: (t: string) => out.push(t) }, () => now);
    bar.update("run", 0.1);
    now = 50;
    bar.update("run", 0.2); // too soon: skipped
    now = 200;
    bar.update("run", 0.5);
    bar.finish();
    assert.equal(out.length, 3);
    assert.match(out[0]!, /^\rrun \[#+-+\] {2}10% 0\.0 s/);
    assert.match(out[1]!, / {2}50% 0\.2 s/);
    assert.equal(out[2], "\r\x1b[K");
  });
});
