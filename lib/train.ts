// Training: epochs of shuffled mini-batches through the native engine, validation after
// each epoch, progress events, and a checkpoint written atomically after every epoch so an
// interrupted run resumes where it stopped with bit-identical results.
import * as fs from 'fs';
import { types } from 'util';
import { describeBackend } from './backends';
import { deviceDataset, limitSplit } from './data';
import { TemperedError, checkNumber, rangeError, typeError } from './errors';
import { checkLimit } from './limits';
import type { MnistData } from './mnist';
import type { ArchSpec } from './arch';
import { Model, ModelMetadata, checkSplitFits } from './model';
import { epochPermutation } from './rng';
import { readSafetensors, writeSafetensors } from './safetensors';

/** Training hyper-parameters. Defaults are the paper's (docs/algorithms.md). */
export interface TrainConfig {
  /** Passes over the training set (paper: 50). */
  epochs: number;
  /** Samples per SGD step (paper: 128). */
  batchSize: number;
  /** SGD learning rate (paper: 0.1; 0.05 for the distilled student). */
  learningRate: number;
  /** Nesterov momentum (paper: 0.5). */
  momentum: number;
  /** Softmax temperature of the training loss (paper: 1 for M_std, 20 for M_std-T and M_distill). */
  temperature: number;
  /** Multiplies the cross-entropy's gradient (1 = the paper; T compensates the 1/T of a hot softmax). */
  lossScale: number;
  /** Coefficient of the L2 penalty l2 * sum(fc3.weight^2) that the original code added (0.01). */
  l2: number;
  /** Rate of every dropout layer of the network. Undefined: each layer's rate in the
   * architecture spec; when they all agree (the paper's network: 0.5) that rate is filled in. */
  dropout?: number;
  /** Seed of the shuffling and dropout masks (and, for a new model, its initial weights). */
  seed: number;
  /** Train on the first N training images only (quick runs); undefined = all. */
  trainLimit?: number;
}

export const DEFAULT_TRAIN_CONFIG: TrainConfig = {
  epochs: 50,
  batchSize: 128,
  learningRate: 0.1,
  momentum: 0.5,
  temperature: 1,
  lossScale: 1,
  l2: 0.01,
  seed: 0,
};

export interface TrainProgress {
  epoch: number; // 1-based
  epochs: number;
  batch: number; // batches done in this epoch
  batches: number;
  /** Mean cross-entropy over this epoch so far. */
  loss: number;
  samplesPerSecond: number;
  /** Seconds left for the whole run at the current speed. */
  etaSeconds: number;
}

export interface EpochRecord {
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  validationAccuracy?: number;
  validationLoss?: number;
  seconds: number;
  samplesPerSecond: number;
}

export interface TrainOptions extends Partial<TrainConfig> {
  /** Soft targets [trainCount x 10] to train on instead of the labels (distillation). */
  softTargets?: Float32Array;
  /** Evaluate the validation split after every epoch (default true). */
  validate?: boolean;
  /** File for the resumable state, rewritten atomically after every epoch. */
  checkpoint?: string;
  onProgress?: (p: TrainProgress) => void;
  onEpoch?: (e: EpochRecord) => void;
  /** Stops between batches; the last finished epoch stays in the checkpoint. */
  signal?: AbortSignal;
}

export interface TrainResult {
  config: TrainConfig;
  history: EpochRecord[];
  /** Epochs found done in the checkpoint at the start (0 for a fresh run). */
  resumedEpochs: number;
}

const STEPS_PER_CALL = 16;

export function resolveTrainConfig(opts: Partial<TrainConfig>): TrainConfig {
  const c: TrainConfig = { ...DEFAULT_TRAIN_CONFIG };
  for (const key of Object.keys(DEFAULT_TRAIN_CONFIG) as (keyof TrainConfig)[]) {
    if (opts[key] !== undefined) (c as unknown as Record<string, unknown>)[key] = opts[key];
  }
  if (opts.trainLimit !== undefined) c.trainLimit = opts.trainLimit;
  if (opts.dropout !== undefined) c.dropout = opts.dropout;
  checkNumber(c.epochs, 'epochs', { min: 1, max: 100000, integer: true });
  checkNumber(c.batchSize, 'batchSize', { min: 1, max: 65536, integer: true });
  checkLimit(c.learningRate, 'learningRate', 'learningRate');
  checkLimit(c.momentum, 'momentum', 'momentum');
  checkLimit(c.temperature, 'temperature', 'temperature');
  checkLimit(c.lossScale, 'lossScale', 'lossScale');
  checkLimit(c.l2, 'l2', 'l2');
  if (c.dropout !== undefined) checkLimit(c.dropout, 'dropout', 'dropoutRate');
  checkNumber(c.seed, 'seed', { min: 0, max: 0xffffffff, integer: true });
  if (c.trainLimit !== undefined) checkNumber(c.trainLimit, 'trainLimit', { min: 1, integer: true });
  return c;
}

interface CheckpointState {
  config: TrainConfig;
  dataFingerprint: string;
  softTargets: boolean;
  epochsDone: number;
  history: EpochRecord[];
  metadata: ModelMetadata;
}

async function readCheckpoint(
  file: string,
): Promise<{ state: CheckpointState; parameters: Float32Array; velocity: Float32Array } | undefined> {
  if (!fs.existsSync(file)) return undefined;
  const { tensors, metadata } = await readSafetensors(file);
  const p = tensors.get('parameters');
  const v = tensors.get('velocity');
  if (!p || !v || !metadata.tempered_checkpoint)
    throw new TemperedError('TEMPERED_BAD_FILE', `${file} is not a tempered training checkpoint`);
  return { state: JSON.parse(metadata.tempered_checkpoint) as CheckpointState, parameters: p.data, velocity: v.data };
}

function sameConfig(a: TrainConfig, b: TrainConfig): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]) as Set<keyof TrainConfig>;
  for (const k of keys) if (a[k] !== b[k]) return false;
  return true;
}

/** The rate all dropout layers of a spec share (0 without any), or undefined when they differ. */
export function sharedDropoutRate(arch: ArchSpec): number | undefined {
  const rates = new Set(arch.layers.flatMap((l) => (l.type === 'dropout' ? [l.rate] : [])));
  if (rates.size === 0) return 0;
  return rates.size === 1 ? [...rates][0] : undefined;
}

/**
 * Trains `model` on `data.train` (or its first `trainLimit` images). With `checkpoint`,
 * the model, optimiser state and history are saved after every epoch and a later call
 * with the same configuration resumes after the last finished epoch.
 */
export async function train(model: Model, data: MnistData, opts: TrainOptions = {}): Promise<TrainResult> {
  if (!(model instanceof Model)) throw typeError('model must be a Model');
  const config = resolveTrainConfig({
    ...opts,
    seed: opts.seed ?? model.metadata.seed ?? 0,
    dropout: opts.dropout ?? sharedDropoutRate(model.arch),
  });
  checkSplitFits(data.train, model);
  const trainSplit = limitSplit(data.train, config.trainLimit);
  const n = trainSplit.count;
  let soft = opts.softTargets;
  if (soft !== undefined) {
    // util.types, not instanceof: arrays made by the addon or another realm (jest) still count.
    if (!types.isFloat32Array(soft)) throw typeError('softTargets must be a Float32Array');
    const k = model.classes;
    if (soft.length < n * k)
      throw rangeError(`softTargets must hold ${n} rows of ${k} (got ${soft.length / k})`, 'TEMPERED_INVALID_LENGTH');
    soft = soft.subarray(0, n * k);
  }

  const backend = model.backend;
  const nm = model.nativeModel;
  const history: EpochRecord[] = [];
  let resumedEpochs = 0;
  if (opts.checkpoint) {
    const ck = await readCheckpoint(opts.checkpoint);
    if (ck) {
      if (!sameConfig(ck.state.config, config) || ck.state.dataFingerprint !== data.fingerprint || ck.state.softTargets !== !!soft)
        throw new TemperedError(
          'TEMPERED_INCOMPATIBLE',
          `${opts.checkpoint} holds a run with another configuration or data (${JSON.stringify(ck.state.config)}); ` +
            'delete it to start afresh, or rerun with the same options to resume it',
        );
      model.setParameters(ck.parameters);
      nm.setVelocity(ck.velocity);
      model.metadata = ck.state.metadata;
      history.push(...ck.state.history);
      resumedEpochs = ck.state.epochsDone;
    }
  }

  const ds = await deviceDataset(trainSplit, backend, soft);
  const validation = opts.validate === false ? undefined : data.validation;
  const batches = Math.ceil(n / config.batchSize);
  const nativeConfig = {
    learningRate: config.learningRate,
    momentum: config.momentum,
    temperature: config.temperature,
    lossScale: config.lossScale,
    l2: config.l2,
    ...(config.dropout !== undefined ? { dropoutRate: config.dropout } : {}),
    dropoutSeed: config.seed,
    softTargets: !!soft,
  };
  const runStart = Date.now();
  let samplesThisRun = 0;

  for (let epoch = resumedEpochs; epoch < config.epochs; epoch++) {
    const order = epochPermutation(n, config.seed, epoch);
    const started = Date.now();
    let lossSum = 0;
    let correct = 0;
    let seen = 0;
    for (let b = 0; b < batches; b += STEPS_PER_CALL) {
      if (opts.signal?.aborted) throw new TemperedError('TEMPERED_IO', 'training aborted', { cause: opts.signal.reason });
      const from = b * config.batchSize;
      const to = Math.min(n, (b + STEPS_PER_CALL) * config.batchSize);
      const r = await nm.trainSteps(ds, order.subarray(from, to), config.batchSize, nativeConfig, epoch * batches + b);
      for (let i = 0; i < r.lossSum.length; i++) {
        lossSum += r.lossSum[i];
        correct += r.correct[i];
        seen += r.samples[i];
      }
      samplesThisRun += to - from;
      if (opts.onProgress) {
        const elapsed = (Date.now() - runStart) / 1000;
        const rate = samplesThisRun / Math.max(elapsed, 1e-3);
        const remaining = (config.epochs - epoch - 1) * n + (n - seen);
        opts.onProgress({
          epoch: epoch + 1,
          epochs: config.epochs,
          batch: Math.min(batches, b + STEPS_PER_CALL),
          batches,
          loss: lossSum / seen,
          samplesPerSecond: rate,
          etaSeconds: remaining / rate,
        });
      }
    }
    const seconds = (Date.now() - started) / 1000;
    const record: EpochRecord = {
      epoch: epoch + 1,
      trainLoss: lossSum / n,
      trainAccuracy: correct / n,
      seconds,
      samplesPerSecond: n / seconds,
    };
    if (validation && validation.count > 0) {
      const v = await model.evaluate(validation, { temperature: config.temperature });
      record.validationAccuracy = v.accuracy;
      record.validationLoss = v.meanLoss;
    }
    history.push(record);
    model.metadata = {
      ...model.metadata,
      kind: soft ? 'distilled' : 'standard',
      trainingTemperature: config.temperature,
      seed: config.seed,
      training: { ...config },
      data: { fingerprint: data.fingerprint, description: data.description, split: data.split, trainCount: n },
      trainedOn: describeBackend(backend),
      result: { epochs: history.length, history },
    };
    if (opts.checkpoint) {
      const state: CheckpointState = {
        config,
        dataFingerprint: data.fingerprint,
        softTargets: !!soft,
        epochsDone: epoch + 1,
        history,
        metadata: model.metadata,
      };
      await writeSafetensors(
        opts.checkpoint,
        [
          { name: 'parameters', shape: [nm.parameterCount()], data: model.getParameters() },
          { name: 'velocity', shape: [nm.parameterCount()], data: nm.getVelocity() },
        ],
        { tempered_checkpoint: JSON.stringify(state) },
      );
    }
    opts.onEpoch?.(record);
  }
  return { config, history, resumedEpochs };
}
