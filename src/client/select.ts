// Choosing among several servers (paper §7 and §9: "all but the best three are discarded"; RFC 5905 §11.2.1).
// Pure.
//
// Each server with a recent sample is a candidate with a correctness interval [offset - d, offset + d],
// d its root distance (measure.ts): if the server tells the truth, the true offset of our clock lies in
// it. The intersection algorithm (Marzullo's, as RFC 5905 §11.2.1 refines it) looks for the smallest
// interval that is contained in the intervals of a majority: it first assumes no falseticker, then one,
// and so on while the falsetickers remain fewer than half. The interval found must also contain no more
// candidates' midpoints outside it than the falsetickers allowed, which keeps a few wide intervals from
// vouching for a point none of them measured. Candidates whose intervals miss the intersection are
// falsetickers: their time disagrees with the majority, whatever their distance. Among the others, the
// truechimers, the lowest root distance ranks first, and the client keeps the best three (RFC 5905's
// cluster algorithm prunes by jitter instead; by distance is simpler and is what the paper asks of
// manycast).
//
// With no majority (two servers that disagree, or wide intervals that never overlap enough), nobody can be
// called a falseticker: `majority` is false and every candidate stays, ranked by distance.

export interface Candidate {
  readonly id: number;
  /** Our offset according to this server, seconds. */
  readonly offsetS: number;
  /** Its root distance, seconds (> 0). */
  readonly distanceS: number;
}

export interface Selection {
  /** Whether an intersection agreed by a majority was found. */
  majority: boolean;
  /** The intersection interval, seconds (NaN without a majority). */
  low: number;
  high: number;
  /** Falsetickers the intersection allowed for. */
  allowed: number;
  /** Ids of candidates whose interval meets the intersection (all of them without a majority), by distance. */
  truechimers: number[];
  /** Ids of candidates whose interval misses the intersection. */
  falsetickers: number[];
}

interface Edge {
  value: number;
  /** -1 lower end, 0 midpoint, +1 upper end. */
  type: -1 | 0 | 1;
}

/** Runs the intersection algorithm over the candidates. */
export function selectTruechimers(candidates: readonly Candidate[]): Selection {
  const n = candidates.length;
  const byDistance = (ids: number[]): number[] => {
    const d = new Map(candidates.map((c) => [c.id, c.distanceS]));
    return ids.sort((a, b) => d.get(a)! - d.get(b)! || a - b);
  };
  const none: Selection = {
    majority: false,
    low: Number.NaN,
    high: Number.NaN,
    allowed: 0,
    truechimers: byDistance(candidates.map((c) => c.id)),
    falsetickers: [],
  };
  if (n === 0) return none;
  const edges: Edge[] = [];
  for (const c of candidates) {
    edges.push({ value: c.offsetS - c.distanceS, type: -1 });
    edges.push({ value: c.offsetS, type: 0 });
    edges.push({ value: c.offsetS + c.distanceS, type: 1 });
  }
  // Ascending; at equal values lower ends first and upper ends last, so intervals that touch overlap.
  edges.sort((a, b) => a.value - b.value || a.type - b.type);
  for (let allowed = 0; 2 * allowed < n; allowed++) {
    const need = n - allowed;
    let midpointsOutside = 0;
    let covering = 0;
    let low = Number.NaN;
    for (const e of edges) {
      covering -= e.type; // a lower end (-1) adds an interval, an upper end removes one
      if (covering >= need) {
        low = e.value;
        break;
      }
      if (e.type === 0) midpointsOutside++;
    }
    covering = 0;
    let high = Number.NaN;
    for (let i = edges.length - 1; i >= 0; i--) {
      const e = edges[i]!;
      covering += e.type; // scanning down, an upper end adds an interval
      if (covering >= need) {
        high = e.value;
        break;
      }
      if (e.type === 0) midpointsOutside++;
    }
    if (midpointsOutside > allowed) continue;
    if (high > low) {
      const truechimers: number[] = [];
      const falsetickers: number[] = [];
      for (const c of candidates) {
        const meets = c.offsetS + c.distanceS >= low && c.offsetS - c.distanceS <= high;
        (meets ? truechimers : falsetickers).push(c.id);
      }
      return { majority: true, low, high, allowed, truechimers: byDistance(truechimers), falsetickers };
    }
  }
  return none;
}
