// Fetching snapshots from real HTTP servers on 127.0.0.1 (node:http, started here): all at once, each
// failure named (unreachable, timeout, HTTP status, not JSON, not a snapshot, too large) without losing the
// others, the skew recorded, and the progress written as a terminal or a log would want it.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { SurveyError } from "../../src/survey/errors.ts";
import {
  type FetchOutcome,
  fetchSnapshots,
  progressTo,
  snapshotUrl,
  sourcesOf,
} from "../../src/survey/fetch.ts";
import { handSurvey } from "./fixtures.ts";

const servers: Server[] = [];
const hanging = new Set<import("node:http").ServerResponse>();

async function serve(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

let ok: string;
let ok2: string;
let badJson: string;
let wrongFormat: string;
let status500: string;
let hang: string;
let closedPort: string;

before(async () => {
  const [a, b] = handSurvey();
  const snapshotHandler =
    (body: string): Parameters<typeof createServer>[1] =>
    (req, res) => {
      if (req.url !== "/api/snapshot") {
        res.writeHead(404).end("not found");
        return;
      }
      res.writeHead(200, { "content-type": "application/json" }).end(body);
    };
  ok = await serve(snapshotHandler(JSON.stringify(a)));
  ok2 = await serve(snapshotHandler(JSON.stringify(b)));
  badJson = await serve((_req, res) => res.writeHead(200).end("<html><body>Proxy error</body></html>"));
  wrongFormat = await serve((_req, res) =>
    res.writeHead(200).end(JSON.stringify({ format: 2, clients: [] })),
  );
  status500 = await serve((_req, res) => res.writeHead(500, "Internal Server Error").end("boom"));
  hang = await serve((_req, res) => {
    hanging.add(res);
  });
  // A port that was open a moment ago and is closed now: connection refused.
  const gone = createServer();
  await new Promise<void>((resolve) => gone.listen(0, "127.0.0.1", resolve));
  closedPort = `http://127.0.0.1:${(gone.address() as AddressInfo).port}`;
  await new Promise((resolve) => gone.close(resolve));
});

after(async () => {
  for (const res of hanging) res.destroy();
  for (const s of servers) s.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
});

function failure(o: FetchOutcome | undefined): SurveyError {
  assert.ok(o && !o.ok, "expected a failure");
  return o.error;
}

describe("snapshotUrl", () => {
  it("asks /api/snapshot of a bare endpoint and keeps a full URL", () => {
    assert.equal(snapshotUrl("http://127.0.0.1:11124"), "http://127.0.0.1:11124/api/snapshot");
    assert.equal(snapshotUrl("http://127.0.0.1:11124/"), "http://127.0.0.1:11124/api/snapshot");
    assert.equal(snapshotUrl("127.0.0.1:11124"), "http://127.0.0.1:11124/api/snapshot");
    assert.equal(snapshotUrl("[::1]:11124"), "http://[::1]:11124/api/snapshot");
    assert.equal(snapshotUrl("https://ntp.example/ops/snap?x=1"), "https://ntp.example/ops/snap?x=1");
  });
  it("refuses what cannot be surveyed", () => {
    for (const bad of ["ftp://127.0.0.1/x", "http://", "http://[::1:11124"]) {
      assert.throws(
        () => snapshotUrl(bad),
        (e: unknown) => e instanceof SurveyError && e.code === "ERR_SURVEY_URL",
        bad,
      );
    }
  });
});

describe("fetchSnapshots", () => {
  it("fetches all servers at once and records the skew", async () => {
    // Two servers that answer only once both requests have arrived (or after 5 s): a fetcher that waited
    // for one answer before asking the other would find the barrier unmet.
    const [a, b] = handSurvey();
    let arrived = 0;
    let release: () => void = () => {};
    const both = new Promise<void>((resolve) => {
      release = resolve;
    });
    let barrierMet = true;
    const barrier =
      (body: string): Parameters<typeof createServer>[1] =>
      async (_req, res) => {
        if (++arrived === 2) release();
        const met = await Promise.race([
          both.then(() => true),
          new Promise((r) => setTimeout(r, 5000, false).unref()),
        ]);
        if (!met) barrierMet = false;
        res.writeHead(200).end(body);
      };
    const urls = [
      snapshotUrl(await serve(barrier(JSON.stringify(a)))),
      snapshotUrl(await serve(barrier(JSON.stringify(b)))),
    ];
    const { outcomes, skew } = await fetchSnapshots(urls);
    assert.ok(barrierMet, "both requests were in flight together");
    assert.deepEqual(
      outcomes.map((o) => o.ok && o.snapshot.server),
      ["a", "b"],
    );
    assert.deepEqual(
      outcomes.map((o) => o.ok && o.snapshot),
      handSurvey().slice(0, 2),
    );
    // b's snapshot claims to be taken 1 s after a's.
    assert.equal(skew.takenAtSpread, 1);
    assert.ok(
      skew.localSpread !== null && skew.localSpread >= 0 && skew.localSpread < 5,
      `${skew.localSpread}`,
    );
    const sources = sourcesOf(outcomes);
    assert.equal(sources[0]!.server, "a");
    assert.ok(sources[0]!.bytes! > 100);
    assert.ok(sources[0]!.offset !== null && Number.isFinite(sources[0]!.offset));
  });

  it("names each failure and keeps the other servers' data", async () => {
    const urls = [ok, badJson, wrongFormat, status500, closedPort, `${ok}/elsewhere`].map(snapshotUrl);
    const { outcomes } = await fetchSnapshots(urls, { timeoutMs: 5000 });
    assert.equal(outcomes[0]!.ok, true);
    const codes = outcomes.slice(1).map((o) => failure(o).code);
    assert.deepEqual(codes, [
      "ERR_SURVEY_BAD_JSON",
      "ERR_SURVEY_FORMAT",
      "ERR_SURVEY_HTTP",
      "ERR_SURVEY_UNREACHABLE",
      "ERR_SURVEY_HTTP",
    ]);
    assert.match(failure(outcomes[1]).message, /the answer is not JSON: "<html><body>Proxy error/);
    assert.match(failure(outcomes[2]).message, /format 2 is not understood/);
    assert.match(failure(outcomes[3]).message, /HTTP 500 Internal Server Error/);
    assert.match(failure(outcomes[4]).message, /connection refused \(ECONNREFUSED\)/);
    assert.match(failure(outcomes[5]).message, /HTTP 404/);
    for (const [i, o] of outcomes.entries()) assert.ok(o.ok || failure(o).message.startsWith(urls[i]!));
  });

  it("gives up on a server that does not answer within the timeout, not on the others", async () => {
    const started = performance.now();
    const { outcomes } = await fetchSnapshots([snapshotUrl(hang), snapshotUrl(ok)], { timeoutMs: 1500 });
    const took = performance.now() - started;
    assert.equal(failure(outcomes[0]).code, "ERR_SURVEY_TIMEOUT");
    assert.match(failure(outcomes[0]).message, /no complete answer within 1\.5 s/);
    assert.equal(outcomes[1]!.ok, true);
    assert.ok(took >= 1490 && took < 5000, `took ${took} ms`);
  });

  it("refuses an answer larger than the limit", async () => {
    const { outcomes } = await fetchSnapshots([snapshotUrl(ok)], { maxBytes: 200 });
    assert.equal(failure(outcomes[0]).code, "ERR_SURVEY_TOO_LARGE");
  });
});

describe("progress", () => {
  // The terminal's "go to the start of the line and clear it", shown as <CLR> so the patterns read plainly.
  const CLEAR = "\r\u001b[K";
  function sink(isTTY: boolean) {
    const chunks: string[] = [];
    const shown = () => chunks.map((c) => c.replaceAll(CLEAR, "<CLR>"));
    return { chunks, shown, stream: { isTTY, write: (s: string) => chunks.push(s) } };
  }

  it("writes a plain line per server when stderr is not a terminal", async () => {
    const { chunks, stream } = sink(false);
    await fetchSnapshots([snapshotUrl(ok), snapshotUrl(closedPort)], { progress: progressTo(stream) });
    const text = chunks.join("");
    assert.ok(!text.includes("\r") && !text.includes("\u001b"), "no terminal control characters in a log");
    const lines = text.trimEnd().split("\n");
    assert.equal(lines.length, 3);
    assert.ok(
      lines.some((l) =>
        /^survey: http:\/\/127\.0\.0\.1:\d+\/api\/snapshot: a, 5 records, \d+ bytes in/.test(l),
      ),
    );
    assert.ok(lines.some((l) => /ECONNREFUSED.*\[ERR_SURVEY_UNREACHABLE\]$/.test(l)));
    assert.match(lines[2]!, /^survey: 1 of 2 snapshots in \d+\.\d{3} s, snapshots 0\.000 s apart/);
  });

  it("rewrites one line in place on a terminal, and clears it at the end", async () => {
    const { shown, stream } = sink(true);
    await fetchSnapshots([snapshotUrl(ok), snapshotUrl(ok2), snapshotUrl(closedPort)], {
      progress: progressTo(stream),
    });
    const chunks = shown();
    const text = chunks.join("");
    assert.match(chunks[0]!, /^<CLR>survey: fetching 3 snapshots: 0 done, 0 failed, 3 waiting/);
    assert.match(text, /<CLR>survey: fetching 3 snapshots: 2 done, 1 failed, 0 waiting/);
    // The failure gets a line of its own; successes do not.
    assert.match(text, /<CLR>survey: .*ECONNREFUSED.*\n/);
    assert.doesNotMatch(text, /a, 5 records/);
    assert.match(
      chunks.at(-1)!,
      /^<CLR>survey: 2 of 3 snapshots in .*, snapshots 1\.000 s apart \(server clocks\)\n$/,
    );
  });
});
