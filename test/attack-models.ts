// The small models the attack tests share: `std`, trained for one pass over 10,000 training
// images at T = 1 (about 90% test accuracy), and `hot`, the same with its logits x 40, whose
// float32 softmax saturates (gradient masking) while its decisions stay std's.
import type { MnistData } from '../lib/mnist';
import { Model, parameterLayout } from '../lib/model';
import { native } from '../lib/native';

export async function briefModels(data: MnistData): Promise<{ std: Model; hot: Model }> {
  const std = Model.create({ seed: 5 });
  const n = 10000;
  const ds = await native.createDataset('cpu', data.train.images.subarray(0, n * 784), data.train.labels.subarray(0, n));
  await std.nativeModel.trainSteps(
    ds,
    Int32Array.from({ length: n }, (_, i) => i),
    64,
    { temperature: 1 },
    0,
  );
  const p = std.getParameters();
  for (const t of parameterLayout()) if (t.name.startsWith('fc3.')) for (let i = 0; i < t.size; i++) p[t.offset + i] *= 40;
  return { std, hot: Model.fromParameters(p) };
}
