// `ntpshield survey URL...`: the paper's NIST survey (§5) run against live servers. Takes every server's
// /api/snapshot at once, consolidates the lists (src/survey/consolidate.ts) and prints the figures: the
// window, packets and rate captured, the share of arrivals, the bursters and their share of the load, the
// bursters by rate and by duration, the top elephants and the load-share curve. Text by default, --json for
// scripts, --html FILE for a page with the plots. docs/survey.md says what each figure means.

import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { CodedError } from "../base/errors.ts";
import { consolidate, SURVEY_DEFAULTS } from "../survey/consolidate.ts";
import { SurveyError } from "../survey/errors.ts";
import { DEFAULT_TIMEOUT_MS, fetchSnapshots, progressTo, snapshotUrl, sourcesOf } from "../survey/fetch.ts";
import { htmlReport, jsonReport, textReport } from "../survey/report.ts";

export const SURVEY_USAGE = `usage: ntpshield survey URL... [--json] [--html FILE] [--top N] [--burst-spacing S] [--timeout S] [--strict]

  URL              a server's HTTP endpoint: http://host:port (its /api/snapshot is asked), a full URL,
                   or host:port; all are asked at once
  --json           print the result as JSON instead of the text report
  --html FILE      also write one self-contained page with the plots to FILE
  --top N          elephants to list (default ${SURVEY_DEFAULTS.top})
  --burst-spacing S  a burster's mean packet spacing is under S seconds (default ${SURVEY_DEFAULTS.burstSpacing}, the paper's)
  --timeout S      give up on a server after S seconds (default ${DEFAULT_TIMEOUT_MS / 1000})
  --strict         fail if any server fails, instead of surveying the others

exit status: 0 report made, 1 no report (every server failed, --strict, no common window, FILE not written),
2 usage`;

class UsageError extends CodedError<"ERR_SURVEY_USAGE"> {
  constructor(message: string) {
    super("ERR_SURVEY_USAGE", message);
  }
}

function positiveNumber(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n) || n <= 0)
    throw new UsageError(`${flag} must be a positive number, got ${JSON.stringify(text)}`);
  return n;
}

/** Runs `ntpshield survey ...`. */
export async function surveyCommand(argv: string[]): Promise<number> {
  const err = (s: string) => process.stderr.write(`ntpshield survey: ${s}\n`);
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        json: { type: "boolean" },
        html: { type: "string" },
        top: { type: "string" },
        "burst-spacing": { type: "string" },
        timeout: { type: "string" },
        strict: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    err((e as Error).message);
    process.stderr.write(`${SURVEY_USAGE}\n`);
    return 2;
  }
  if (values["help"]) {
    process.stdout.write(`${SURVEY_USAGE}\n`);
    return 0;
  }

  let urls: string[];
  let top: number;
  let burstSpacing: number;
  let timeoutMs: number;
  const html = values["html"] as string | undefined;
  try {
    if (positionals.length === 0) throw new UsageError("name at least one server URL");
    urls = positionals.map(snapshotUrl);
    const seen = new Set<string>();
    for (const u of urls) {
      if (seen.has(u)) throw new UsageError(`${u} is given twice: its packets would count twice`);
      seen.add(u);
    }
    const topText = values["top"] as string | undefined;
    top = topText === undefined ? SURVEY_DEFAULTS.top : Number(topText);
    if (topText !== undefined && !/^[0-9]{1,9}$/.test(topText))
      throw new UsageError(`--top must be a whole number, got ${JSON.stringify(topText)}`);
    burstSpacing = positiveNumber(
      "--burst-spacing",
      values["burst-spacing"] as string | undefined,
      SURVEY_DEFAULTS.burstSpacing,
    );
    timeoutMs =
      1000 * positiveNumber("--timeout", values["timeout"] as string | undefined, DEFAULT_TIMEOUT_MS / 1000);
    if (html === "") throw new UsageError("--html needs a file name");
  } catch (e) {
    if (e instanceof UsageError || e instanceof SurveyError) {
      err(e.message);
      process.stderr.write(`${SURVEY_USAGE}\n`);
      return 2;
    }
    throw e;
  }

  const fetched = await fetchSnapshots(urls, { timeoutMs, progress: progressTo(process.stderr) });
  const failed = fetched.outcomes.filter((o) => !o.ok);
  const snapshots = fetched.outcomes.flatMap((o) => (o.ok ? [o.snapshot] : []));
  if (snapshots.length === 0) {
    err(`no server answered with a snapshot (${failed.length} failed)`);
    return 1;
  }
  if (failed.length > 0) {
    if (values["strict"]) {
      err(`${failed.length} of ${urls.length} servers failed and --strict was given: no report`);
      return 1;
    }
    err(`going on with ${snapshots.length} of ${urls.length} servers (--strict refuses that)`);
  }

  let result: ReturnType<typeof consolidate>;
  try {
    result = consolidate(snapshots, { top, burstSpacing });
  } catch (e) {
    if (e instanceof SurveyError) {
      err(`${e.message} [${e.code}]`);
      return 1;
    }
    throw e;
  }
  const context = { sources: sourcesOf(fetched.outcomes), fetchSkew: fetched.skew };
  // The report first: a page that cannot be written must not cost the survey just taken.
  process.stdout.write(values["json"] ? jsonReport(result, context) : textReport(result, context));
  if (html !== undefined) {
    try {
      writeFileSync(html, htmlReport(result, context));
    } catch (e) {
      err(`cannot write ${html}: ${(e as Error).message}`);
      return 1;
    }
    err(`wrote ${html}`);
  }
  return 0;
}
