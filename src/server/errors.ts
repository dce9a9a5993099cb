// Errors of the server's main thread, apart from the orchestrator (server.ts) so that the pieces around it
// (the monitoring endpoint, the CLI) can name them without importing it.

/** A failure an operator can fix (a bind, a user, a disabled blocklist), with a stable code. */
export class ServeError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = "ServeError";
    this.code = code;
  }
}
