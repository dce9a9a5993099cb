// Errors of the server's main thread, apart from the orchestrator (server.ts) so that the pieces around it
// (the monitoring endpoint, the CLI) can name them without importing it.

import { CodedError } from "../base/errors.ts";

/** A failure an operator can fix (a bind, a user, a disabled blocklist), with a stable code. */
export class ServeError extends CodedError {}
