// SIGINT and SIGTERM end the client commands that run until told (`sync`, `sync --broadcast`,
// `sync --manycast`) the way their --count does: the client stopped, exit 0, rather than death by the
// signal's default action.

/** Calls `stop` on SIGINT or SIGTERM until the function returned is called. */
export function onStopSignal(stop: () => void): () => void {
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  return () => {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  };
}
