import { CodedError } from "../base/errors.ts";

/** One thing wrong with a configuration: the key path (or flag) and what is wrong with it. */
export interface ConfigProblem {
  readonly key: string;
  readonly reason: string;
}

export type ConfigErrorCode = "ERR_CONFIG_INVALID" | "ERR_CONFIG_SYNTAX" | "ERR_CONFIG_READ";

export interface ConfigErrorOptions {
  /** Defaults to ERR_CONFIG_INVALID. */
  code?: ConfigErrorCode | undefined;
  /** All problems when there are several; the first must be the (key, reason) given. */
  problems?: readonly ConfigProblem[] | undefined;
  /** File name or other label, put in front of the message. */
  source?: string | undefined;
  line?: number | undefined;
  column?: number | undefined;
  /** Extra lines put after the message (e.g. the offending TOML lines with a caret). */
  detail?: string | undefined;
  cause?: unknown;
}

/**
 * Every way a configuration can be wrong. `key`/`reason` describe the first problem; `problems` holds
 * all of them, because an operator fixing a file wants the whole list at once, not one per restart.
 * `key` is a key path ("clock.stratum"), a flag ("--threads"), or "" when no key is to blame.
 */
export class ConfigError extends CodedError<ConfigErrorCode> {
  readonly key: string;
  readonly reason: string;
  readonly problems: readonly ConfigProblem[];
  readonly source: string | undefined;
  /** 1-based position of a TOML syntax error; undefined for other errors. */
  readonly line: number | undefined;
  readonly column: number | undefined;

  constructor(key: string, reason: string, options: ConfigErrorOptions = {}) {
    const problems =
      options.problems !== undefined && options.problems.length > 0 ? options.problems : [{ key, reason }];
    const detail = options.detail ? `\n${options.detail.replace(/\n+$/, "")}` : "";
    super(
      options.code ?? "ERR_CONFIG_INVALID",
      formatMessage(problems, options.source) + detail,
      options.cause === undefined ? {} : { cause: options.cause },
    );
    this.key = key;
    this.reason = reason;
    this.problems = Object.freeze(problems.map((p) => Object.freeze({ key: p.key, reason: p.reason })));
    this.source = options.source;
    this.line = options.line;
    this.column = options.column;
  }

  /** One error for a non-empty list of problems; key and reason are the first one's. */
  static of(problems: readonly ConfigProblem[], options: ConfigErrorOptions = {}): ConfigError {
    const first = problems[0] ?? { key: "", reason: "invalid configuration" };
    return new ConfigError(first.key, first.reason, { ...options, problems });
  }
}

function formatProblem(p: ConfigProblem): string {
  return p.key === "" ? p.reason : `${p.key}: ${p.reason}`;
}

function formatMessage(problems: readonly ConfigProblem[], source: string | undefined): string {
  const prefix = source === undefined ? "" : `${source}: `;
  if (problems.length === 1) return prefix + formatProblem(problems[0]!);
  return `${prefix}${problems.length} problems:\n${problems.map((p) => `  ${formatProblem(p)}`).join("\n")}`;
}
