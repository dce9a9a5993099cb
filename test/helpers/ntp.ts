// A minimal NTP exchange for tests: send datagrams from one socket, collect what comes back.
import dgram from "node:dgram";

/** Sends `packets` to host:port from one fresh socket and returns what came back within `waitMs`. */
export async function exchange(
  port: number,
  packets: Buffer[],
  waitMs = 300,
  host = "127.0.0.1",
): Promise<Buffer[]> {
  const sock = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
  const got: Buffer[] = [];
  sock.on("message", (m) => got.push(m));
  await new Promise<void>((r) => sock.bind(0, host.includes(":") ? "::1" : "127.0.0.1", () => r()));
  for (const p of packets) sock.send(p, port, host);
  await new Promise((r) => setTimeout(r, waitMs));
  await new Promise<void>((r) => sock.close(() => r()));
  return got;
}

/** A 48-byte client request (mode 3 unless told) with a recognisable transmit timestamp. */
export function clientRequest(version = 4, mode = 3): Buffer {
  const b = Buffer.alloc(48);
  b[0] = (version << 3) | mode;
  b.writeUInt32BE(0xdeadbeef, 40);
  b.writeUInt32BE(0x01234567, 44);
  return b;
}
