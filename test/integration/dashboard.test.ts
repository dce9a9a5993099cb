// The dashboard (docs/monitoring.md) end to end: a real server on loopback under real NTP traffic from
// several 127/8 addresses (a flooder that the call-gap gaps and kisses, a steady client, a refused one),
// Debian's Chromium driven headless by playwright-core. The page must show the numbers moving, overload
// control's panel (not past the redline, with its figures), the flooder at the top of the talkers, the chart
// drawn, and a blocklist entry removed by its button (and one added by the form); it must load nothing from
// anywhere else and log no error (a CSP violation would). A screenshot is kept in
// test-artifacts/dashboard.png.

import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type Browser, chromium, type Page } from "playwright-core";
import { POOLS } from "../../src/defence/overload.ts";
import { sendFrom, waitUntil } from "../helpers/monitor.ts";
import { freeUdpPort, killAllPeers, type Ntpshield, REPO_ROOT, startNtpshield } from "../helpers/peers.ts";

after(killAllPeers);

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = join(REPO_ROOT, "test-artifacts");

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Each worker's redline: far above the test's traffic, so the server never passes it. */
const REDLINE = 100_000;

/** A number shown by the page ("1,234 total", "12.5", "-" = none yet -> NaN). */
async function shown(page: Page, selector: string): Promise<number> {
  const text = (await page.textContent(selector)) ?? "";
  return Number(text.replace(/,/g, "").replace(/ total$/, ""));
}

describe("dashboard in headless Chromium", () => {
  let server: Ntpshield;
  let base: string;
  let browser: Browser | undefined;
  let stop = false;
  let traffic: Promise<unknown> | undefined;

  before(async () => {
    assert.ok(
      existsSync(CHROMIUM),
      `${CHROMIUM} is missing: run scripts/install-peers.sh (Debian package chromium)`,
    );
    const port = await freeUdpPort();
    server = await startNtpshield({
      listen: [`127.0.0.1:${port}`],
      threads: 2,
      configToml: [
        "[blocklist]",
        "enabled = true",
        'path = "blocklist.db"',
        "[[acl.rule]]",
        'address = "127.0.0.54"',
        'flags = ["noserve"]',
        "[overload]",
        `redline = ${REDLINE}`,
      ].join("\n"),
    });
    base = server.httpUrl!;
    // Bounded: at most 30 s, stopped by after() long before.
    const loop = async (address: string, gapMs: number) => {
      const end = Date.now() + 30_000;
      while (!stop && Date.now() < end) await sendFrom(address, port, 5, { gapMs, waitMs: 0 });
    };
    traffic = Promise.all([loop("127.0.0.51", 20), loop("127.0.0.52", 250), loop("127.0.0.54", 100)]);
    const add = await fetch(`${base}/api/blocklist`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ address: "127.0.0.59", reason: "dashboard test", duration: "1d" }),
    });
    assert.equal(add.status, 201);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  });

  after(async () => {
    stop = true;
    await browser?.close();
    await traffic;
    await server?.stop();
  });

  test("shows the traffic live and overload control's state, and removes and adds blocklist entries", {
    timeout: 60_000,
  }, async () => {
    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
    const problems: string[] = [];
    const foreign: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") problems.push(`${m.type()}: ${m.text()}`);
    });
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("request", (r) => {
      if (!r.url().startsWith(`${base}/`)) foreign.push(r.url());
    });

    await page.goto(`${base}/`);
    await page.waitForSelector("#status.live", { timeout: 10_000 });

    // The numbers move: the total grows between two refreshes, and the rates are those of the traffic.
    const first = await shown(page, "#total-received");
    await waitUntil("the received total to grow", async () => (await shown(page, "#total-received")) > first);
    await waitUntil("served/s > 0", async () => (await shown(page, "#rate-served")) > 0);
    await waitUntil(
      "gapped/s > 0 (127.0.0.51 sends 50 a second)",
      async () => (await shown(page, "#rate-gapped")) > 5,
    );
    await waitUntil(
      "denied/s > 0 (127.0.0.54 is noserve)",
      async () => (await shown(page, "#rate-denied")) > 1,
    );
    await waitUntil("a KoD counted", async () => (await shown(page, "#total-kod")) > 0);
    const stats = (await (await fetch(`${base}/api/stats`)).json()) as { packets: { received: number } };
    const onPage = await shown(page, "#total-received");
    assert.ok(
      onPage > 0 && onPage <= stats.packets.received,
      `page ${onPage}, server ${stats.packets.received}`,
    );

    // Overload control's panel: not past the redline (no badge), the configured redline, and the last
    // second's demand by class with nothing withheld. The redline is the sum over the workers that saw
    // packets in the last second: the kernel may have sent this traffic to one of the two or to both.
    assert.equal(await page.isVisible("#overload"), true);
    await waitUntil("the redline shown", async () => {
      const text = (await page.textContent("#overload-redline")) ?? "";
      return (
        text === `${REDLINE.toLocaleString("en")} requests/s` ||
        text === `${(2 * REDLINE).toLocaleString("en")} requests/s`
      );
    });
    await waitUntil(
      "some demand shown (the leak's answers to the flooder, the steady client's)",
      async () => (await shown(page, "#overload-demand-known")) > 0,
    );
    // One reading of the whole panel (the page updates it all at once, between two refreshes).
    const panel = (await page.evaluate(`(() => {
      const t = (id) => document.getElementById(id).textContent;
      const classes = ["mice", "known", "new"];
      return {
        active: t("overload-active"),
        badgeHidden: document.getElementById("overload-badge").hidden,
        demand: t("overload-demand"),
        entered: t("overload-entered"),
        byClass: classes.map((c) => [t("overload-demand-" + c), t("overload-pools-" + c), t("overload-withheld-" + c)]),
      };
    })()`)) as { active: string; badgeHidden: boolean; demand: string; entered: string; byClass: string[][] };
    const p = JSON.stringify(panel);
    assert.equal(panel.active, "no", p);
    assert.equal(panel.badgeHidden, true, p);
    assert.equal(panel.entered, "0", p);
    const demands = panel.byClass.map((c) => Number(c[0]!.replace(/,/g, "")));
    assert.ok(
      demands.every((d) => Number.isInteger(d) && d >= 0),
      p,
    );
    assert.equal(panel.demand, `${demands.reduce((a, b) => a + b, 0).toLocaleString("en")} requests/s`, p);
    assert.deepEqual(
      panel.byClass.map((c) => c.slice(1)),
      [0, 1, 2].map(() => [`0 of ${POOLS}`, "0"]),
      p,
    );
    const api = (await (await fetch(`${base}/api/stats`)).json()) as {
      overload: { overloaded: boolean; entered: number; withheld: number[] };
    };
    assert.equal(api.overload.overloaded, false);
    assert.equal(api.overload.entered, 0);
    assert.deepEqual(api.overload.withheld, [0, 0, 0]);

    // The flooder tops the talkers, flagged as rate-limited or kissed.
    await waitUntil("127.0.0.51 at the top of the talkers", async () => {
      const top = await page.getAttribute("#talkers tbody tr:first-child", "data-address");
      return top === "127.0.0.51";
    });
    const flag = await page.textContent("#talkers tbody tr:first-child td:nth-child(5)");
    assert.ok(flag === "L" || flag === "K", `r column ${flag}`);

    // The chart has the served line in it (its colour, #3fb950, among the canvas's pixels).
    // (A string, run in the page: the tests are type-checked without the DOM's types.)
    const servedPixels = `(() => {
      const c = document.getElementById("chart");
      const copy = document.createElement("canvas");
      copy.width = c.width;
      copy.height = c.height;
      const ctx = copy.getContext("2d", { willReadFrequently: true });
      ctx.drawImage(c, 0, 0);
      const d = ctx.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4)
        if (Math.abs(d[i] - 63) < 8 && Math.abs(d[i + 1] - 185) < 8 && Math.abs(d[i + 2] - 80) < 8) n++;
      return n;
    })()`;
    await waitUntil(
      "the served line on the chart",
      async () => ((await page.evaluate(servedPixels)) as number) > 20,
    );

    // The blocklist: the entry added over HTTP is there; its button removes it, on the server too.
    const row = '#blocklist tr[data-address="127.0.0.59"]';
    await page.waitForSelector(row, { timeout: 10_000 });
    assert.equal(await page.textContent(`${row} td:nth-child(2)`), "dashboard test");
    await page.click(`${row} button.remove`);
    await page.waitForSelector(row, { state: "detached", timeout: 10_000 });
    assert.match((await page.textContent("#message")) ?? "", /removed 127\.0\.0\.59/);
    const listed = (await (await fetch(`${base}/api/blocklist`)).json()) as {
      entries: { address: string }[];
    };
    assert.deepEqual(
      listed.entries.map((e) => e.address),
      [],
    );

    // The form adds one.
    await page.fill("#block-address", "127.0.0.58");
    await page.fill("#block-duration", "15m");
    await page.fill("#block-reason", "from the form");
    await page.click("#block-form button[type=submit]");
    await page.waitForSelector('#blocklist tr[data-address="127.0.0.58"]', { timeout: 10_000 });
    const after = (await (await fetch(`${base}/api/blocklist`)).json()) as {
      entries: { address: string; reason: string; expiresMs: number }[];
    };
    assert.equal(after.entries.length, 1);
    assert.equal(after.entries[0]!.reason, "from the form");
    assert.ok(Math.abs(after.entries[0]!.expiresMs - (Date.now() + 15 * 60_000)) < 60_000);

    // A picture for people, with a few seconds of the chart in it.
    await sleep(1500);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, "dashboard.png"), fullPage: true });
    assert.deepEqual(foreign, [], "every request went to ntpshield itself");
    assert.deepEqual(problems, [], "no error or warning in the console");
    await page.close();
  });
});
