// The endpoint's errors: HttpError, a request refused with a status and a message, and the bind failures
// of its socket as ServeErrors (src/server/errors.ts), which stop the server at start-up.

import { ServeError } from "../errors.ts";

/** An HTTP bind failure in words an operator can act on (compare explainBindError for the NTP sockets). */
export function explainHttpBindError(address: string, code: string, message: string): ServeError {
  const where = `cannot bind the monitoring endpoint ${address} ([http] listen or --http)`;
  switch (code) {
    case "EADDRINUSE":
      return new ServeError(
        "ERR_HTTP_BIND_IN_USE",
        `${where}: the address is in use. Is another ntpshield running? Choose another port, or turn the ` +
          "endpoint off with [http] enabled = false (--http off)",
      );
    case "EACCES":
    case "EPERM":
      return new ServeError(
        "ERR_HTTP_BIND_PRIVILEGED",
        `${where}: the port is privileged: start as root (the endpoint is bound before [server] user drops ` +
          "privileges) or use a port above 1023 (the default is 11124)",
      );
    case "EADDRNOTAVAIL":
      return new ServeError("ERR_HTTP_BIND_NOT_AVAILABLE", `${where}: not an address of this host`);
    default:
      return new ServeError("ERR_HTTP_BIND", `${where}: ${message}`);
  }
}

/** A request answered with `status` and {error: message} (handlers throw it; the server answers). */
export class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}
