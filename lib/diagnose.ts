// diagnose: is a model's robustness real, or gradient masking? One fixed battery of attacks
// on the same test samples, and the rules of Athalye, Carlini & Wagner (2018, "Obfuscated
// Gradients Give a False Sense of Security") and Carlini et al. (2019, "On Evaluating
// Adversarial Robustness") applied to its numbers: a verdict with the rule that produced it
// and the evidence. The battery is a table (BATTERY): each step names a registry attack, its
// options, and the rules it feeds; adding an attack is one entry. Definitions, thresholds
// and choices: docs/diagnose.md.
import {
  AttackAlgorithm,
  AttackOptions,
  AttackParameters,
  AttackRecord,
  AttackSummary,
  attackDescriptor,
  checkAttackOptions,
  runAttack,
} from './attack';
import { classifyTransfer, TransferRecord } from './attacks/transfer';
import { archName } from './arch';
import { describeBackend } from './backends';
import { gatherImages } from './data';
import { parametersHash } from './distill';
import { checkNumber, rangeError, typeError } from './errors';
import { checkLimit } from './limits';
import { loadMnist, MnistData } from './mnist';
import { Model, checkSplitFits, packageVersion } from './model';
import { sampleWithoutReplacement } from './rng';
import { wilsonInterval } from './stats';
import { train } from './train';

export const DIAGNOSIS_FORMAT = 'tempered-diagnosis';
export const DIAGNOSIS_FORMAT_VERSION = 1;

export type Interval = { low: number; high: number };

/** The three verdicts, and nothing else. */
export const VERDICTS = ['robustness is gradient masking', 'no sign of masking', 'inconclusive'] as const;
export type Verdict = (typeof VERDICTS)[number];

/**
 * What one rule found: a sign of masking, none, too little evidence either way, or no attack to
 * evaluate it with; rule 7 (the worst case) is a measurement, not a sign: 'measured'.
 */
export type RuleStatus = 'masking' | 'clean' | 'inconclusive' | 'not evaluated' | 'measured';

/**
 * What a step of the battery is, for the rules: 'single-step' and 'iterative' (rule 2),
 * 'xent' (a white-box gradient attack on the float32 cross-entropy, the loss a saturated
 * softmax masks: rules 3, 5 and 6), 'non-saturating' (a loss that cannot saturate: rule 6),
 * 'black-box' (no gradients: rule 3), 'transfer' (crafted on the surrogate: rule 5), 'curve'
 * (the epsilon curve: rule 4), 'paper' (the paper's own attack, for comparison only).
 */
export type StepRole = 'single-step' | 'iterative' | 'xent' | 'non-saturating' | 'black-box' | 'transfer' | 'curve' | 'paper';

/** What a step's options are computed from. */
export interface StepContext {
  epsilon: number;
  temperature: number;
  /** Rule 4's radii, smallest first (the last is 1). */
  curve: number[];
  /** The success rate at epsilon of a step already run (undefined: not run). */
  rateOf: (id: string) => number | undefined;
}

export interface BatteryStep {
  id: string;
  label: string;
  algorithm: AttackAlgorithm;
  parameters: (c: StepContext) => AttackParameters;
  roles: StepRole[];
  /** Its successes count in the worst case (rule 7): an L-infinity attack within the ball of radius epsilon. */
  worstCase: boolean;
}

/** PGD's settings in the battery: the study's and reproduce's (40 steps of 0.01 from a seeded random start). */
const PGD = { steps: 40, stepSize: 0.01, randomStart: true } as const;

/**
 * The battery, in the order it runs (a step may read the rates of the steps before it).
 * Every attack runs on the same samples with the same seed.
 */
export const BATTERY: readonly BatteryStep[] = [
  {
    id: 'fgsm-xent32',
    label: 'FGSM, float32 cross-entropy',
    algorithm: 'fgsm',
    parameters: (c) => ({ loss: 'xent', precision: 'float32', temperature: c.temperature, epsilon: c.epsilon }),
    roles: ['single-step'],
    worstCase: true,
  },
  {
    id: 'pgd-xent32',
    label: 'PGD, float32 cross-entropy',
    algorithm: 'pgd',
    parameters: (c) => ({ loss: 'xent', precision: 'float32', temperature: c.temperature, epsilon: c.epsilon, ...PGD }),
    roles: ['iterative', 'xent'],
    worstCase: true,
  },
  {
    id: 'pgd-xent64',
    label: 'PGD, float64 cross-entropy (the log1p form)',
    algorithm: 'pgd',
    parameters: (c) => ({ loss: 'xent', precision: 'float64', temperature: c.temperature, epsilon: c.epsilon, ...PGD }),
    roles: ['non-saturating'],
    worstCase: true,
  },
  {
    id: 'pgd-margin',
    label: 'PGD, logit margin (float64)',
    algorithm: 'pgd',
    parameters: (c) => ({ loss: 'margin', precision: 'float64', temperature: c.temperature, epsilon: c.epsilon, ...PGD }),
    roles: ['non-saturating'],
    worstCase: true,
  },
  {
    id: 'apgd-ce',
    label: 'APGD, float32 cross-entropy',
    algorithm: 'apgd-ce',
    parameters: (c) => ({ precision: 'float32', temperature: c.temperature, epsilon: c.epsilon }),
    roles: ['iterative', 'xent'],
    worstCase: true,
  },
  {
    id: 'apgd-dlr',
    label: 'APGD, DLR loss (scale-invariant)',
    algorithm: 'apgd-dlr',
    parameters: (c) => ({ epsilon: c.epsilon }),
    roles: ['non-saturating'],
    worstCase: true,
  },
  {
    id: 'apgd-t',
    label: 'APGD, targeted DLR over the top 9 other classes',
    algorithm: 'apgd-t',
    parameters: (c) => ({ epsilon: c.epsilon }),
    roles: ['non-saturating'],
    worstCase: true,
  },
  {
    id: 'square',
    label: 'Square attack (score-based black-box, 5,000 queries)',
    algorithm: 'square',
    parameters: (c) => ({ epsilon: c.epsilon }),
    roles: ['black-box'],
    worstCase: true,
  },
  {
    id: 'pgd-curve',
    label: 'PGD with the stronger loss at epsilon, radii up to 1',
    algorithm: 'pgd',
    parameters: (c) => {
      const margin = (c.rateOf('pgd-margin') ?? 0) >= (c.rateOf('pgd-xent32') ?? 0);
      return {
        loss: margin ? 'margin' : 'xent',
        precision: margin ? 'float64' : 'float32',
        temperature: c.temperature,
        epsilons: c.curve,
        ...PGD,
      };
    },
    roles: ['curve'],
    worstCase: true, // its records within epsilon only
  },
  {
    id: 'transfer-pgd-margin',
    label: 'transfer of PGD (logit margin) from the surrogate',
    algorithm: 'pgd',
    parameters: (c) => ({ loss: 'margin', precision: 'float64', temperature: 1, epsilon: c.epsilon, ...PGD }),
    roles: ['transfer'],
    worstCase: true,
  },
  {
    id: 'alg2-xent32',
    label: "Algorithm 2, float32 cross-entropy (the paper's attack; L0, outside the ball)",
    algorithm: 'alg2',
    parameters: (c) => ({ loss: 'xent', precision: 'float32', temperature: c.temperature }),
    roles: ['paper'],
    worstCase: false,
  },
];

/** The rules, numbered as in docs/diagnose.md. */
export const RULES = {
  1: 'float32 input gradient exactly zero',
  2: 'single-step stronger than iterative',
  3: 'black-box stronger than white-box',
  4: 'success reaches 100% as epsilon grows to 1',
  5: 'transfer stronger than white-box',
  6: 'non-saturating loss against the cross-entropy',
  7: 'worst-case robust accuracy',
} as const;
export type RuleId = keyof typeof RULES;

/** Thresholds of the rules (docs/diagnose.md). */
export const THRESHOLDS = {
  /** Rule 1: masking when the 95% Wilson interval of the all-zero share lies above this. */
  zeroShare: 0.05,
  /** Rules 2, 3, 5, 6: a difference this large whose intervals overlap is inconclusive. */
  minimumGap: 0.1,
} as const;

/** The epsilon curve's radii (epsilon itself is added). */
export const CURVE_EPSILONS = [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1] as const;

export interface StepResult {
  id: string;
  label: string;
  algorithm: AttackAlgorithm;
  parameters: AttackParameters;
  roles: StepRole[];
  worstCase: boolean;
  /** Samples counted (attacked; for the transfer: crafted on the surrogate and classified correctly by the model), and those fooled. */
  attacked: number;
  successes: number;
  successRate: number;
  interval: Interval;
  /** Attacked samples whose first gradient (or saliency map) was exactly zero. */
  allZero?: number;
  /** The curve: success at each radius. */
  byEpsilon?: { epsilon: number; attacked: number; successes: number; successRate: number; interval: Interval }[];
  /** The curve: the rate at epsilon (the radius of the other steps). */
  atEpsilon?: { attacked: number; successes: number; successRate: number; interval: Interval };
  seconds: number;
}

export interface RuleResult {
  id: RuleId;
  title: string;
  status: RuleStatus;
  /** The evidence in one sentence, with its numbers. */
  evidence: string;
  /** The numbers themselves, for scripts. */
  numbers: Record<string, unknown>;
}

export interface SampleOutcome {
  index: number;
  label: number;
  /** The model classifies the clean image correctly (else it is attacked by nothing and not robust). */
  correct: boolean;
  /** Its float32 input gradient (rule 1) is exactly zero. */
  zeroGradient: boolean;
  /** The steps that fooled it (within epsilon for the worst-case steps; the paper's Algorithm 2 at its pixel budget). */
  fooledBy: string[];
  robust: boolean;
}

export interface GradientEvidence {
  temperature: number;
  precision: 'float32' | 'float64';
  /** Over the samples the model classifies correctly. */
  samples: number;
  zeroSamples: number;
  zeroShare: number;
  interval: Interval;
}

export interface Diagnosis {
  format: typeof DIAGNOSIS_FORMAT;
  formatVersion: typeof DIAGNOSIS_FORMAT_VERSION;
  tool: string;
  createdAt: string;
  verdict: Verdict;
  /** The rule that produced the verdict, and the evidence that triggered it. */
  rule: string;
  because: string;
  /** Rules 1-6 that found masking (the verdict names the first). */
  fired: RuleId[];
  notEvaluated: RuleId[];
  rules: RuleResult[];
  worstCase: {
    attacks: string[];
    samples: number;
    robust: number;
    robustAccuracy: number;
    interval: Interval;
    /** Samples where the paper's Algorithm 2 (float32) failed and some worst-case attack succeeded. */
    paperFailedBatterySucceeded?: number;
  };
  model: {
    file?: string;
    /** SHA-256 of the parameters. */
    fingerprint: string;
    arch: string;
    kind?: string;
    trainingTemperature?: number;
    seed?: number;
    training?: Record<string, unknown>;
    data?: Record<string, unknown>;
  };
  data: { fingerprint: string; description: string; split: string };
  backend: ReturnType<typeof describeBackend>;
  settings: {
    epsilon: number;
    /** Evaluation temperature of every cross-entropy of the battery. */
    temperature: number;
    seed: number;
    samples: number;
    indices: number[];
    curve: number[];
    surrogate: SurrogateDescription;
    /** The battery's steps that this build's registry cannot run (their rules may then be not evaluated). */
    missingAttacks: string[];
  };
  accuracy: { correct: number; samples: number };
  gradients: GradientEvidence[];
  steps: StepResult[];
  samples: SampleOutcome[];
  seconds: number;
}

export interface SurrogateDescription {
  /** 'trained': trained by diagnose; 'given': passed in (--surrogate). */
  source: 'trained' | 'given';
  file?: string;
  fingerprint: string;
  trainingTemperature?: number;
  /** Training images and epochs of a trained one. */
  trainImages?: number;
  epochs?: number;
  seed?: number;
  /** Its accuracy on the drawn samples. */
  correct: number;
}

export interface DiagnoseProgress {
  step: string;
  label: string;
  done: number;
  total: number;
}

export interface DiagnoseOptions {
  /** Radius of the L-infinity ball, in (0, 1] (default 0.3). */
  epsilon?: number;
  /** Test-set indices, or a count drawn with `seed` (default 100). */
  samples?: number | number[];
  /** Seed of the sample draw, of every attack and of the surrogate's training (default 0). */
  seed?: number;
  /** Evaluation temperature of the cross-entropy (default 1: the deployed model, as everywhere in the project). */
  temperature?: number;
  data?: MnistData;
  /** A surrogate model for rule 5 (default: one trained here, seeded, at T = 1, of the model's architecture). */
  surrogate?: Model;
  /** Names the surrogate's file in the diagnosis. */
  surrogateFile?: string;
  /** The trained surrogate: training images (default 10,000; batches of 64) and epochs (default 1). */
  surrogateImages?: number;
  surrogateEpochs?: number;
  /** Names the model's file in the diagnosis. */
  modelFile?: string;
  onProgress?: (p: DiagnoseProgress) => void;
}

export interface ResolvedDiagnoseOptions {
  epsilon: number;
  temperature: number;
  seed: number;
  surrogateImages: number;
  surrogateEpochs: number;
  curve: number[];
}

/** Checks the options (coded errors), before any work. */
export function checkDiagnoseOptions(opts: DiagnoseOptions = {}): ResolvedDiagnoseOptions {
  if (typeof opts !== 'object' || opts === null) throw typeError('options must be an object');
  const epsilon = checkNumber(opts.epsilon ?? 0.3, 'epsilon', { min: 0, max: 1, minExclusive: true });
  const temperature = checkLimit(opts.temperature ?? 1, 'temperature', 'lossTemperature');
  const seed = checkNumber(opts.seed ?? 0, 'seed', { min: 0, max: 0xffffffff, integer: true });
  const surrogateImages = checkNumber(opts.surrogateImages ?? 10000, 'surrogateImages', { min: 1, integer: true });
  const surrogateEpochs = checkNumber(opts.surrogateEpochs ?? 1, 'surrogateEpochs', { min: 1, max: 1000, integer: true });
  if (opts.samples !== undefined && typeof opts.samples !== 'number' && !Array.isArray(opts.samples))
    throw typeError('samples must be a count or an array of indices');
  if (typeof opts.samples === 'number') checkNumber(opts.samples, 'samples', { min: 1, integer: true });
  if (Array.isArray(opts.samples) && opts.samples.length === 0) throw rangeError('samples must not be empty', 'TEMPERED_INVALID_LENGTH');
  if (opts.surrogate !== undefined && !(opts.surrogate instanceof Model)) throw typeError('surrogate must be a Model');
  const curve = [...new Set([...CURVE_EPSILONS, epsilon])].sort((a, b) => a - b);
  // Every step's options, as the registry checks them, so nonsense is refused before the data is even loaded.
  for (const step of availableSteps())
    checkAttackOptions(step.algorithm, step.parameters({ epsilon, temperature, curve, rateOf: () => 0 }));
  return { epsilon, temperature, seed, surrogateImages, surrogateEpochs, curve };
}

/** The steps of BATTERY this build's registry can run. */
export function availableSteps(): BatteryStep[] {
  return BATTERY.filter((s) => attackDescriptor(s.algorithm) !== undefined);
}

// ---------------------------------------------------------------------------------------
// The rules, on numbers alone (unit-tested on hand-made ones).

/** What the rules read: the rates of the steps, the gradient evidence, and the worst case. */
export interface RuleInputs {
  /** Correctly classified samples (the attacked ones). */
  attacked: number;
  /** Rule 1: all-zero float32 gradients among them. */
  zeroGradients: number;
  steps: Pick<StepResult, 'id' | 'label' | 'roles' | 'attacked' | 'successes' | 'successRate' | 'interval' | 'byEpsilon' | 'atEpsilon'>[];
  worstCase: { samples: number; robust: number; attacks: string[] };
  epsilon: number;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const ci = (i: Interval) => `[${pct(i.low)}, ${pct(i.high)}]`;
const describe = (s: { label: string; successes: number; attacked: number; successRate: number; interval: Interval }) =>
  `${s.label} ${pct(s.successRate)} ${ci(s.interval)} (${s.successes}/${s.attacked})`;

type Rated = RuleInputs['steps'][number];

/** The step with the highest success rate among those with `role` (the first on ties). */
function strongest(steps: Rated[], role: StepRole): Rated | undefined {
  let best: Rated | undefined;
  for (const s of steps) if (s.roles.includes(role) && (!best || s.successRate > best.successRate)) best = s;
  return best;
}

/** A stronger than B: their 95% Wilson intervals do not overlap; a gap of at least minimumGap that overlaps is inconclusive. */
function compare(a: Rated, b: Rated): 'stronger' | 'inconclusive' | 'not stronger' {
  if (a.interval.low > b.interval.high) return 'stronger';
  if (a.successRate - b.successRate >= THRESHOLDS.minimumGap) return 'inconclusive';
  return 'not stronger';
}

function comparisonRule(
  id: RuleId,
  steps: Rated[],
  role: StepRole,
  against: StepRole,
  missing: string,
  sentence: (a: Rated, b: Rated) => string,
): RuleResult {
  const a = strongest(steps, role);
  const b = strongest(steps, against);
  if (!a || !b) return { id, title: RULES[id], status: 'not evaluated', evidence: missing, numbers: {} };
  const c = compare(a, b);
  const status: RuleStatus = c === 'stronger' ? 'masking' : c === 'inconclusive' ? 'inconclusive' : 'clean';
  const verdict =
    c === 'stronger'
      ? 'the intervals do not overlap'
      : c === 'inconclusive'
        ? `a gap of ${pct(a.successRate - b.successRate)} whose intervals overlap`
        : 'not stronger';
  return {
    id,
    title: RULES[id],
    status,
    evidence: `${sentence(a, b)}: ${verdict}`,
    numbers: {
      stronger: { step: a.id, successes: a.successes, attacked: a.attacked, successRate: a.successRate, interval: a.interval },
      against: { step: b.id, successes: b.successes, attacked: b.attacked, successRate: b.successRate, interval: b.interval },
      gap: a.successRate - b.successRate,
    },
  };
}

/** Rules 1-7 on the battery's numbers. */
export function evaluateRules(x: RuleInputs): RuleResult[] {
  const rules: RuleResult[] = [];
  // 1: the share of all-zero float32 gradients.
  {
    const share = x.attacked ? x.zeroGradients / x.attacked : 0;
    const interval = wilsonInterval(x.zeroGradients, x.attacked);
    const t = THRESHOLDS.zeroShare;
    const status: RuleStatus = x.attacked === 0 ? 'inconclusive' : interval.low > t ? 'masking' : share <= t ? 'clean' : 'inconclusive';
    rules.push({
      id: 1,
      title: RULES[1],
      status,
      evidence:
        x.attacked === 0
          ? 'no sample is classified correctly'
          : `${x.zeroGradients} of ${x.attacked} correctly classified samples (${pct(share)} ${ci(interval)}) have an all-zero float32 gradient; ` +
            (status === 'masking'
              ? `the interval lies above ${pct(t)}`
              : status === 'clean'
                ? `at most ${pct(t)}`
                : `above ${pct(t)}, but the interval reaches below it`),
      numbers: { zeroSamples: x.zeroGradients, samples: x.attacked, share, interval, threshold: t },
    });
  }
  const steps = x.steps.filter((s) => s.attacked > 0 || x.attacked === 0);
  // 2: single-step against iterative, the same loss.
  rules.push(
    comparisonRule(
      2,
      steps,
      'single-step',
      'iterative',
      'no single-step or no iterative attack ran',
      (a, b) => `${describe(a)} against ${describe(b)}`,
    ),
  );
  // 3: black-box against the white-box gradient attacks on the cross-entropy.
  rules.push(
    comparisonRule(
      3,
      steps,
      'black-box',
      'xent',
      "no black-box attack (Square) in this build's registry",
      (a, b) => `${describe(a)} against ${describe(b)}`,
    ),
  );
  // 4: the curve must reach 100% at epsilon = 1.
  {
    const curve = x.steps.find((s) => s.roles.includes('curve') && s.byEpsilon?.length);
    if (!curve) rules.push({ id: 4, title: RULES[4], status: 'not evaluated', evidence: 'no epsilon curve ran', numbers: {} });
    else {
      const last = curve.byEpsilon![curve.byEpsilon!.length - 1];
      const status: RuleStatus = last.attacked === 0 ? 'inconclusive' : last.successes === last.attacked ? 'clean' : 'masking';
      rules.push({
        id: 4,
        title: RULES[4],
        status,
        evidence:
          `${curve.label}: ${curve.byEpsilon!.map((p) => `${p.epsilon} ${pct(p.successRate)}`).join(', ')}; at epsilon ${last.epsilon} ` +
          (status === 'clean'
            ? `every sample is fooled (${last.successes}/${last.attacked})`
            : `${last.attacked - last.successes} of ${last.attacked} samples survive: an attack that cannot reach 100% there is failing`),
        numbers: { epsilon: last.epsilon, successes: last.successes, attacked: last.attacked, curve: curve.byEpsilon },
      });
    }
  }
  // 5: transfer from the surrogate against the white-box gradient attacks on the cross-entropy.
  rules.push(
    comparisonRule(
      5,
      steps,
      'transfer',
      'xent',
      'no transfer attack ran, or the surrogate classified no sample correctly',
      (a, b) => `${describe(a)} against ${describe(b)}`,
    ),
  );
  // 6: a loss that cannot saturate against the cross-entropy.
  rules.push(
    comparisonRule(
      6,
      steps,
      'non-saturating',
      'xent',
      'no attack on a non-saturating loss ran',
      (a, b) => `${describe(a)} against ${describe(b)}, a gap of ${pct(a.successRate - b.successRate)}`,
    ),
  );
  // 7: worst-case robust accuracy (a result, not a sign: its status is never 'masking').
  {
    const w = x.worstCase;
    const ra = w.samples ? w.robust / w.samples : 0;
    const interval = wilsonInterval(w.robust, w.samples);
    rules.push({
      id: 7,
      title: RULES[7],
      status: w.attacks.length ? 'measured' : 'not evaluated',
      evidence:
        `${w.robust} of ${w.samples} samples (${pct(ra)} ${ci(interval)}) are classified correctly and survive every one of ` +
        `${w.attacks.length} attacks at epsilon ${x.epsilon} (${w.attacks.join(', ')})`,
      numbers: { robust: w.robust, samples: w.samples, robustAccuracy: ra, interval, attacks: w.attacks },
    });
  }
  return rules;
}

/** The verdict from the rules: masking when a rule of 1-6 fired; no sign when all that were evaluated are clean; else inconclusive. */
export function decideVerdict(rules: RuleResult[]): {
  verdict: Verdict;
  rule: string;
  because: string;
  fired: RuleId[];
  notEvaluated: RuleId[];
} {
  const signs = rules.filter((r) => r.id !== 7);
  const fired = signs.filter((r) => r.status === 'masking');
  const notEvaluated = rules.filter((r) => r.status === 'not evaluated').map((r) => r.id);
  const unsure = signs.filter((r) => r.status === 'inconclusive');
  const evaluated = signs.filter((r) => r.status !== 'not evaluated');
  const missing = notEvaluated.length ? `; not evaluated: rule ${notEvaluated.join(', ')}` : '';
  if (fired.length)
    return {
      verdict: 'robustness is gradient masking',
      rule: `rule ${fired[0].id}: ${fired[0].title}`,
      because:
        fired[0].evidence +
        (fired.length > 1
          ? `; also rule ${fired
              .slice(1)
              .map((r) => r.id)
              .join(', ')}`
          : ''),
      fired: fired.map((r) => r.id),
      notEvaluated,
    };
  if (unsure.length)
    return {
      verdict: 'inconclusive',
      rule: `rule ${unsure[0].id}: ${unsure[0].title}`,
      because: unsure[0].evidence + missing,
      fired: [],
      notEvaluated,
    };
  if (evaluated.length === 0)
    return { verdict: 'inconclusive', rule: 'rules 1-6', because: `no rule could be evaluated${missing}`, fired: [], notEvaluated };
  return {
    verdict: 'no sign of masking',
    rule: `rules ${evaluated.map((r) => r.id).join(', ')}: none found a sign`,
    because: evaluated.map((r) => `${r.id}: ${r.evidence}`).join('; ') + missing,
    fired: [],
    notEvaluated,
  };
}

// ---------------------------------------------------------------------------------------
// The battery on a model.

function stepResult(
  step: BatteryStep,
  parameters: AttackParameters,
  s: AttackSummary,
  epsilon: number,
  records: AttackRecord[],
): StepResult {
  const r: StepResult = {
    id: step.id,
    label: step.label,
    algorithm: step.algorithm,
    parameters,
    roles: step.roles,
    worstCase: step.worstCase,
    attacked: s.attacked,
    successes: s.successes,
    successRate: s.successRate,
    interval: s.interval,
    allZero: s.allZeroSaliency,
    seconds: s.seconds,
  };
  if (s.byEpsilon) {
    r.byEpsilon = s.byEpsilon.map((p) => ({
      epsilon: p.epsilon,
      attacked: p.attacked,
      successes: p.successes,
      successRate: p.successRate,
      interval: p.interval,
    }));
    // The other steps are compared at epsilon: the curve's point there.
    const wins = records.filter((x) => x.attacked && x.success && (x.epsilon ?? Infinity) <= epsilon).length;
    r.atEpsilon = {
      attacked: s.attacked,
      successes: wins,
      successRate: s.attacked ? wins / s.attacked : 0,
      interval: wilsonInterval(wins, s.attacked),
    };
  }
  return r;
}

/** The surrogate's mini-batch: smaller than the paper's 128, so one pass over a few thousand images learns (about 90%). */
export const SURROGATE_BATCH = 64;

/** Trains the surrogate of rule 5: the model's architecture, at T = 1, on the first `images` training images, seeded. */
export async function trainSurrogate(model: Model, data: MnistData, o: { seed: number; images: number; epochs: number }): Promise<Model> {
  const surrogate = Model.create({ seed: o.seed, backend: model.backend, arch: model.arch });
  await train(surrogate, data, {
    epochs: o.epochs,
    trainLimit: Math.min(o.images, data.train.count),
    batchSize: SURROGATE_BATCH,
    temperature: 1,
    seed: o.seed,
    validate: false,
  });
  return surrogate;
}

/**
 * Runs the battery on `model` and applies the rules: a verdict with the rule that produced
 * it and the evidence. Nonsense options are refused with coded errors before any work.
 */
export async function diagnose(model: Model, options: DiagnoseOptions = {}): Promise<Diagnosis> {
  if (!(model instanceof Model)) throw typeError('model must be a Model');
  const o = checkDiagnoseOptions(options);
  const started = Date.now();
  const data = options.data ?? (await loadMnist());
  const split = data.test;
  checkSplitFits(split, model);
  if (options.surrogate) checkSplitFits(split, options.surrogate);
  let indices: number[];
  if (Array.isArray(options.samples)) {
    indices = options.samples.map((i, k) => checkNumber(i, `samples[${k}]`, { min: 0, max: split.count - 1, integer: true }));
    if (new Set(indices).size !== indices.length) throw rangeError('samples holds a repeated index');
  } else {
    const n = checkNumber(options.samples ?? 100, 'samples', { min: 1, max: split.count, integer: true });
    indices = sampleWithoutReplacement(split.count, n, o.seed, 7); // runAttack's draw: the same samples for the same seed
  }
  const progress = options.onProgress ?? (() => undefined);
  const images = gatherImages(split, indices);
  const labels = Int32Array.from(indices, (i) => split.labels[i]);
  const predicted = await model.classify(images);
  const correct = indices.map((_, k) => predicted[k] === labels[k]);
  const correctCount = correct.filter(Boolean).length;

  // Rule 1 (and, for the record, float64 and the training temperature): exactly-zero input gradients of the correctly classified samples.
  const gradients: GradientEvidence[] = [];
  const zeroOf = new Map<string, boolean[]>();
  const kept = indices.flatMap((_, k) => (correct[k] ? [k] : []));
  const temps = [o.temperature];
  const tt = model.metadata.trainingTemperature;
  if (typeof tt === 'number' && tt !== o.temperature) temps.push(tt);
  if (kept.length) {
    const size = model.inputSize;
    const keptImages = new Float32Array(kept.length * size);
    kept.forEach((k, j) => keptImages.set(images.subarray(k * size, (k + 1) * size), j * size));
    const keptLabels = Int32Array.from(kept, (k) => labels[k]);
    for (const temperature of temps)
      for (const precision of ['float32', 'float64'] as const) {
        progress({ step: 'gradients', label: `input gradients at T = ${temperature}, ${precision}`, done: 0, total: 1 });
        const g = await model.nativeModel.inputGradient(keptImages, keptLabels, { loss: 'xent', precision, temperature });
        const zero = kept.map((_, j) => {
          for (let p = 0; p < size; p++) if (g.gradient[j * size + p] !== 0) return false;
          return true;
        });
        zeroOf.set(`${temperature}|${precision}`, zero);
        const z = zero.filter(Boolean).length;
        gradients.push({
          temperature,
          precision,
          samples: kept.length,
          zeroSamples: z,
          zeroShare: z / kept.length,
          interval: wilsonInterval(z, kept.length),
        });
      }
  } else {
    for (const temperature of temps)
      for (const precision of ['float32', 'float64'] as const)
        gradients.push({ temperature, precision, samples: 0, zeroSamples: 0, zeroShare: 0, interval: wilsonInterval(0, 0) });
  }
  const zeroRule = zeroOf.get(`${o.temperature}|float32`) ?? [];
  const zeroByIndex = new Map(kept.map((k, j) => [indices[k], zeroRule[j]]));

  // The surrogate of rule 5.
  let surrogate = options.surrogate;
  let surrogateDescription: Omit<SurrogateDescription, 'correct' | 'fingerprint'>;
  if (surrogate) surrogateDescription = { source: 'given', ...(options.surrogateFile ? { file: options.surrogateFile } : {}) };
  else {
    progress({ step: 'surrogate', label: 'training the surrogate', done: 0, total: 1 });
    surrogate = await trainSurrogate(model, data, { seed: o.seed, images: o.surrogateImages, epochs: o.surrogateEpochs });
    surrogateDescription = {
      source: 'trained',
      trainImages: Math.min(o.surrogateImages, data.train.count),
      epochs: o.surrogateEpochs,
      seed: o.seed,
    };
  }
  const surrogatePredicted = await surrogate.classify(images);
  const surrogateInfo: SurrogateDescription = {
    ...surrogateDescription,
    fingerprint: parametersHash(surrogate),
    ...(typeof surrogate.metadata.trainingTemperature === 'number' ? { trainingTemperature: surrogate.metadata.trainingTemperature } : {}),
    correct: indices.filter((_, k) => surrogatePredicted[k] === labels[k]).length,
  };

  // The battery.
  const steps: StepResult[] = [];
  const fooled = new Map<number, string[]>(indices.map((i) => [i, []]));
  let paperFailed: Set<number> | undefined;
  const context: StepContext = {
    epsilon: o.epsilon,
    temperature: o.temperature,
    curve: o.curve,
    rateOf: (id) => steps.find((s) => s.id === id)?.successRate,
  };
  const available = availableSteps();
  for (const step of available) {
    const parameters = step.parameters(context);
    const onProgress = (done: number, total: number) => progress({ step: step.id, label: step.label, done, total });
    const common: AttackOptions = { ...parameters, data, samples: indices, seed: o.seed, onProgress };
    if (step.roles.includes('transfer')) {
      const crafted = await runAttack(surrogate, step.algorithm, common);
      const t = await classifyTransfer(crafted, model, split);
      const s = t.summary;
      steps.push({
        id: step.id,
        label: step.label,
        algorithm: step.algorithm,
        parameters,
        roles: step.roles,
        worstCase: step.worstCase,
        attacked: s.counted,
        successes: s.successes,
        successRate: s.successRate,
        interval: s.interval,
        seconds: s.seconds,
      });
      t.records.forEach((r: TransferRecord) => r.success && fooled.get(r.index)!.push(step.id));
      continue;
    }
    const r = await runAttack(model, step.algorithm, common);
    steps.push(stepResult(step, parameters, r.summary, o.epsilon, r.records));
    if (step.roles.includes('paper')) paperFailed = new Set(r.records.filter((x) => x.attacked && !x.success).map((x) => x.index));
    for (const rec of r.records)
      if (rec.attacked && rec.success && (rec.epsilon === undefined || rec.epsilon <= o.epsilon)) fooled.get(rec.index)!.push(step.id);
  }
  if (surrogate !== options.surrogate) surrogate.dispose();

  // Rule 7 and the samples.
  const worstAttacks = steps.filter((s) => s.worstCase).map((s) => s.id);
  const samples: SampleOutcome[] = indices.map((index, k) => {
    const by = fooled.get(index)!;
    return {
      index,
      label: labels[k],
      correct: correct[k],
      zeroGradient: zeroByIndex.get(index) ?? false,
      fooledBy: by,
      robust: correct[k] && worstAttacks.length > 0 && !by.some((id) => worstAttacks.includes(id)),
    };
  });
  const robust = samples.filter((s) => s.robust).length;
  const rated = steps.map((s) => (s.atEpsilon ? { ...s, ...s.atEpsilon } : s));
  const rules = evaluateRules({
    attacked: correctCount,
    zeroGradients: zeroRule.filter(Boolean).length,
    steps: rated,
    worstCase: { samples: indices.length, robust, attacks: worstAttacks },
    epsilon: o.epsilon,
  });
  const decided = decideVerdict(rules);
  const meta = model.metadata;
  return {
    format: DIAGNOSIS_FORMAT,
    formatVersion: DIAGNOSIS_FORMAT_VERSION,
    tool: `tempered ${packageVersion()}`,
    createdAt: new Date().toISOString(),
    ...decided,
    rules,
    worstCase: {
      attacks: worstAttacks,
      samples: indices.length,
      robust,
      robustAccuracy: robust / indices.length,
      interval: wilsonInterval(robust, indices.length),
      ...(paperFailed
        ? { paperFailedBatterySucceeded: samples.filter((s) => paperFailed!.has(s.index) && s.correct && !s.robust).length }
        : {}),
    },
    model: {
      ...(options.modelFile ? { file: options.modelFile } : {}),
      fingerprint: parametersHash(model),
      arch: archName(model.arch) ?? 'custom',
      ...(meta.kind ? { kind: meta.kind } : {}),
      ...(typeof meta.trainingTemperature === 'number' ? { trainingTemperature: meta.trainingTemperature } : {}),
      ...(typeof meta.seed === 'number' ? { seed: meta.seed } : {}),
      ...(meta.training ? { training: meta.training } : {}),
      ...(meta.data ? { data: meta.data } : {}),
    },
    data: { fingerprint: data.fingerprint, description: data.description, split: data.split },
    backend: describeBackend(model.backend),
    settings: {
      epsilon: o.epsilon,
      temperature: o.temperature,
      seed: o.seed,
      samples: indices.length,
      indices,
      curve: o.curve,
      surrogate: surrogateInfo,
      missingAttacks: BATTERY.filter((s) => !available.includes(s)).map((s) => s.id),
    },
    accuracy: { correct: correctCount, samples: indices.length },
    gradients,
    steps,
    samples,
    seconds: (Date.now() - started) / 1000,
  };
}
