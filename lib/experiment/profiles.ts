// What an experiment runs: the profiles (quick, paper), the three models, the attack
// settings, and the keys that identify a model's training. Depends on nothing else in
// lib/experiment, so every other part (pieces, run, render) can import it.
import { archName, canonicalArch, type ArchSpec } from '../arch';
import { PAPER_ALGORITHMS, AttackAlgorithm, AttackLoss, LossPrecision } from '../attack';
import { checkLimit } from '../limits';
import { checkNumber, rangeError } from '../errors';

export type ProfileName = 'quick' | 'paper';
export const PROFILE_NAMES: readonly ProfileName[] = ['quick', 'paper'];

export interface ExperimentProfile {
  name: string;
  /** Epochs of each of the three trainings. */
  epochs: number;
  /** Train on the first N training images (undefined: all 50,000). */
  trainLimit?: number;
  /** Temperature of M_std-T and M_distill (the paper: 20). */
  temperature: number;
  /** Loss scale of the two trainings at that temperature: 1 = the paper; T = the remedy for short runs. */
  hotLossScale: number;
  /** Learning rates of M_std (the paper: 0.1), M_std-T (0.1) and the distilled student (0.05). */
  learningRate: number;
  hotLearningRate: number;
  studentLearningRate: number;
  /** Test samples attacked with Algorithms 1-3, and the subset attacked with Algorithm 4. */
  samples: number;
  alg4Samples: number;
  /** Pixel budget (the paper: 100). */
  budget: number;
  /** Evaluation temperatures of the gradient statistics. */
  gradientTemperatures: number[];
  /** Samples per model shown in the pictures. */
  pictures: number;
  /** Each model's masking diagnosis (lib/diagnose.ts) runs on the first this many of the samples (0: none). */
  diagnosisSamples: number;
}

/**
 * Why the quick profile does not train at T = 20 with the paper's settings: measured once
 * with this engine (seed 0, the paper's loss scale 1 and learning rate 0.1, M_std-T's
 * validation accuracy after each of its first three epochs, 50,000 training images). The
 * one place this figure lives: the README and every results.md quote it from here.
 */
export const HOT_START_MEASUREMENT = {
  validationAccuracyByEpoch: [0.21, 0.14, 0.95],
  seed: 0,
  how: "M_std-T trained with the paper's settings (loss scale 1, learning rate 0.1), validation accuracy after epochs 1-3",
};

/**
 * Why Algorithms 1 and 3 on M_std fall short of the paper's 66% (logs: 60.5%) and "> 95%":
 * measured once on the published M_std (docs/results/paper/models/std.safetensors), the
 * paper profile's 1,000 samples (seed 0), budget 784, float32 and float64 cross-entropy, the
 * attacked samples split by their logit margin d = z_y - max_{j != y} z_j at T = 1. Past
 * d ~ 16.6, float32 rounds p_y to 1, so dL/dz_y = p_y - 1 is 0 and the gradient keeps only the
 * other classes' terms (no map is all zero, but it points elsewhere). Rates at 100 pixels.
 */
export const PAPER_GAP_MEASUREMENT = {
  command:
    'tempered attack --model docs/results/paper/models/std.safetensors --alg alg1 --samples 1000 --budget 784 --precision float32 --json ' +
    '(and alg3, float64), split by docs/measurements/margin-split.js',
  attacked: 991,
  pastCliff: 684,
  medianMargin: 19.2,
  alg1: { float32: { below: 0.909, past: 0.282, all: 0.476, at200: 0.685 }, float64: { below: 0.912, past: 0.724, all: 0.782 } },
  alg3: { float32: { below: 0.961, past: 0.355, all: 0.543, at200: 0.741 }, float64: { below: 0.958, past: 0.835, all: 0.873 } },
};

/** The measurement in words, quoted by the report and the docs. */
export function paperGapSentence(): string {
  const m = PAPER_GAP_MEASUREMENT;
  const p = (x: number) => `${(100 * x).toFixed(1)}%`;
  // The share f of samples past the cliff for which f * past + (1 - f) * below = rate (Algorithm 1, float32).
  const share = (rate: number) => `${Math.round((100 * (m.alg1.float32.below - rate)) / (m.alg1.float32.below - m.alg1.float32.past))}%`;
  return (
    `On the published M_std, ${m.pastCliff} of the ${m.attacked} samples it classifies correctly among the paper profile's 1,000 have a logit margin above ~16.6 (median of the 1,000: ${m.medianMargin}), ` +
    "past which float32 rounds p_y to 1 and the cross-entropy's gradient loses the true class's term (dL/dz_y = p_y − 1 = 0; no map is all zero, it points elsewhere). " +
    `Below that margin Algorithm 1 succeeds on ${p(m.alg1.float32.below)} of the samples in float32 (${p(m.alg1.float64.below)} in float64) ` +
    `and Algorithm 3 on ${p(m.alg3.float32.below)} (${p(m.alg3.float64.below)}), the paper's "> 95%"; past it, on ${p(m.alg1.float32.past)} ` +
    `and ${p(m.alg3.float32.past)} in float32 against ${p(m.alg1.float64.past)} and ${p(m.alg3.float64.past)} in float64. ` +
    `So the float32 rates (${p(m.alg1.float32.all)}, ${p(m.alg3.float32.all)}) measure how confident the model is: by these two rates, a model with ` +
    `${share(0.66)}-${share(0.605)} of its samples past the cliff (ours: ${p(m.pastCliff / m.attacked)}) gives Algorithm 1 the paper's 66% or 60.5%, and Algorithm 3's ` +
    `"> 95%" needs nearly every sample below it. The budget does not account for both: 200 pixels (the paper states 100) give ` +
    `${p(m.alg1.float32.at200)} and ${p(m.alg3.float32.at200)}. Measured with \`${m.command}\`.`
  );
}

/** The measurement as a sentence fragment ("a%, b%, c%"), quoted wherever it is cited. */
export function hotStartSentence(): string {
  return HOT_START_MEASUREMENT.validationAccuracyByEpoch.map((a) => `${Math.round(100 * a)}%`).join(', ');
}

export const PROFILES: Record<ProfileName, ExperimentProfile> = {
  quick: {
    name: 'quick',
    epochs: 3,
    temperature: 20,
    // The remedy for short runs at T = 20 (see HOT_START_MEASUREMENT: the paper's settings
    // start at near chance; the gradient scaled by T at learning rate 0.1 collapses to a
    // constant prediction; scaled by T at learning rate 0.02: ~98.5% after 3 epochs, and
    // the student ~98.3%).
    hotLossScale: 20,
    learningRate: 0.1,
    hotLearningRate: 0.02,
    studentLearningRate: 0.02,
    samples: 100,
    alg4Samples: 6,
    budget: 100,
    gradientTemperatures: [1, 20],
    pictures: 4,
    diagnosisSamples: 20,
  },
  paper: {
    name: 'paper',
    epochs: 50,
    temperature: 20,
    hotLossScale: 1,
    learningRate: 0.1,
    hotLearningRate: 0.1,
    studentLearningRate: 0.05,
    samples: 1000,
    alg4Samples: 100,
    budget: 100,
    gradientTemperatures: [1, 20],
    pictures: 6,
    diagnosisSamples: 100,
  },
};

export type ModelId = 'std' | 'stdT' | 'distill';
export interface ModelSpec {
  id: ModelId;
  name: string;
  temperature: number;
  /** The paper's test accuracy. */
  paperAccuracy: number;
}

export function modelSpecs(profile: ExperimentProfile): ModelSpec[] {
  return [
    { id: 'std', name: 'M_std', temperature: 1, paperAccuracy: 0.9957 },
    { id: 'stdT', name: 'M_std-T', temperature: profile.temperature, paperAccuracy: 0.9934 },
    { id: 'distill', name: 'M_distill', temperature: profile.temperature, paperAccuracy: 0.9907 },
  ];
}

export type AttackSettingId = 'xent32' | 'xent64' | 'margin';
export interface AttackSetting {
  id: AttackSettingId;
  label: string;
  loss: AttackLoss;
  precision: LossPrecision;
}

export const ATTACK_SETTINGS: AttackSetting[] = [
  { id: 'xent32', label: 'float32 cross-entropy (the paper)', loss: 'xent', precision: 'float32' },
  { id: 'xent64', label: 'float64 cross-entropy (log1p form)', loss: 'xent', precision: 'float64' },
  { id: 'margin', label: 'logit margin', loss: 'margin', precision: 'float64' },
];

/** What `reproduce` attacks with: the paper's Algorithms 1-4 (the study adds the literature's attacks). */
export const ALGORITHMS: readonly AttackAlgorithm[] = PAPER_ALGORITHMS;

export interface ResolveProfileOptions {
  profile?: ProfileName;
  /** Overrides of the profile's settings (e.g. fewer samples). */
  overrides?: Partial<ExperimentProfile>;
}

export function resolveProfile(opts: ResolveProfileOptions): ExperimentProfile {
  const name = opts.profile ?? 'quick';
  if (!PROFILE_NAMES.includes(name)) throw rangeError(`profile must be 'quick' or 'paper' (got '${String(name)}')`);
  const p: ExperimentProfile = { ...PROFILES[name], ...(opts.overrides ?? {}) };
  if (opts.overrides && Object.keys(opts.overrides).length > 0) p.name = `${name} (modified)`;
  checkNumber(p.epochs, 'epochs', { min: 1, integer: true });
  if (p.trainLimit !== undefined) checkNumber(p.trainLimit, 'trainLimit', { min: 1, integer: true });
  checkNumber(p.samples, 'samples', { min: 1, max: 10000, integer: true });
  checkNumber(p.alg4Samples, 'alg4Samples', { min: 0, max: p.samples, integer: true });
  checkNumber(p.budget, 'budget', { min: 1, max: 784, integer: true });
  checkLimit(p.temperature, 'temperature', 'temperature');
  checkNumber(p.hotLossScale, 'hotLossScale', { min: 0, minExclusive: true });
  checkNumber(p.pictures, 'pictures', { min: 0, integer: true });
  checkNumber(p.diagnosisSamples, 'diagnosisSamples', { min: 0, max: 10000, integer: true });
  return p;
}

export function learningRateOf(spec: ModelSpec, p: ExperimentProfile): number {
  return spec.id === 'std' ? p.learningRate : spec.id === 'stdT' ? p.hotLearningRate : p.studentLearningRate;
}

export function lossScaleOf(spec: ModelSpec, p: ExperimentProfile): number {
  return spec.id === 'std' ? 1 : p.hotLossScale;
}

/**
 * What identifies a model's training: reusing a model trained otherwise would mix runs.
 * Frozen: models trained by earlier versions are found by this exact string (same fields,
 * same order), so changing it would retrain every stored model.
 */
export function trainingKey(spec: ModelSpec, p: ExperimentProfile, seed: number, fingerprint: string, arch?: ArchSpec): string {
  // The paper's network adds nothing, so the keys of every stored model stay as they were.
  const network = arch && archName(arch) !== 'paper-mnist' ? { arch: canonicalArch(arch) } : {};
  return JSON.stringify({
    model: spec.id,
    epochs: p.epochs,
    trainLimit: p.trainLimit ?? null,
    temperature: spec.temperature,
    lossScale: spec.id === 'std' ? 1 : p.hotLossScale,
    learningRate: learningRateOf(spec, p),
    seed,
    data: fingerprint,
    ...network,
  });
}

/**
 * Below this test accuracy a model is near chance, as `study` counts it (its --near-chance
 * default): reproduce still attacks it, but warns, and its reading draws no conclusion from it.
 */
export const NEAR_CHANCE_ACCURACY = 0.5;

/** The warning for the models near chance (undefined when there is none). */
export function nearChanceWarning(models: readonly { name: string; testAccuracy: number }[]): string | undefined {
  const near = models.filter((m) => m.testAccuracy < NEAR_CHANCE_ACCURACY);
  if (near.length === 0) return undefined;
  return (
    `${near.map((m) => `${m.name} (${(100 * m.testAccuracy).toFixed(1)}%)`).join(', ')} ${near.length === 1 ? 'is' : 'are'} near chance ` +
    `(test accuracy below ${100 * NEAR_CHANCE_ACCURACY}%): ${near.length === 1 ? 'its' : 'their'} attack rates say nothing about robustness; ` +
    'train longer (--epochs) before reading them.'
  );
}
