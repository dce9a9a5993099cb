// Errors of the NTS layer. Network input (KE records, NTS extension fields, cookies) is judged by return
// values on the per-request path and never throws past its parser; NtsError is for values our own code or
// the operator hands in wrongly (a key of the wrong length, a key file that does not parse) and for the
// client's refusals, each with a stable code.

import { CodedError } from "../base/errors.ts";

export type NtsErrorCode =
  /** A key, nonce or length given to the AEAD that it cannot take. */
  | "ERR_NTS_AEAD_ARGUMENT"
  /** An NTS request our own code asked to build that no server would take (too long). */
  | "ERR_NTS_REQUEST"
  /** A KE record our own code asked to encode that the wire format cannot carry. */
  | "ERR_NTS_KE_ENCODE"
  /** A KE message received that breaks RFC 8915 §4 (the client's view of a server's answer). */
  | "ERR_NTS_KE_PROTOCOL"
  /** The KE server answered with an Error record (RFC 8915 §4.1.3). */
  | "ERR_NTS_KE_ERROR"
  /** The key file (fleet keys) cannot be read or parsed. */
  | "ERR_NTS_KEY_FILE"
  /** A server key that cannot be used (length, id). */
  | "ERR_NTS_KEY";

export class NtsError extends CodedError<NtsErrorCode> {}
