// The survey's report on the hand-computed survey: the text (the paper's figures, tables aligned), the
// JSON (the result itself, parseable, no NaN), and the HTML page (self-contained, with the three plots, and
// nothing from a server's answer able to inject markup).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { consolidate } from "../../src/survey/consolidate.ts";
import type { SurveySource } from "../../src/survey/fetch.ts";
import {
  formatDuration,
  formatInt,
  formatPercent,
  formatRate,
  htmlReport,
  jsonReport,
  textReport,
} from "../../src/survey/report.ts";
import { client, handSurvey, snapshot, T } from "./fixtures.ts";

const result = consolidate(handSurvey());

/** The lines of the text block that starts with `title`, up to the next blank line. */
function block(text: string, title: string): string[] {
  const lines = text.split("\n");
  const at = lines.findIndex((l) => l.trimStart().startsWith(title));
  assert.ok(at >= 0, `no "${title}" in\n${text}`);
  const end = lines.indexOf("", at);
  return lines.slice(at, end < 0 ? undefined : end);
}

describe("number formats", () => {
  it("reads as the paper writes", () => {
    assert.equal(formatInt(3595), "3,595");
    assert.equal(formatInt(1_400_000_000), "1,400,000,000");
    assert.equal(formatPercent(0.78), "78.0%");
    assert.equal(formatPercent(0.0047), "0.47%");
    assert.equal(formatPercent(0), "0%");
    assert.equal(formatPercent(1e-6), "<0.01%");
    assert.equal(formatRate(313.4), "313");
    assert.equal(formatRate(28), "28.0");
    assert.equal(formatRate(1.666), "1.67");
    assert.equal(formatRate(0.25), "0.250");
    assert.equal(formatDuration(9), "9.00 s");
    assert.equal(formatDuration(699.5), "11.7 min");
    assert.equal(formatDuration(7299), "2.03 h");
    assert.equal(formatDuration(2 * 86400 + 3600), "2.04 d");
  });
});

describe("textReport", () => {
  const text = textReport(result);

  it("says what the paper says, in its order", () => {
    const order = [
      "Window",
      "Captured",
      "Share of arrivals",
      "Clients",
      "Bursters (spacing < 5 s)",
      "In effect",
      "Bursters by rate",
      "Bursters by duration",
      "Top 10 elephants",
      "Load-share curve",
    ].map((t) => text.indexOf(t));
    assert.ok(
      order.every((i) => i >= 0),
      `missing a section: ${order}`,
    );
    assert.deepEqual(
      order,
      [...order].sort((a, b) => a - b),
    );
    assert.match(
      text,
      /Window +1\.7 min \(100\.000 s\), 2023-11-14T22:13:20\.000Z to 2023-11-14T22:15:00\.000Z/,
    );
    assert.match(text, /Captured +422 packets \(4\.22 PPS\)/);
    assert.match(text, /Share of arrivals +10\.5% of about 4,000 arrivals/);
    assert.match(
      text,
      /Clients +12 in 18 records; 4 seen by more than one server; 1 more only before the window/,
    );
    assert.match(text, /7 clients \(58\.3%\) in 11 records, 415 packets, 4\.15 PPS: 98\.3% of the load/);
    assert.match(text, /In effect, 58\.3% of the clients \(the bursters\) carry 98\.3% of the load\./);
    assert.match(
      text,
      /50\.0% of the load from 16\.7%, 80\.0% of the load from 25\.0%, 90\.0% of the load from 33\.3%/,
    );
    assert.match(text, /192\.0\.2\.5 +1 +100 +1\.00 +23\.7% +1\.00 +1\.00 s +>=2\.32 d +200,100/);
    assert.match(text, /Warnings\n {2}a's list refused 3 newcomers/);
  });

  it("aligns its tables: right-aligned columns end where their headers end", () => {
    for (const title of ["Bursters by rate", "Bursters by duration"]) {
      const lines = block(text, title);
      assert.equal(lines.length, 7, `${title}: header, 4 bins, all, not`);
      const width = lines[0]!.length;
      for (const l of lines) assert.equal(l.length, width, `${title}: ${JSON.stringify(l)}`);
      const header = lines[0]!;
      const clientsEnd = header.indexOf("clients") + "clients".length;
      for (const l of lines.slice(1)) assert.match(l.slice(clientsEnd - 1, clientsEnd), /\d/, l);
    }
    const rate = block(text, "Bursters by rate");
    assert.match(rate[1]!, /^ {2}under 1 PPS +3 +25\.0% +94 +0\.940 +22\.3%$/);
    assert.match(rate[5]!, /^ {2}all bursters +7 +58\.3% +415 +4\.15 +98\.3%$/);
    const curve = block(text, "Load-share curve").slice(1, 3);
    assert.equal(curve[0]!.length, curve[1]!.length);
  });

  it("lists the servers with their URLs, and the ones that failed", () => {
    const sources: SurveySource[] = [
      {
        url: "http://127.0.0.1:1/api/snapshot",
        ok: true,
        server: "a",
        sentAt: 0,
        answeredAt: 0.01,
        finishedAt: 0.02,
        offset: 0,
        bytes: 10,
        error: null,
      },
      {
        url: "http://127.0.0.1:2/api/snapshot",
        ok: false,
        server: null,
        sentAt: 0,
        answeredAt: null,
        finishedAt: 0.02,
        offset: null,
        bytes: null,
        error: {
          code: "ERR_SURVEY_UNREACHABLE",
          message: "http://127.0.0.1:2/api/snapshot: connection refused",
        },
      },
    ];
    const t = textReport(result, {
      sources,
      fetchSkew: { takenAtSpread: 1, localSpread: 0.004, elapsed: 0.02 },
    });
    assert.match(t, /^ {2}http:\/\/127\.0\.0\.1:1\/api\/snapshot +2023-11-14T22:15:00\.000Z +\+0\.000/m);
    assert.match(t, /^ {2}b +2023-11-14T22:15:01\.000Z +\+1\.000/m);
    assert.match(t, /http:\/\/127\.0\.0\.1:2\/api\/snapshot: FAILED: .*connection refused/);
    assert.match(
      t,
      /taken 1\.000 s apart by the servers' clocks; requests answered within 0\.004 s of each other here/,
    );
  });

  it("says so when no client sent a packet in the window", () => {
    const empty = consolidate([snapshot("a", T, T - 10, [])]);
    assert.match(textReport(empty), /No client sent a packet in the window\./);
  });
});

describe("jsonReport", () => {
  it("is the result itself, parseable, with the sources", () => {
    const parsed = JSON.parse(jsonReport(result));
    assert.deepEqual(
      { ...parsed, sources: undefined, fetchSkew: undefined },
      {
        ...JSON.parse(JSON.stringify(result)),
        sources: undefined,
        fetchSkew: undefined,
      },
    );
    assert.equal(parsed.bursters.clients, 7);
    assert.equal(parsed.sources, null);
  });
  it("writes no NaN or Infinity, which JSON cannot carry", () => {
    const text = jsonReport({ ...result, rate: Number.POSITIVE_INFINITY, skew: Number.NaN });
    const parsed = JSON.parse(text);
    assert.equal(parsed.rate, null);
    assert.equal(parsed.skew, null);
  });
});

describe("htmlReport", () => {
  const html = htmlReport(result);

  it("holds the three plots as inline SVG", () => {
    for (const id of ["load-share", "rate-histogram", "duration-histogram"])
      assert.match(html, new RegExp(`<svg id="${id}"[^>]*>[\\s\\S]*?</svg>`), id);
    const polyline = /<polyline class="curve" points="([^"]+)"/.exec(html);
    assert.ok(polyline, "the load-share curve");
    assert.equal(polyline[1]!.split(" ").length, 13, "one point per client and the origin");
    // Four bins, two bars each, in each histogram.
    const rates = /<svg id="rate-histogram"[\s\S]*?<\/svg>/.exec(html)![0];
    assert.equal(
      (rates.match(/<rect class="bar-(clients|load)" x="[^"]+" y="[^"]+" width/g) ?? []).length,
      8 + 2,
    );
    assert.match(rates, /5 PPS or more/);
    const durations = /<svg id="duration-histogram"[\s\S]*?<\/svg>/.exec(html)![0];
    assert.match(durations, /a day or more/);
    assert.match(html, /In effect, 58\.3% of the clients \(the bursters\) carry 98\.3% of the load\./);
  });

  it("is self-contained: no script, no stylesheet, image or font to fetch", () => {
    assert.match(html, /^<!doctype html>/);
    for (const outside of [
      /<script/i,
      /<link/i,
      /\ssrc=/i,
      /\shref=/i,
      /url\(/i,
      /@import/i,
      /<img/i,
      /<iframe/i,
    ])
      assert.doesNotMatch(html, outside);
  });

  it("escapes whatever a server's answer puts in its names", () => {
    const hostile = handSurvey();
    hostile[0]!.server = `<script>alert("a")</script>`;
    hostile[0]!.clients.push(client("192.0.2.99", T + 1, T + 2, 2));
    const page = htmlReport(consolidate(hostile));
    assert.doesNotMatch(page, /<script/);
    assert.match(page, /&lt;script&gt;alert\(&quot;a&quot;\)&lt;\/script&gt;/);
  });
});
