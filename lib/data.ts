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
    ds = native.createDataset(backend, split.images, split.labels, softTargets ?? null, imageSize(split), split.classes ?? 10);
    // A failed upload must not stay cached.
    ds.catch(() => perBackend!.delete(key));
    perBackend.set(key, ds);
  }
  return ds;
}

/** Values per image of a split (height x width x channels; MNIST's 784 when it has no shape). */
export function imageSize(split: Pick<MnistSplit, 'shape'>): number {
  return split.shape ? split.shape.height * split.shape.width * split.shape.channels : 784;
}

/** Image `index` of a split (a view, no copy). */
export function imageOf(split: MnistSplit, index: number): Float32Array {
  const size = imageSize(split);
  return split.images.subarray(index * size, (index + 1) * size);
}

/** The images at `indices` of a split, copied into one array. */
export function gatherImages(split: MnistSplit, indices: ArrayLike<number>): Float32Array {
  const size = imageSize(split);
  const out = new Float32Array(indices.length * size);
  for (let k = 0; k < indices.length; k++) out.set(split.images.subarray(indices[k] * size, (indices[k] + 1) * size), k * size);
  return out;
}

/** The first `limit` samples of a split (a view, no copy). */
export function limitSplit(split: MnistSplit, limit: number | undefined): MnistSplit {
  if (limit === undefined || limit >= split.count) return split;
  return {
    ...split,
    images: split.images.subarray(0, limit * imageSize(split)),
    labels: split.labels.subarray(0, limit),
    count: limit,
  };
}
