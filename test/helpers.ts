// Shared test helpers.

/** The error thrown by fn (native errors come from another realm than jest's globals,
 * so compare by name and code rather than instanceof). */
export function caught(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected an error, but the call returned normally');
}

export async function caughtAsync(fn: () => Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await fn();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected a rejection, but the promise resolved');
}

export function expectError(e: Error & { code?: string }, name: string, code: string, message?: RegExp): void {
  expect({ name: e.name, code: e.code }).toEqual({ name, code });
  if (message) expect(e.message).toMatch(message);
}

/** Random images in [0, 1], deterministic from a seed. */
export function randomImages(n: number, seed: number): Float32Array {
  const out = new Float32Array(n * 784);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < out.length; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = (s % 1000) / 999;
  }
  return out;
}
