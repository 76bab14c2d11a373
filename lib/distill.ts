// Defensive distillation (Papernot et al. 2016, as the paper runs it): the teacher's soft
// labels softmax(z_teacher / T), from the deterministic teacher (no dropout: the original
// code left dropout on, a bug), train a fresh student at the same T.
import { createHash } from 'crypto';
import { deviceDataset, limitSplit } from './data';
import { typeError } from './errors';
import { checkLimit } from './limits';
import type { MnistData, MnistSplit } from './mnist';
import { Model } from './model';
import { train, TrainOptions, TrainResult } from './train';
import type { BackendChoice } from './backends';

export interface DistillOptions extends TrainOptions {
  /** Temperature of the soft labels and of the student's training loss (default 20). */
  temperature?: number;
  /** The student's learning rate (default 0.05, the paper's). */
  learningRate?: number;
  /** Where the teacher came from, recorded in the student's metadata. */
  teacherFile?: string;
  backend?: BackendChoice;
}

/** softmax(z / T) of the teacher's logits for every image of `split`, [count x classes]. */
export async function softLabels(teacher: Model, split: MnistSplit, temperature: number): Promise<Float32Array> {
  checkLimit(temperature, 'temperature', 'temperature');
  const ds = await deviceDataset(split, teacher.backend);
  const r = await teacher.nativeModel.evaluate(ds, 0, split.count, temperature, true);
  const z = r.logits!;
  const k = teacher.classes;
  const out = new Float32Array(z.length);
  for (let i = 0; i < split.count; i++) {
    let m = -Infinity;
    for (let j = 0; j < k; j++) m = Math.max(m, z[i * k + j] / temperature);
    let s = 0;
    for (let j = 0; j < k; j++) s += Math.exp(z[i * k + j] / temperature - m);
    for (let j = 0; j < k; j++) out[i * k + j] = Math.exp(z[i * k + j] / temperature - m) / s;
  }
  return out;
}

/** SHA-256 of a model's parameters: identifies a teacher without its file. */
export function parametersHash(model: Model): string {
  const p = model.getParameters();
  return createHash('sha256')
    .update(Buffer.from(p.buffer, p.byteOffset, p.byteLength))
    .digest('hex');
}

/** Trains a fresh student on the teacher's soft labels at temperature T. */
export async function distill(
  teacher: Model,
  data: MnistData,
  opts: DistillOptions = {},
): Promise<{ student: Model; result: TrainResult }> {
  if (!(teacher instanceof Model)) throw typeError('teacher must be a Model');
  const temperature = opts.temperature ?? 20;
  const trainSplit = limitSplit(data.train, opts.trainLimit);
  const soft = await softLabels(teacher, trainSplit, temperature);
  const student = Model.create({ seed: opts.seed ?? 0, backend: opts.backend ?? teacher.backend, arch: teacher.arch });
  const { teacherFile, backend: _backend, ...trainOpts } = opts;
  const result = await train(student, data, { learningRate: 0.05, ...trainOpts, temperature, softTargets: soft });
  student.metadata.kind = 'distilled';
  student.metadata.teacher = {
    file: teacherFile,
    parametersSha256: parametersHash(teacher),
    trainingTemperature: teacher.metadata.trainingTemperature,
    seed: teacher.metadata.seed,
    softLabelTemperature: temperature,
    kind: teacher.metadata.kind,
  };
  return { student, result };
}
