// A worker thread: its own UDP sockets (SO_REUSEPORT, so the kernel spreads clients over the workers and
// keeps each client on one of them), the receive -> decide -> reply loop, and nothing else.
//
// The hot path allocates nothing of its own: the reply is written over the request's buffer and counted in
// a shared typed array. (Node itself allocates the datagram's Buffer and its rinfo object.)

import dgram from "node:dgram";
import { parentPort, workerData } from "node:worker_threads";
import { C_SEND_ERRORS, C_SOCKET_ERRORS } from "../core/counters.ts";
import { decide, stampTransmit, writeReply } from "../core/decide.ts";
import { isServed, R_DROP_INTERNAL_ERROR } from "../core/reasons.ts";
import type { ServeState } from "../core/serve-state.ts";
import { type FromWorker, formatAddress, type ToWorker, type WorkerInit } from "./messages.ts";
import { WallClock } from "./wallclock.ts";

const init = workerData as WorkerInit;
const port = parentPort!;
const counters = init.counters;
const clock = new WallClock(init.sharedOffset);
let state: ServeState = init.state;
const sockets: dgram.Socket[] = [];

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
      reason = decide(msg, msg.length, s);
      if (isServed(reason)) {
        const length = writeReply(msg, reason, received + s.offsetMs, s);
        stampTransmit(msg, clock.now() + s.offsetMs);
        socket.send(msg, 0, length, rinfo.port, rinfo.address);
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
    case "stop": {
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
