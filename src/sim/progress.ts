// A progress bar for long simulation runs, on stderr and only when stderr is a terminal (a pipe or a log
// file gets nothing, so `--json > file` stays clean and CI logs stay short). Redrawn at most ten times a
// second; cleared when done.

export interface ProgressSink {
  /** `label` is the run being simulated, `done` the share of its virtual time covered (0..1). */
  update(label: string, done: number): void;
  /** Erases the bar. */
  finish(): void;
}

export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

const NONE: ProgressSink = { update() {}, finish() {} };

export function progressBar(
  stream: ProgressStream = process.stderr,
  now: () => number = performance.now.bind(performance),
): ProgressSink {
  if (!stream.isTTY) return NONE;
  let last = Number.NEGATIVE_INFINITY;
  let shown = false;
  const started = now();
  return {
    update(label, done) {
      const t = now();
      if (t - last < 100 && done < 1) return;
      last = t;
      const width = Math.max(10, Math.min(40, (stream.columns || 80) - label.length - 24));
      const f = Math.max(0, Math.min(1, done));
      const filled = Math.round(f * width);
      const bar = `${"#".repeat(filled)}${"-".repeat(width - filled)}`;
      stream.write(
        `\r${label} [${bar}] ${(f * 100).toFixed(0).padStart(3)}% ${((t - started) / 1000).toFixed(1)} s\x1b[K`,
      );
      shown = true;
    },
    finish() {
      if (shown) stream.write("\r\x1b[K");
      shown = false;
    },
  };
}
