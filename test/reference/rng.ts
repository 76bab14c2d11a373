// Reference copy of the engine's counter-based random numbers, written from the specification
// (not from the C++), in uint32 arithmetic: Math.imul for products mod 2^32, `>>> 0` to read a
// value back as unsigned.
//
//   mix32(h):   h ^= h >>> 16; h *= 0x85ebca6b; h ^= h >>> 13; h *= 0xc2b2ae35; h ^= h >>> 16
//   counterBits(seed, hi, lo, index):
//       h = mix32(seed ^ 0x9e3779b9)
//       h = mix32(h ^ (hi * 0x7feb352d))
//       h = mix32(h ^ (lo * 0x846ca68b))
//       h = mix32(h ^ index)
//   uniform24(...) = (counterBits(...) >>> 8) / 2^24, a multiple of 2^-24 in [0, 1).
//
// Streams (`hi`) used by the engine: 1 = weight initialisation (lo = tensor id, index = element),
// 16 + L = dropout layer L (lo = step, index = sample * units + unit).

// Math.imul read once: under jest the test's globals live in a vm context, where every
// `Math.x` lookup inside a hot loop costs ~100x the operation itself.
const imul = Math.imul;

/** The 32-bit finaliser of MurmurHash3. Input and output are uint32 values. */
export function mix32(value: number): number {
  let h = value >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  h = imul(h, 0x85ebca6b) >>> 0;
  h = (h ^ (h >>> 13)) >>> 0;
  h = imul(h, 0xc2b2ae35) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  return h;
}

/** 32 random bits (as a uint32) for the counter (hi, lo, index) under `seed`. */
export function counterBits(seed: number, hi: number, lo: number, index: number): number {
  let h = mix32((seed ^ 0x9e3779b9) >>> 0);
  h = mix32((h ^ imul(hi >>> 0, 0x7feb352d)) >>> 0);
  h = mix32((h ^ imul(lo >>> 0, 0x846ca68b)) >>> 0);
  h = mix32((h ^ (index >>> 0)) >>> 0);
  return h;
}

/** A uniform number in [0, 1) with 24 random bits: (counterBits >>> 8) / 2^24. */
export function uniform24(seed: number, hi: number, lo: number, index: number): number {
  return (counterBits(seed, hi, lo, index) >>> 8) / 16777216;
}

/**
 * A sequential generator for test fixtures (images, biases, soft targets). It draws from stream
 * hi = 0x7e57 so it never coincides with the engine's own streams.
 */
export class FixtureRandom {
  private counter = 0;
  constructor(
    private readonly seed: number,
    private readonly stream = 0,
  ) {}

  /** Uniform in [0, 1). */
  next(): number {
    return uniform24(this.seed, 0x7e57, this.stream, this.counter++);
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** An integer in [0, bound). */
  int(bound: number): number {
    return Math.floor(this.next() * bound);
  }
}
