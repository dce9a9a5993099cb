// A private CA and a server certificate for loopback addresses (P-256), as openssl commands: the NTS
// benchmark (bench/nts.ts) and the NTS tests (test/helpers/nts.ts) need the same pair. Each runs the
// commands its own way: the tests find openssl as a test peer and fail with its output, the benchmark takes
// it from PATH.

import { join } from "node:path";

export interface CertificateRecipe {
  /** The CA's certificate (what clients trust), the server's certificate and key, PEM files in the folder. */
  ca: string;
  cert: string;
  key: string;
  /** The server certificate's extensions, and the file to write them to before the commands run. */
  extFile: string;
  extensions: string;
  /** openssl's arguments, a command each, in order: the CA, the server's request, the CA signing it. */
  commands: string[][];
}

/** The files in `dir` and the commands for a CA called `caName` and a certificate naming `addresses`. */
export function certificateRecipe(
  dir: string,
  addresses: readonly string[],
  o: { caName: string; days: number },
): CertificateRecipe {
  const ca = join(dir, "ca.crt");
  const caKey = join(dir, "ca.key");
  const cert = join(dir, "server.crt");
  const key = join(dir, "server.key");
  const csr = join(dir, "server.csr");
  const extFile = join(dir, "server.ext");
  const extensions = [
    `subjectAltName=${[...addresses.map((a) => `IP:${a}`), "DNS:localhost"].join(",")}`,
    "extendedKeyUsage=serverAuth",
    "basicConstraints=CA:FALSE",
    "",
  ].join("\n");
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  const days = ["-days", String(o.days)];
  const commands = [
    ["req", "-x509", ...ec, "-keyout", caKey, "-out", ca, "-subj", `/CN=${o.caName}`, ...days].concat([
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign",
    ]),
    ["req", ...ec, "-keyout", key, "-out", csr, "-subj", `/CN=${addresses[0] ?? "localhost"}`],
    ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", caKey, "-CAcreateserial", "-out", cert].concat([
      ...days,
      "-extfile",
      extFile,
    ]),
  ];
  return { ca, cert, key, extFile, extensions, commands };
}
