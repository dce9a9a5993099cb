// A worker thread: its own UDP sockets (SO_REUSEPORT, so the kernel spreads clients over the workers and
// keeps each client on one of them), the receive -> decide -> reply loop, and nothing else.
//
// Every packet goes through the defences (src/core/defences.ts) with the source address as a 16-byte key.
// The hot path allocates nothing of its own: the address is parsed into a scratch key, the reply is written
// over the request's buffer and counted in a shared typed array. (Node itself allocates the datagram's
// Buffer and its rinfo object.)

import dgram from "node:dgram";
import { parentPort, workerData } from "node:worker_threads";
import { C_SEND_ERRORS, C_SOCKET_ERRORS } from "../core/counters.ts";
import { stampTransmit } from "../core/decide.ts";
import { Defences } from "../core/defences.ts";
import {
  R_DROP_INTERNAL_ERROR,
  REASON_RESPONSE,
  RESPONSE_DROPPED,
  RESPONSE_SERVED,
} from "../core/reasons.ts";
import type { ServeState } from "../core/serve-state.ts";
import { formatAddressKey, parseAddressKey } from "../defence/address-key.ts";
import { NTP_HEADER_LENGTH } from "../protocol/index.ts";
import {
  type BlockedItem,
  type FromWorker,
  formatAddress,
  type ToWorker,
  type WorkerInit,
} from "./messages.ts";
import { WallClock } from "./wallclock.ts";

const init = workerData as WorkerInit;
const port = parentPort!;
const counters = init.counters;
const clock = new WallClock(init.sharedOffset);
let state: ServeState = init.state;
const sockets: dgram.Socket[] = [];
const defences = Defences.fromConfig(init.config, { shared: init.shared });
const key = new Uint32Array(4);

/** Addresses blocked here go to the main thread (which persists them and tells the other workers). */
const BLOCK_REPORT_MS = 200;
function reportBlocks(): void {
  if (defences.newBlockCount === 0 && defences.newBlocksLost === 0) return;
  const items: BlockedItem[] = [];
  defences.drainNewBlocks((k, expiresMs, kods) =>
    items.push({
      address: formatAddressKey(k),
      expiresMs: Number.isFinite(expiresMs) ? expiresMs : null,
      kods,
    }),
  );
  const lost = defences.newBlocksLost;
  defences.newBlocksLost = 0;
  post({ type: "blocked", index: init.index, items, lost });
}
const blockTimer = setInterval(reportBlocks, BLOCK_REPORT_MS);

function post(msg: FromWorker): void {
  port.postMessage(msg);
}

function attach(socket: dgram.Socket, label: string): void {
  // Sending to a third party can fail in ways that third party controls (ICMP unreachable reported as
  // ECONNREFUSED on the next call, full buffers, ...). Count it, tell the main thread (which rate-limits
  // the log), never stop serving.
  socket.on("error", (err: NodeJS.ErrnoException) => {
    const isSend = err.syscall === "send" || err.syscall === "sendto";
    counters[isSend ? C_SEND_ERRORS : C_SOCKET_ERRORS]!++;
    post({
      type: "socket-error",
      index: init.index,
      address: label,
      code: err.code ?? "",
      message: err.message,
    });
  });
  socket.on("message", (msg: Buffer, rinfo: dgram.RemoteInfo) => {
    const received = clock.now();
    let reason: number;
    try {
      const s = state;
      if (!parseAddressKey(rinfo.address, key)) throw new Error("unparsable source address");
      reason = defences.decide(msg, msg.length, key, rinfo.port, received + s.offsetMs, s);
      const response = REASON_RESPONSE[reason];
      if (response !== RESPONSE_DROPPED) {
        // A KoD carries no time of ours: only a served reply gets its transmit timestamp.
        if (response === RESPONSE_SERVED) stampTransmit(msg, clock.now() + s.offsetMs);
        socket.send(msg, 0, NTP_HEADER_LENGTH, rinfo.port, rinfo.address);
      }
    } catch {
      reason = R_DROP_INTERNAL_ERROR;
    }
    counters[reason]!++;
  });
}

async function bindAll(): Promise<void> {
  for (const a of init.listen) {
    const label = formatAddress(a.host, a.port);
    const socket = dgram.createSocket({
      type: a.family === 6 ? "udp6" : "udp4",
      reuseAddr: false,
      reusePort: true,
      ipv6Only: a.family === 6,
    });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => reject(Object.assign(err, { label }));
      socket.once("error", onError);
      socket.bind({ address: a.host, port: a.port, exclusive: true }, () => {
        socket.off("error", onError);
        resolve();
      });
    });
    attach(socket, label);
    sockets.push(socket);
  }
}

port.on("message", (msg: ToWorker) => {
  switch (msg.type) {
    case "state":
      state = msg.state;
      break;
    case "offset":
      clock.setSharedOffset(msg.sharedOffset);
      break;
    case "config":
      defences.reconfigure(msg.config);
      break;
    case "blocklist":
      defences.blocklist.apply(msg.update);
      break;
    case "stop": {
      clearInterval(blockTimer);
      reportBlocks();
      let open = sockets.length;
      if (open === 0) post({ type: "stopped", index: init.index });
      for (const s of sockets)
        s.close(() => {
          if (--open === 0) {
            post({ type: "stopped", index: init.index });
            port.close();
          }
        });
      break;
    }
  }
});

bindAll().then(
  () => post({ type: "bound", index: init.index }),
  (err: NodeJS.ErrnoException & { label?: string }) => {
    for (const s of sockets) s.close();
    post({
      type: "bind-error",
      index: init.index,
      address: err.label ?? "",
      code: err.code ?? "",
      message: err.message,
    });
  },
);
