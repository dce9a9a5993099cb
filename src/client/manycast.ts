// Manycast discovery (paper §9), pure: which of the servers that answered a client's request to a group it
// keeps. "In general, several servers do respond, but using the engineered NTP mitigation algorithms all
// but the best three are discarded and operation continues with only them." The best are those of least
// root distance (RFC 5905 §11.2, measure.ts rootDistance), the quantity the selection ranks truechimers
// by: a server further from the reference, or less sure of its time, ranks lower. A kept server that did
// not answer this round keeps its last sample, whose distance grows with its age (PHI), so a server that
// has gone quiet is overtaken by one that answers.
//
// Unsynchronised servers never answer a manycast request (src/core/manycast.ts), and an unsynchronised
// or kiss-o'-death reply gives no sample (measure.ts evaluateReply), so neither is ever kept.

import { rootDistance, type Sample } from "./measure.ts";

/** The paper's three. */
export const MANYCAST_KEEP = 3;

export interface ManycastAnswer {
  /** Who answered: its address, and the port to poll it on. */
  server: string;
  port: number;
  sample: Sample;
}

export interface ManycastKept extends ManycastAnswer {
  /** Root distance at the round's time, seconds. */
  distanceS: number;
}

export interface ManycastRound {
  /** Kept after this round, best first. */
  kept: ManycastKept[];
  /** Newly kept this round. */
  added: string[];
  /** Kept before or answering now, and discarded by this round. */
  discarded: string[];
}

export class ManycastSet {
  readonly keep: number;
  private kept = new Map<string, ManycastAnswer>();

  constructor(keep = MANYCAST_KEEP) {
    this.keep = keep;
  }

  servers(): string[] {
    return [...this.kept.keys()];
  }

  /** Merges one round's answers (the latest sample of each server wins) and keeps the best `keep`. */
  round(answers: readonly ManycastAnswer[], nowMs: number): ManycastRound {
    const all = new Map(this.kept);
    for (const a of answers) all.set(a.server, a);
    const ranked = [...all.values()]
      .map((a) => ({ ...a, distanceS: rootDistance(a.sample, (nowMs - a.sample.atMs) / 1000, 0) }))
      // Ties (equal distance, as on one quiet network) by address, so that rounds agree.
      .sort((x, y) => x.distanceS - y.distanceS || (x.server < y.server ? -1 : x.server > y.server ? 1 : 0));
    const kept = ranked.slice(0, this.keep);
    const added = kept.filter((k) => !this.kept.has(k.server)).map((k) => k.server);
    const discarded = ranked.slice(this.keep).map((k) => k.server);
    this.kept = new Map(kept.map((k) => [k.server, { server: k.server, port: k.port, sample: k.sample }]));
    return { kept, added, discarded };
  }
}
