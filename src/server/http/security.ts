// Who may change anything over HTTP (a control interface open to the world is how ntpd's monlist became an
// amplifier). Reads are open to whoever reaches the socket; a write must come from [control] allow (the TCP
// peer address: unlike UDP it has completed a handshake, so it cannot be forged off-path) and must be one a
// web page of another site could not have made through the operator's browser: a JSON body (a cross-site
// form cannot send one without a CORS preflight, which is never granted), no foreign Origin, and a Host
// that is an IP address or localhost (a DNS-rebinding page names its own host).

import type { IncomingMessage } from "node:http";
import { parseAddressKey } from "../../defence/address-key.ts";
import type { Logger } from "../log.ts";
import { HttpError } from "./errors.ts";

/** A Host header naming an IP address or localhost (any port): what a DNS-rebinding page cannot send. */
function literalHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  const m = /^(\[[0-9a-fA-F:.]+\]|[0-9.]+|localhost)(:[0-9]{1,5})?$/.exec(host);
  if (m === null) return false;
  const name = m[1]!;
  if (name === "localhost") return true;
  const bare = name.startsWith("[") ? name.slice(1, -1) : name;
  return parseAddressKey(bare, new Uint32Array(4));
}

/** Refuses (403) a write from outside [control] allow, or one a web page of another site could make. */
export function checkWriter(req: IncomingMessage, allowed: (address: string) => boolean, log: Logger): void {
  const peer = req.socket.remoteAddress ?? "";
  if (!allowed(peer)) {
    log.warn("monitoring endpoint: write refused", { peer, reason: "not in [control] allow" });
    throw new HttpError(403, `${peer} may not change anything here (not in [control] allow)`);
  }
  const host = req.headers.host;
  if (!literalHost(host))
    throw new HttpError(
      403,
      "writes must name the server by IP address or localhost in Host (DNS rebinding)",
    );
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== `http://${host}`)
    throw new HttpError(403, `cross-site write refused (Origin ${origin})`);
}

/** Refuses (415) a write whose body is not JSON: what a cross-site form could send is refused unread. */
export function requireJsonBody(req: IncomingMessage): void {
  const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== "application/json")
    throw new HttpError(415, "send the entry as JSON (content-type: application/json)");
}
