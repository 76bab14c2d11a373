// Seeded pseudo-random numbers for the TypeScript side (shuffling, sample selection).
// sfc32, seeded from a 32-bit seed and a stream id through the same murmur3 finaliser the
// native side uses, so every random choice is a pure function of (seed, stream).

function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number, stream = 0) {
    this.a = mix32((seed ^ 0x9e3779b9) >>> 0);
    this.b = mix32((this.a ^ Math.imul(stream + 1, 0x7feb352d)) >>> 0);
    this.c = mix32((this.b ^ 0x846ca68b) >>> 0);
    this.d = 1;
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Fisher-Yates shuffle in place. */
  shuffle<T extends { length: number; [i: number]: number }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }
}

/** The permutation of 0..n-1 used for epoch `epoch` of a run seeded with `seed`. */
export function epochPermutation(n: number, seed: number, epoch: number): Int32Array {
  const idx = new Int32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  return new Random(seed, 1000 + epoch).shuffle(idx);
}

/** `count` distinct integers from [0, n), in increasing order, drawn with `seed`. */
export function sampleWithoutReplacement(n: number, count: number, seed: number, stream = 0): number[] {
  const idx = new Int32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  const r = new Random(seed, stream);
  for (let i = 0; i < count; i++) {
    const j = i + r.int(n - i);
    const t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
  }
  return Array.from(idx.subarray(0, count)).sort((x, y) => x - y);
}
