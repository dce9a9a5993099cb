// The survey's errors (paper §5): one class with a stable code for every way a survey can go wrong, from a
// bad option to a server that does not answer, so the CLI can say which server failed and why, and a script
// can tell an unreachable server from one that answered nonsense.

import { CodedError } from "../base/errors.ts";

export type SurveyErrorCode =
  /** An option out of range (burst spacing, bins, window, top). */
  | "ERR_SURVEY_OPTION"
  /** consolidate() was given no snapshot. */
  | "ERR_SURVEY_NO_SNAPSHOTS"
  /** The lists share no span of time (skew larger than what they cover, or a window given backwards). */
  | "ERR_SURVEY_NO_WINDOW"
  /** A snapshot that is not format 1 of src/survey/snapshot.ts (a field missing, of the wrong type...). */
  | "ERR_SURVEY_FORMAT"
  /** A server given as something that is not an http(s) URL. */
  | "ERR_SURVEY_URL"
  /** No connection: refused, host not found, reset before the answer was complete. */
  | "ERR_SURVEY_UNREACHABLE"
  /** No complete answer within the timeout. */
  | "ERR_SURVEY_TIMEOUT"
  /** An answer other than 200 OK. */
  | "ERR_SURVEY_HTTP"
  /** A 200 answer whose body is not JSON. */
  | "ERR_SURVEY_BAD_JSON"
  /** An answer larger than the limit (a misdirected URL streaming something else). */
  | "ERR_SURVEY_TOO_LARGE";

export class SurveyError extends CodedError<SurveyErrorCode> {
  /** The server (URL or snapshot name) the error is about, when it is about one. */
  readonly server: string | undefined;

  constructor(code: SurveyErrorCode, message: string, options: { server?: string; cause?: unknown } = {}) {
    super(code, message, options.cause === undefined ? {} : { cause: options.cause });
    this.server = options.server;
  }
}
