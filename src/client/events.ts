// What the client's state machine (core.ts and its sources, source.ts) hands back to its shell (client.ts)
// or to a simulator: the actions to carry out (resolve a name, send a request, remember a refusal) and,
// among them, the events to report. Nothing here decides; the types say what each decision tells the
// outside.

import type { IgnoreReason } from "./match.ts";
import type { Sample } from "./measure.ts";
import type { Refusal } from "./state-file.ts";

/** Everything the client reports. `source` is the server as configured, "host:port". */
export type ClientEvent =
  | {
      kind: "sample";
      source: string;
      address: string;
      port: number;
      sample: Sample;
      /** Interval in force after this sample, seconds (before jitter). */
      intervalS: number;
      /** Seconds until the next request to this source. */
      nextS: number;
      /** This reply answered a request of the start-up burst. */
      burst: boolean;
      /** The reply came from another address than the one asked (followRedirects). */
      redirected: boolean;
    }
  | { kind: "no-reply"; source: string; address: string; port: number; intervalS: number; nextS: number }
  | {
      kind: "unusable";
      source: string;
      address: string;
      port: number;
      /** evaluateReply's reason: "unsynchronised", "bad-stratum", "zero-transmit". */
      reason: string;
      intervalS: number;
      nextS: number;
    }
  | {
      kind: "kiss";
      source: string;
      address: string;
      port: number;
      code: string;
      /** "reduce" (RATE), "stop" (DENY, RSTR), "info" (anything else: no sample, back off). */
      action: "reduce" | "stop" | "info";
      intervalS: number;
      nextS: number;
      /** For "stop": until when (Unix ms) this address is left alone. */
      untilMs?: number;
    }
  | { kind: "redirect"; source: string; from: string; to: string; port: number }
  | {
      kind: "ignored";
      source: string;
      from: string;
      fromPort: number;
      reason: IgnoreReason;
    }
  | { kind: "resolved"; source: string; addresses: string[]; chosen: string }
  | { kind: "resolve-failed"; source: string; error: string; nextS: number }
  | { kind: "stopped"; source: string; reason: string; nextS: number }
  | {
      kind: "selection";
      majority: boolean;
      kept: string[];
      falsetickers: string[];
      surplus: string[];
      /** The kept source with the lowest root distance, and our offset according to it. */
      systemPeer?: string;
      offsetS?: number;
    }
  | { kind: "woken"; source: string; reason: string };

export type ClientAction =
  | { type: "resolve"; source: number; host: string }
  | {
      type: "send";
      exchange: number;
      source: number;
      address: string;
      family: 4 | 6;
      port: number;
      packet: Uint8Array;
    }
  /** A DENY/RSTR: `refusals` is the whole list in force, for the state file. */
  | { type: "refuse"; refusal: Refusal; refusals: Refusal[] }
  | { type: "event"; event: ClientEvent };

/** An event, as the action that reports it. */
export function event(e: ClientEvent): ClientAction {
  return { type: "event", event: e };
}
