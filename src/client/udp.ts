// One request and its reply wait over UDP: the I/O under the client's exchanges (client.ts) and the
// one-shot query (query.ts). Each exchange has a socket of its own bound to port 0, so the kernel gives it
// a fresh, randomly chosen ephemeral port (RFC 9109 §4: a fixed source port, 123 in particular, lets an
// off-path attacker aim forged replies; Linux picks bind(0) ports at random within
// net.ipv4.ip_local_port_range). The socket is closed when the exchange ends, so a late or forged reply
// finds nobody listening.
//
// Which datagram is the reply is not decided here: every datagram is handed to `onDatagram`, which says
// whether it ended the exchange (match.ts matchReply judges it). Socket errors end the exchange as "error";
// they never throw past this module (a third party can provoke them, e.g. with ICMP errors).

import dgram from "node:dgram";

export interface UdpExchangeOptions {
  family: 4 | 6;
  address: string;
  port: number;
  packet: Uint8Array;
  /** How long to wait for the reply, ms. */
  timeoutMs: number;
  /** Wall clock, Unix ms: read just before sending (T1) and on each arrival (T4). */
  wallMs: () => number;
  /** Called with T1 once the socket is bound, just before the datagram is handed to the kernel. */
  onSent?: (t1Ms: number, localPort: number) => void;
  /** Each datagram that arrives; return true when it was the reply (the exchange is then over). */
  onDatagram: (data: Buffer, from: { address: string; port: number }, t4Ms: number) => boolean;
}

export type UdpOutcome = { kind: "answered" } | { kind: "timeout" } | { kind: "error"; error: Error };

export interface UdpExchange {
  readonly done: Promise<UdpOutcome>;
  /** Ends the exchange now (resolving `done` as a timeout if it was still waiting). */
  cancel(): void;
}

export function udpExchange(o: UdpExchangeOptions): UdpExchange {
  const socket = dgram.createSocket(o.family === 6 ? "udp6" : "udp4");
  let finish: (r: UdpOutcome) => void = () => {};
  let over = false;
  let timer: NodeJS.Timeout | undefined;
  const done = new Promise<UdpOutcome>((resolve) => {
    finish = (r) => {
      if (over) return;
      over = true;
      clearTimeout(timer);
      try {
        socket.close();
      } catch {
        // already closed
      }
      resolve(r);
    };
  });
  socket.on("error", (error) => finish({ kind: "error", error }));
  socket.on("message", (data, rinfo) => {
    if (over) return;
    const t4 = o.wallMs();
    if (o.onDatagram(data, { address: rinfo.address, port: rinfo.port }, t4)) finish({ kind: "answered" });
  });
  socket.bind(0, () => {
    if (over) return;
    timer = setTimeout(() => finish({ kind: "timeout" }), o.timeoutMs);
    const t1 = o.wallMs();
    o.onSent?.(t1, socket.address().port);
    socket.send(o.packet, o.port, o.address, (err) => {
      if (err) finish({ kind: "error", error: err });
    });
  });
  return { done, cancel: () => finish({ kind: "timeout" }) };
}
