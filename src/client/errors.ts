// Errors of the client library, with stable codes. Network input never raises one of these: a bad,
// spoofed or stale reply is a verdict (measure.ts) or an ignored datagram (match.ts), reported as an
// event. These are for what the embedding program hands in wrongly, and for the state file.

import { CodedError } from "../base/errors.ts";

export type ClientErrorCode =
  /** An option that is not a number, or out of any sensible range (clamped ones are notices, not errors). */
  | "ERR_CLIENT_INVALID_OPTION"
  /** A server given with no host, a port outside 1-65535, or no server at all. */
  | "ERR_CLIENT_INVALID_SERVER"
  /** The kiss-o'-death state file could not be read or written (the client keeps running on memory). */
  | "ERR_CLIENT_STATE_FILE"
  /** A method called in the wrong state (start twice, an exchange id the core never issued). */
  | "ERR_CLIENT_STATE";

export class ClientError extends CodedError<ClientErrorCode> {
  constructor(code: ClientErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options?.cause === undefined ? {} : { cause: options.cause });
  }
}
