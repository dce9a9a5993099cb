// NTS test material: a private CA and a server certificate for loopback addresses, made with the real
// openssl (scripts/install-peers.sh installs it; a missing openssl fails the test, never skips it), an
// ntpshield serving NTS with them, and a raw NTS-KE client that sends any bytes, for the hostile-input tests.

import { writeFile } from "node:fs/promises";
import { connect } from "node:tls";
import { certificateRecipe } from "../../bench/certificates.ts";
import { findTool, freeUdpPort, type Ntpshield, PeerError, run, startNtpshield } from "./peers.ts";

export interface NtsCertificates {
  /** The CA's certificate, PEM: what clients trust (chrony's ntstrustedcerts, our client's ca). */
  ca: string;
  /** The server's certificate and key, PEM, for every address in `addresses`. */
  cert: string;
  key: string;
}

/** A CA and a server certificate (P-256, valid two days) naming `addresses` and localhost, in `dir`. */
export async function makeNtsCertificates(
  dir: string,
  addresses: readonly string[],
): Promise<NtsCertificates> {
  const openssl = findTool("openssl");
  const recipe = certificateRecipe(dir, addresses, { caName: "ntsT test CA", days: 2 });
  await writeFile(recipe.extFile, recipe.extensions);
  for (const args of recipe.commands) {
    const r = await run([openssl, ...args], 20_000);
    if (r.code !== 0)
      throw new PeerError("PEER_FAILED", `openssl failed: ${args.slice(0, 2).join(" ")}`, r.output);
  }
  return { ca: recipe.ca, cert: recipe.cert, key: recipe.key };
}

/** The [nts] table of a server whose NTS-KE listens on `host` (a port the system picks) with `certs`. */
export function ntsTable(host: string, certs: NtsCertificates): string[] {
  return [
    "[nts]",
    "enabled = true",
    `listen = "${host}:0"`,
    `certificate = "${certs.cert}"`,
    `key = "${certs.key}"`,
  ];
}

/** Where a started server's NTS-KE listens, as its "listening" log line says. */
export function ntsKeAddress(s: Ntpshield): { host: string; port: number } {
  const [host, port] = String(s.records.find((r) => r["msg"] === "listening")!["nts"]).split(":");
  return { host: host!, port: Number(port) };
}

/**
 * ntpshield serving NTP on `host` (at `ntpPort`, or a free port) and NTS-KE beside it, HTTP on a port the
 * system picks. The call-gap is off unless `callgap` gives its table's lines: the tests ask more often than
 * it allows. `head` comes before the tables, `nts` is added to [nts].
 */
export async function startNtsServer(
  host: string,
  certs: NtsCertificates,
  o: { ntpPort?: number; head?: string[]; callgap?: string[]; nts?: string[] } = {},
): Promise<{ server: Ntpshield; ke: { host: string; port: number } }> {
  const server = await startNtpshield({
    listen: [`${host}:${o.ntpPort ?? (await freeUdpPort(host))}`],
    http: `${host}:0`,
    configToml: [
      ...(o.head ?? []),
      "[callgap]",
      ...(o.callgap ?? ["enabled = false"]),
      ...ntsTable(host, certs),
      ...(o.nts ?? []),
      "",
    ].join("\n"),
  });
  return { server, ke: ntsKeAddress(server) };
}

export interface RawKeResult {
  /** ALPN the server agreed on (false: none). */
  alpn: string | false;
  /** Everything the server sent before closing. */
  received: Buffer;
  /** The TLS or socket error, if the connection failed. */
  error: Error | undefined;
}

/**
 * Connects to an NTS-KE server with TLS, sends `bytes` (then, with `end`, closes our side), and collects what
 * comes back until the server closes. `alpn: null` offers no ALPN at all.
 */
export function rawKe(
  host: string,
  port: number,
  ca: string | Buffer,
  bytes: Uint8Array,
  o: { alpn?: string[] | null; end?: boolean; maxVersion?: "TLSv1.2" | "TLSv1.3"; waitMs?: number } = {},
): Promise<RawKeResult> {
  return new Promise((resolve) => {
    const socket = connect({
      host,
      port,
      ca,
      ...(o.alpn === null ? {} : { ALPNProtocols: o.alpn ?? ["ntske/1"] }),
      ...(o.maxVersion ? { maxVersion: o.maxVersion } : {}),
    });
    const chunks: Buffer[] = [];
    let error: Error | undefined;
    const timer = setTimeout(() => socket.destroy(), o.waitMs ?? 5000);
    socket.once("secureConnect", () => {
      if (bytes.length > 0) socket.write(bytes);
      if (o.end) socket.end();
    });
    socket.on("data", (d: Buffer) => chunks.push(d));
    socket.on("error", (e) => {
      error = e;
    });
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ alpn: socket.alpnProtocol ?? false, received: Buffer.concat(chunks), error });
    });
  });
}
