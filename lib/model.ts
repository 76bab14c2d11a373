// Model: a network of an architecture spec (lib/arch.ts; the paper's by default), its
// weights on a backend's device, and the metadata that says where it came from. Files are
// safetensors with PyTorch's tensor names and layouts (conv1.weight [32,1,3,3] ... fc3.bias
// [10] for the paper's network), so a model moves to PyTorch and back. Format version 2
// stores the spec in the file (__metadata__.arch); a file without one is the paper's network.
import * as fs from 'fs';
import * as path from 'path';
import type { BackendName, Model as NativeModel, NativeParameterInfo } from '../binding';
import { ArchPlan, ArchSpec, DEFAULT_ARCH, archName, canonicalArch, checkArch, namedArch } from './arch';
import { BackendChoice, resolveBackend } from './backends';
import { deviceDataset } from './data';
import { TemperedError, checkNumber, typeError } from './errors';
import { checkLimit } from './limits';
import type { ImageShape, MnistSplit } from './mnist';
import { native, packageRoot } from './native';
import { readSafetensors, writeSafetensors, Tensor, type SafetensorsContents } from './safetensors';

export const MODEL_FORMAT = 'tempered-model';
export const MODEL_FORMAT_VERSION = 2;

/** Where a model came from; stored in the file's __metadata__ (key "tempered", JSON). */
export interface ModelMetadata {
  format: typeof MODEL_FORMAT;
  formatVersion: number;
  packageVersion: string;
  createdAt: string;
  /** 'standard' (hard labels) or 'distilled' (a teacher's soft labels). */
  kind?: 'standard' | 'distilled';
  /** Softmax temperature of the training loss. */
  trainingTemperature?: number;
  /** Seed of the initial weights, the shuffling and the dropout masks. */
  seed?: number;
  /** The full training configuration. */
  training?: Record<string, unknown>;
  /** The data the model was trained on. */
  data?: { fingerprint: string; description: string; split: string; trainCount: number };
  /** The backend and device that trained it. */
  trainedOn?: Record<string, unknown>;
  /** Per-epoch history and final accuracies. */
  result?: Record<string, unknown>;
  /** The teacher of a distilled model. */
  teacher?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface Evaluation {
  /** Fraction of samples whose argmax logit equals the label. */
  accuracy: number;
  correct: number;
  count: number;
  /** Mean cross-entropy at `temperature`. */
  meanLoss: number;
  temperature: number;
}

let cachedVersion: string | undefined;
export function packageVersion(): string {
  if (!cachedVersion) {
    cachedVersion = JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')).version as string;
  }
  return cachedVersion;
}

function freshMetadata(): ModelMetadata {
  return {
    format: MODEL_FORMAT,
    formatVersion: MODEL_FORMAT_VERSION,
    packageVersion: packageVersion(),
    createdAt: new Date().toISOString(),
  };
}

const layouts = new Map<string, NativeParameterInfo[]>();
/** The parameter tensors of a network (the paper's by default): names, PyTorch shapes and
 * offsets in the flat array. */
export function parameterLayout(arch?: ArchSpec): NativeParameterInfo[] {
  const key = arch ? canonicalArch(arch) : DEFAULT_ARCH;
  let layout = layouts.get(key);
  if (!layout) {
    layout = native.parameterLayout(arch);
    layouts.set(key, layout);
  }
  return layout;
}

export class Model {
  /** Provenance, saved with the weights. */
  metadata: ModelMetadata;
  private handle: NativeModel;
  /** The network's architecture spec. */
  readonly arch: ArchSpec;
  /** Its checked plan: input shape, classes, parameter tensors, run-time steps. */
  readonly plan: ArchPlan;

  private constructor(handle: NativeModel, metadata: ModelMetadata, arch: ArchSpec) {
    this.handle = handle;
    this.metadata = metadata;
    this.arch = arch;
    this.plan = handle.plan();
  }

  /** A new model of `arch` (default: the paper's network) with Glorot-uniform weights drawn from `seed` (default 0);
   * `threads`: CPU threads of its own (see setThreads). */
  static create(opts: { seed?: number; backend?: BackendChoice; arch?: ArchSpec; threads?: number } = {}): Model {
    const seed = checkNumber(opts.seed ?? 0, 'seed', { min: 0, max: 0xffffffff, integer: true });
    const backend = resolveBackend(opts.backend ?? 'auto');
    const arch = opts.arch ? checkArch(opts.arch) : namedArch(DEFAULT_ARCH);
    const threads = opts.threads === undefined ? undefined : checkNumber(opts.threads, 'threads', { min: 1, max: 1024, integer: true });
    const m = new Model(native.createModel(backend, seed, arch), { ...freshMetadata(), seed }, arch);
    if (threads !== undefined) m.setThreads(threads);
    return m;
  }

  /**
   * Runs this model's CPU operations on `threads` threads of its own (undefined: the
   * process-wide pool of setThreads(), the default), so that two models can train at once,
   * each on its own cores. Results do not depend on it. Refused while an operation runs.
   */
  setThreads(threads: number | undefined): void {
    const n = threads === undefined ? 0 : checkNumber(threads, 'threads', { min: 1, max: 1024, integer: true });
    this.handle.setThreads(n);
  }

  /** The model's own CPU thread count; undefined when it uses the process-wide pool. */
  get threads(): number | undefined {
    const n = this.handle.getThreads();
    return n === 0 ? undefined : n;
  }

  /** Values per image (height x width x channels, NHWC). */
  get inputSize(): number {
    const [h, w, c] = this.plan.inputShape;
    return h * w * c;
  }

  /** Pixel positions per image (height x width): what Algorithms 1-4 count. */
  get positions(): number {
    return this.plan.inputShape[0] * this.plan.inputShape[1];
  }

  get classes(): number {
    return this.plan.classes;
  }

  /** The spec's name when it is a named one ('paper-mnist', ...), else 'custom'. */
  get archName(): string {
    return archName(this.arch) ?? 'custom';
  }

  /** A model from flat parameters (parameterLayout(arch) order). */
  static fromParameters(
    parameters: Float32Array,
    opts: { backend?: BackendChoice; metadata?: Partial<ModelMetadata>; arch?: ArchSpec } = {},
  ): Model {
    const m = Model.create({ backend: opts.backend, arch: opts.arch });
    m.setParameters(parameters);
    m.metadata = { ...freshMetadata(), ...(opts.metadata ?? {}) } as ModelMetadata;
    return m;
  }

  /** Loads a safetensors file written here or exported from PyTorch with the same tensor names. */
  static async load(file: string, opts: { backend?: BackendChoice } = {}): Promise<Model> {
    if (typeof file !== 'string') throw typeError('file must be a string');
    return Model.fromContents(await readSafetensors(file), file, opts);
  }

  /** A model from a decoded safetensors file (`file` names it in messages): its spec from
   * __metadata__.arch (the paper's network without one), then exactly that spec's tensors. */
  static async fromContents(contents: SafetensorsContents, file: string, opts: { backend?: BackendChoice } = {}): Promise<Model> {
    const { tensors, metadata } = contents;
    const arch = archOfFile(file, metadata);
    const layout = parameterLayout(arch);
    const flat = new Float32Array(layout.reduce((s, p) => s + p.size, 0));
    const expected = new Set(layout.map((p) => p.name));
    for (const name of tensors.keys()) {
      if (!expected.has(name))
        throw new TemperedError(
          'TEMPERED_INCOMPATIBLE',
          `${file}: tensor '${name}' is not part of this network (expected ${[...expected].join(', ')})`,
        );
    }
    for (const p of layout) {
      const t = tensors.get(p.name);
      if (!t) throw new TemperedError('TEMPERED_INCOMPATIBLE', `${file}: tensor '${p.name}' is missing: not a model of this network`);
      if (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i]))
        throw new TemperedError(
          'TEMPERED_INCOMPATIBLE',
          `${file}: tensor '${p.name}' has shape [${t.shape.join(', ')}] but this network needs [${p.shape.join(', ')}]`,
        );
      for (let i = 0; i < t.data.length; i++)
        if (!Number.isFinite(t.data[i]))
          throw new TemperedError('TEMPERED_BAD_FILE', `${file}: tensor '${p.name}' holds a non-finite value at element ${i}`);
      flat.set(t.data, p.offset);
    }
    let meta: ModelMetadata = freshMetadata();
    if (metadata.tempered !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(metadata.tempered);
      } catch {
        throw new TemperedError('TEMPERED_BAD_FILE', `${file}: __metadata__.tempered is not valid JSON`);
      }
      meta = { ...meta, ...checkMetadata(file, parsed) };
    } else {
      meta = { ...meta, importedMetadata: metadata };
    }
    const m = Model.create({ backend: opts.backend, arch });
    try {
      m.setParameters(flat);
      await refuseOverflowingWeights(file, m);
    } catch (err) {
      m.dispose();
      throw err;
    }
    m.metadata = meta;
    return m;
  }

  /** Writes the weights and metadata atomically (temporary file, then rename). */
  async save(file: string): Promise<void> {
    if (typeof file !== 'string') throw typeError('file must be a string');
    const flat = this.getParameters();
    const tensors: Tensor[] = parameterLayout(this.arch).map((p) => ({
      name: p.name,
      shape: p.shape,
      data: flat.slice(p.offset, p.offset + p.size),
    }));
    const m = this.metadata;
    const flatMeta: Record<string, string> = {
      format: MODEL_FORMAT,
      format_version: String(MODEL_FORMAT_VERSION),
      package_version: m.packageVersion,
      arch: canonicalArch(this.arch),
      tempered: JSON.stringify({ ...m, formatVersion: MODEL_FORMAT_VERSION }),
    };
    if (m.trainingTemperature !== undefined) flatMeta.temperature = String(m.trainingTemperature);
    if (m.seed !== undefined) flatMeta.seed = String(m.seed);
    if (m.data?.fingerprint) flatMeta.data_fingerprint = m.data.fingerprint;
    await writeSafetensors(file, tensors, flatMeta);
  }

  get backend(): BackendName {
    return this.handle.backend();
  }

  /** The native handle (for lib/ internals: training, attacks). */
  get nativeModel(): NativeModel {
    return this.handle;
  }

  getParameters(): Float32Array {
    return this.handle.getParameters();
  }

  setParameters(parameters: Float32Array): void {
    this.handle.setParameters(parameters);
  }

  /** Logits [n x classes] for images [n x inputSize] (NHWC) with pixels in [0, 1]. */
  predict(images: Float32Array): Promise<Float32Array> {
    return this.handle.predict(images);
  }

  /** Predicted classes (first maximum logit). */
  async classify(images: Float32Array): Promise<Int32Array> {
    const z = await this.predict(images);
    const k = this.classes;
    const out = new Int32Array(z.length / k);
    for (let i = 0; i < out.length; i++) out[i] = argmax(z, i * k, k);
    return out;
  }

  /** Accuracy and mean cross-entropy at `temperature` (default 1) over a split. */
  async evaluate(split: MnistSplit, opts: { temperature?: number } = {}): Promise<Evaluation> {
    const temperature = checkLimit(opts.temperature ?? 1, 'temperature', 'temperature');
    checkSplitFits(split, this);
    const ds = await deviceDataset(split, this.backend);
    const r = await this.handle.evaluate(ds, 0, split.count, temperature, false);
    return { accuracy: r.correct / r.count, correct: r.correct, count: r.count, meanLoss: r.lossSum / r.count, temperature };
  }

  /** A copy of this model (weights, optimiser state, metadata) on another backend. */
  to(backend: BackendChoice): Model {
    const m = Model.create({ backend, arch: this.arch });
    m.setParameters(this.getParameters());
    m.handle.setVelocity(this.handle.getVelocity());
    m.metadata = JSON.parse(JSON.stringify(this.metadata)) as ModelMetadata;
    return m;
  }

  /** Frees the device memory now (otherwise the garbage collector does). */
  dispose(): void {
    this.handle.dispose();
  }
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** __metadata__.tempered, checked field by field: a JSON object whose known fields have their
 * types (what train, distill and attack read back from it). */
function checkMetadata(file: string, parsed: unknown): Partial<ModelMetadata> {
  const bad = (what: string) => new TemperedError('TEMPERED_BAD_FILE', `${file}: __metadata__.tempered ${what}`);
  if (!isRecord(parsed))
    throw bad(`must be a JSON object (got ${parsed === null ? 'null' : Array.isArray(parsed) ? 'an array' : typeof parsed})`);
  const m = parsed;
  if (m.format !== undefined && m.format !== MODEL_FORMAT) throw bad(`.format must be '${MODEL_FORMAT}'`);
  if (m.formatVersion !== undefined) {
    if (!Number.isInteger(m.formatVersion) || (m.formatVersion as number) < 1) throw bad('.formatVersion must be a positive integer');
    if ((m.formatVersion as number) > MODEL_FORMAT_VERSION)
      throw new TemperedError(
        'TEMPERED_INCOMPATIBLE',
        `${file}: model format version ${m.formatVersion} is newer than this package reads (${MODEL_FORMAT_VERSION})`,
      );
  }
  for (const key of ['packageVersion', 'createdAt'])
    if (m[key] !== undefined && typeof m[key] !== 'string') throw bad(`.${key} must be a string`);
  if (m.kind !== undefined && m.kind !== 'standard' && m.kind !== 'distilled') throw bad(".kind must be 'standard' or 'distilled'");
  if (m.trainingTemperature !== undefined) {
    try {
      checkLimit(m.trainingTemperature, 'trainingTemperature', 'temperature');
    } catch (err) {
      throw bad(`.${(err as Error).message}`);
    }
  }
  if (m.seed !== undefined && !(Number.isInteger(m.seed) && (m.seed as number) >= 0 && (m.seed as number) <= 0xffffffff))
    throw bad('.seed must be an integer in [0, 4294967295]');
  for (const key of ['training', 'data', 'trainedOn', 'result', 'teacher'])
    if (m[key] !== undefined && !isRecord(m[key])) throw bad(`.${key} must be an object`);
  return m as Partial<ModelMetadata>;
}

/** Refuses weights that are finite but so large that the logits are not (±3.4e38 in a
 * tensor overflows the first layer): checked on a black, a grey and a white image. */
export async function refuseOverflowingWeights(file: string, m: Model): Promise<void> {
  const n = m.inputSize;
  const probe = new Float32Array(3 * n);
  probe.fill(0.5, n, 2 * n).fill(1, 2 * n);
  const z = await m.predict(probe);
  if (!z.every(Number.isFinite))
    throw new TemperedError('TEMPERED_BAD_FILE', `${file}: the weights give non-finite logits (values too large for float32 arithmetic)`);
}

/** The architecture a file declares: __metadata__.arch (format 2), else the paper's network
 * (format 1 and files exported elsewhere without one). */
function archOfFile(file: string, metadata: Record<string, string>): ArchSpec {
  if (metadata.arch === undefined) {
    if (metadata.format_version !== undefined && Number(metadata.format_version) >= 2)
      throw new TemperedError('TEMPERED_BAD_FILE', `${file}: a format ${metadata.format_version} model file without __metadata__.arch`);
    return namedArch(DEFAULT_ARCH);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(metadata.arch);
  } catch {
    throw new TemperedError('TEMPERED_BAD_FILE', `${file}: __metadata__.arch is not valid JSON`);
  }
  try {
    return checkArch(parsed, `${file}: __metadata__.arch`);
  } catch (err) {
    if (err instanceof TemperedError && err.code === 'TEMPERED_BAD_ARCH') throw new TemperedError('TEMPERED_BAD_FILE', err.message);
    throw err;
  }
}

/** Refuses a data split whose images are not the model's input size. */
export function checkSplitFits(split: { images: Float32Array; count: number; shape?: ImageShape }, model: Model): void {
  const size = split.shape ? split.shape.height * split.shape.width * split.shape.channels : 784;
  if (size !== model.inputSize || split.images.length !== split.count * size)
    throw new TemperedError(
      'TEMPERED_INCOMPATIBLE',
      `the data's images are ${describeShape(split.shape)} but the model (${model.archName}) takes ` +
        `${model.plan.inputShape[0]}x${model.plan.inputShape[1]}x${model.plan.inputShape[2]}`,
    );
}

function describeShape(shape?: ImageShape): string {
  const s = shape ?? { height: 28, width: 28, channels: 1 };
  return `${s.height}x${s.width}x${s.channels}`;
}

export function argmax(z: ArrayLike<number>, offset = 0, classes = 10): number {
  let best = 0;
  for (let j = 1; j < classes; j++) if (z[offset + j] > z[offset + best]) best = j;
  return best;
}
