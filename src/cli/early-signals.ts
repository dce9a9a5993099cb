// Signals that come while the command is still being loaded. Node takes a few hundred milliseconds to load
// and strip the types of every module before the first line of `serve` runs; a SIGTERM then would end the
// process by the signal's default action, with no `stopping` line (issue: stop cleanly at any point of
// start-up). The entry (entry.ts) holds the three signals from its first line, before it loads the rest;
// `serve` takes over and replays them, any other command lets them act as they would have.

const TAKEN = ["SIGTERM", "SIGINT", "SIGHUP"] as const;
const held: string[] = [];
const handlers = new Map<string, () => void>();

/** Records SIGTERM, SIGINT and SIGHUP from now until releaseSignals(). */
export function holdSignals(): void {
  for (const signal of TAKEN) {
    const handler = () => {
      held.push(signal);
    };
    handlers.set(signal, handler);
    process.on(signal, handler);
  }
}

/** Stops recording and returns the signals that came meanwhile, oldest first (none if never held). */
export function releaseSignals(): string[] {
  for (const [signal, handler] of handlers) process.off(signal, handler);
  handlers.clear();
  return held.splice(0);
}
