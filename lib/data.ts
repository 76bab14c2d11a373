// Data sets resident on a backend's device, uploaded once per (split, backend, targets)
// and reused by training, evaluation and attacks.
import type { BackendName, Dataset } from '../binding';
import type { MnistSplit } from './mnist';
import { native } from './native';

const cache = new WeakMap<object, Map<string, Promise<Dataset>>>();

/** The split on `backend`, with `softTargets` (n x 10) when given. */
export function deviceDataset(split: MnistSplit, backend: BackendName, softTargets?: Float32Array): Promise<Dataset> {
  // Soft targets are keyed by their own identity, so distinct teachers get distinct uploads.
  const owner: object = softTargets ?? split;
  let perBackend = cache.get(owner);
  if (!perBackend) {
    perBackend = new Map();
    cache.set(owner, perBackend);
  }
  const key = `${backend}:${softTargets ? 'soft' : 'hard'}`;
  let ds = perBackend.get(key);
  if (!ds) {
    ds = native.createDataset(backend, split.images, split.labels, softTargets ?? null);
    // A failed upload must not stay cached.
    ds.catch(() => perBackend!.delete(key));
    perBackend.set(key, ds);
  }
  return ds;
}

/** The first `limit` samples of a split (a view, no copy). */
export function limitSplit(split: MnistSplit, limit: number | undefined): MnistSplit {
  if (limit === undefined || limit >= split.count) return split;
  return {
    ...split,
    images: split.images.subarray(0, limit * 784),
    labels: split.labels.subarray(0, limit),
    count: limit,
  };
}
