// The fault suite's one source of chance: every choice (which fault, when,
// where) comes from this seeded generator, so a seed replays a run.

export class Random {
  private a: number;

  constructor(readonly seed: number) {
    this.a = seed >>> 0;
  }

  /** mulberry32: uniform in [0, 1). */
  next(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer from lo to hi, both included. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.next() * items.length)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }

  /** A generator of its own for one part of a run, so that parts do not shift each other's choices. */
  fork(salt: number): Random {
    return new Random((this.seed ^ Math.imul(salt + 1, 0x9e3779b1)) >>> 0);
  }
}

/** A fresh seed when none is given: the time, so two runs differ, and the printed seed replays it. */
export const freshSeed = (): number => Date.now() % 1_000_000_007;
