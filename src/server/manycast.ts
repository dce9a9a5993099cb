// The manycast server's sockets (paper §9): one per [manycast] group and listen port, joined to the group,
// and one unicast socket per listen address to answer from. Opened by worker 0 only: a datagram sent to a
// group reaches every socket bound to it, so sockets in several workers would answer one request several
// times. What to do with each request is decided by the pure core (src/core/manycast.ts); this only moves
// the bytes.
//
// The answer leaves from the listen address the request's port belongs to, on an ephemeral port: the
// listen port itself is the workers' (SO_REUSEPORT), and binding it here would take a share of their
// requests. The client matches the answer by its origin timestamp, whatever address and port it comes from.

import dgram from "node:dgram";
import { formatAddress, type ListenAddress } from "./messages.ts";

export interface ManycastSettings {
  readonly group: readonly string[];
  readonly interface: string;
}

export interface ManycastSocket {
  /** "224.0.1.1:123" */
  readonly label: string;
  readonly socket: dgram.Socket;
  /** Where answers leave from. */
  readonly reply: dgram.Socket;
}

function bindSocket(socket: dgram.Socket, address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once("error", reject);
    socket.bind({ address, port }, () => {
      socket.off("error", reject);
      resolve();
    });
  });
}

const WILDCARD = new Set(["0.0.0.0", "::"]);

/**
 * Opens the group sockets for every group and every listen address of its family (one per port). Throws
 * with `label` set on the first failure, all opened ones closed.
 */
export async function openManycast(
  settings: ManycastSettings,
  listen: readonly ListenAddress[],
): Promise<ManycastSocket[]> {
  const out: ManycastSocket[] = [];
  const iface = settings.interface === "" ? undefined : settings.interface;
  try {
    for (const group of settings.group) {
      const v6 = group.includes(":");
      const seen = new Set<number>();
      for (const l of listen) {
        if ((l.family === 6) !== v6 || seen.has(l.port)) continue;
        seen.add(l.port);
        const label = formatAddress(group, l.port);
        const type = v6 ? "udp6" : "udp4";
        // SO_REUSEADDR: other servers on this host may join the same group and port.
        const socket = dgram.createSocket({ type, reuseAddr: true, ipv6Only: v6 });
        const reply = dgram.createSocket({ type, ipv6Only: v6 });
        out.push({ label, socket, reply });
        try {
          await bindSocket(socket, group, l.port);
          socket.addMembership(group.replace(/%.*$/, ""), iface);
          const from = WILDCARD.has(l.host) ? (iface?.replace(/%.*$/, "") ?? l.host) : l.host;
          await bindSocket(reply, from, 0);
        } catch (err) {
          throw Object.assign(err as Error, { label });
        }
      }
    }
  } catch (err) {
    closeManycast(out);
    throw err;
  }
  return out;
}

export function closeManycast(sockets: readonly ManycastSocket[]): void {
  for (const s of sockets) {
    for (const x of [s.socket, s.reply]) {
      try {
        x.close();
      } catch {
        // not open (a failed bind) or already closed
      }
    }
  }
}
