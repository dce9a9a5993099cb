// The simulator's event queue: a 4-ary min-heap of (time, id) pairs in typed arrays. Each id is a client
// slot of a population (engine.ts); a slot has at most one pending event, its next request, so the heap
// needs no decrease-key: the engine pops the earliest slot, runs it, and puts it back with its next time
// by replacing the top (one sift-down instead of a pop and a push).
//
// Ties are broken by id, so the order of events never depends on insertion order or on the heap's shape:
// a run is the same for the same seed whatever the platform. A 4-ary heap is half as deep as a binary one
// and its four children sit in one cache line of times, which is what matters at 700,000 routers.
// Nothing is allocated per event; the arrays double when full.

export class EventQueue {
  private times: Float64Array;
  private ids: Int32Array;
  private n = 0;

  constructor(initialCapacity = 1024) {
    const c = Math.max(4, initialCapacity);
    this.times = new Float64Array(c);
    this.ids = new Int32Array(c);
  }

  get size(): number {
    return this.n;
  }

  /** Time of the earliest event (Infinity when empty). */
  topTime(): number {
    return this.n > 0 ? this.times[0]! : Number.POSITIVE_INFINITY;
  }

  /** Id of the earliest event (-1 when empty). */
  topId(): number {
    return this.n > 0 ? this.ids[0]! : -1;
  }

  push(time: number, id: number): void {
    if (Number.isNaN(time)) throw new RangeError(`event time is NaN (id ${id})`);
    if (this.n === this.times.length) this.grow();
    this.siftUp(this.n++, time, id);
  }

  /** Removes the earliest event. */
  pop(): void {
    const n = --this.n;
    if (n > 0) this.siftDown(0, this.times[n]!, this.ids[n]!);
  }

  /** Replaces the earliest event's time, keeping its id (the slot that just ran, rescheduled). */
  replaceTop(time: number): void {
    if (Number.isNaN(time)) throw new RangeError(`event time is NaN (id ${this.ids[0]})`);
    this.siftDown(0, time, this.ids[0]!);
  }

  clear(): void {
    this.n = 0;
  }

  private grow(): void {
    const t = new Float64Array(this.times.length * 2);
    t.set(this.times);
    const i = new Int32Array(this.ids.length * 2);
    i.set(this.ids);
    this.times = t;
    this.ids = i;
  }

  private siftUp(pos: number, time: number, id: number): void {
    const times = this.times;
    const ids = this.ids;
    while (pos > 0) {
      const parent = (pos - 1) >> 2;
      const pt = times[parent]!;
      if (pt < time || (pt === time && ids[parent]! < id)) break;
      times[pos] = pt;
      ids[pos] = ids[parent]!;
      pos = parent;
    }
    times[pos] = time;
    ids[pos] = id;
  }

  private siftDown(pos: number, time: number, id: number): void {
    const times = this.times;
    const ids = this.ids;
    const n = this.n;
    for (;;) {
      const first = 4 * pos + 1;
      if (first >= n) break;
      let best = first;
      let bt = times[first]!;
      let bi = ids[first]!;
      const last = Math.min(first + 4, n);
      for (let c = first + 1; c < last; c++) {
        const ct = times[c]!;
        if (ct < bt || (ct === bt && ids[c]! < bi)) {
          best = c;
          bt = ct;
          bi = ids[c]!;
        }
      }
      if (time < bt || (time === bt && id < bi)) break;
      times[pos] = bt;
      ids[pos] = bi;
      pos = best;
    }
    times[pos] = time;
    ids[pos] = id;
  }
}
