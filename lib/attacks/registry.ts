// The attacks, one descriptor each: name, options with their limits and defaults, the
// native entry that runs it on a batch, and what the tests compare it with. runAttack's
// validation, the CLI's choices and help, and docs/algorithms.md follow this list; nothing
// else switches on attack names.
import type { Model as NativeModel, NativeAttackResult } from '../../binding';

export const ATTACK_ALGORITHMS = [
  'alg1',
  'alg2',
  'alg3',
  'alg4',
  'jsma',
  'jsma-z',
  'pgd',
  'fgsm',
  'apgd-ce',
  'apgd-dlr',
  'apgd-t',
  // Square and Carlini-Wagner L2 (native/core/square_attack.h, native/core/cw_l2.h).
  'square',
  'cw-l2',
] as const;
export type AttackAlgorithm = (typeof ATTACK_ALGORITHMS)[number];
/** The paper's own attacks (Algorithms 1-4), the ones `reproduce` runs under its three loss settings. */
export const PAPER_ALGORITHMS = ['alg1', 'alg2', 'alg3', 'alg4'] as const satisfies readonly AttackAlgorithm[];
export const ATTACK_LOSSES = ['xent', 'margin'] as const;
export type AttackLoss = (typeof ATTACK_LOSSES)[number];
export const LOSS_PRECISIONS = ['float32', 'float64'] as const;
export type LossPrecision = (typeof LOSS_PRECISIONS)[number];
/** A class of MNIST, 0-9 (other models: 0 to classes - 1, checked against the model). */
export type ClassIndex = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9;
/** JSMA's target: one seeded random class other than the label, a fixed class, or each of the others. */
export type JsmaTarget = 'random' | 'all' | ClassIndex | number;

/** The attack options that depend on the attack (the sample selection is common to all). */
export interface AttackParameters {
  /**
   * Pixel budget. Algorithms 1-4: 1..positions of the model's input (784 for MNIST; default 100, as the paper);
   * JSMA: 2..input features (default 2 x floor(features x 0.145 / 2): 112 for MNIST).
   */
  budget?: number;
  /** Evaluation temperature of the cross-entropy (Algorithms 1-4, PGD, FGSM) or of JSMA's softmax (default 1). */
  temperature?: number;
  /** The loss followed: 'xent' (the paper, Madry, Goodfellow) or 'margin' (max_{j!=y} z_j - z_y, Carlini & Wagner). Default 'xent'. */
  loss?: AttackLoss;
  /** Precision of the loss head: 'float32' (the paper) or 'float64' (the log1p form). Default 'float32'. */
  precision?: LossPrecision;
  /** PGD, FGSM and APGD: radius of the L-infinity ball, in (0, 1] (default 0.3). */
  epsilon?: number;
  /**
   * PGD, FGSM and APGD: several radii in (0, 1], attacked in one call (instead of `epsilon`): the summary's
   * `byEpsilon` holds success and robust accuracy at each, the records are those of the largest.
   */
  epsilons?: number[];
  /** PGD: steps, at least 1 (default 40); APGD: steps per run, 1..100000 (default 100). */
  steps?: number;
  /** PGD: size of each sign step, > 0 (default 0.01). */
  stepSize?: number;
  /** PGD: start from a seeded uniform draw in the ball (default true). */
  randomStart?: boolean;
  /** JSMA: 'random' (default), a class (0-9 for MNIST), or 'all'. */
  target?: JsmaTarget;
  /** APGD: runs from fresh random starts (apgd-t: per target), each while every earlier one failed, 1..1000 (default 1). */
  restarts?: number;
  /** apgd-t: targets, the top classes other than the label by clean logit, 1..99 (default 9; at most classes - 1 are used). */
  targetClasses?: number;
  /** Square: forward passes of perturbed images per sample, 1..10^6 (default 5,000; the stripes included). */
  queries?: number;
  /** Square: the share of the image's pixels the first windows cover, in (0, 1] (default 0.8, the authors' MNIST value). */
  pInit?: number;
  /** Carlini-Wagner L2: constants c tried by the binary search, 1..100 (default 9). */
  searchSteps?: number;
  /** Carlini-Wagner L2: Adam's learning rate, > 0 (default 0.01). */
  learningRate?: number;
  /** Carlini-Wagner L2: the first constant c, > 0 (default 1e-3). */
  initialConst?: number;
  /** Carlini-Wagner L2: kappa, the margin the runner-up must lead by, >= 0 (default 0). */
  confidence?: number;
}

export type AttackParameterName = keyof AttackParameters;

/**
 * Every attack option with its one-line help (the CLI flags, validation, summaries and study
 * columns iterate over this table; `satisfies` keeps it and AttackParameters in step).
 */
export const ATTACK_PARAMETERS = {
  budget: 'most pixels changed per sample',
  temperature: 'evaluation temperature of the cross-entropy, or of the softmax of jsma',
  loss: "loss followed: 'xent' or 'margin' (max_{j!=y} z_j - z_y)",
  precision: "precision of the loss head: 'float32' or 'float64' (the log1p form)",
  epsilon: 'radius of the L-infinity ball, in (0, 1]',
  epsilons: 'several radii, comma-separated, attacked in one call: success and robust accuracy per radius',
  steps: 'gradient steps',
  stepSize: 'size of each sign step',
  randomStart: 'random start, a seeded uniform draw in the ball; the flag turns it off: start from the image itself',
  target: "'random' (one seeded class other than the label), a class (0-9 for MNIST), or 'all'",
  restarts: 'runs from fresh random starts, each while every earlier one failed (apgd-t: per target)',
  targetClasses: 'targets of apgd-t: the top classes other than the label by clean logit (at most classes - 1 used)',
  queries: 'forward passes of perturbed images per sample, the stripes included',
  pInit: 'share of the pixels the first windows cover, in (0, 1]',
  searchSteps: 'constants c tried by the binary search',
  learningRate: "Adam's learning rate",
  initialConst: 'the first constant c',
  confidence: "kappa: how far the best other logit must lead the label's for a success",
} as const satisfies Record<AttackParameterName, string>;
/** The option names, in the order of ATTACK_PARAMETERS. */
export const ATTACK_PARAMETER_NAMES = Object.keys(ATTACK_PARAMETERS) as AttackParameterName[];

/** How one option is checked, and its default. */
export type OptionRule =
  | { kind: 'integer'; min: number; max: number; default: number }
  | { kind: 'number'; min: number; max?: number; minExclusive?: boolean; default: number }
  | { kind: 'choice'; values: readonly string[]; default: string }
  | { kind: 'boolean'; default: boolean }
  | { kind: 'target'; default: JsmaTarget }
  | { kind: 'numbers'; min: number; max: number; minExclusive: boolean };

/** Every option resolved to a value: those an attack does not read stay undefined. */
export type ResolvedParameters = { [K in AttackParameterName]-?: AttackParameters[K] | undefined };

/** One batch for a native call: images [n x 784], labels, and per row its JSMA target and its key (index in the split). */
export interface AttackBatch {
  images: Float32Array;
  labels: Int32Array;
  targets: Int32Array;
  keys: Uint32Array;
}

export type NativeBatchResult = NativeAttackResult & { linf?: Float32Array; l2?: Float64Array };

/** The sizes of a model that bound an attack's options. */
export interface ModelSizes {
  inputSize: number;
  positions: number;
  classes: number;
}

export interface AttackDescriptor {
  name: AttackAlgorithm;
  /** One line for help texts and docs. */
  title: string;
  /** Where the attack comes from. */
  reference: string;
  /** 'pixels' (the budget counts changed pixels), 'steps' (gradient steps) or 'queries' (forward passes). */
  budgetUnit: BudgetUnit;
  /** The options it reads; any other attack option is refused. */
  options: OptionRules;
  /**
   * Its cost grows with the budget times a full sweep (Algorithm 4: up to 100 x 1,568 forward
   * passes per sample), so experiments attack it on a subset of their samples.
   */
  quadraticCost: boolean;
  /** Default samples per native call (progress granularity). */
  chunk: number;
  /** The budget the summary reports success against (pixels or steps). */
  budgetOf(o: ResolvedParameters): number;
  /**
   * Pixel attacks: the largest budget a model of these sizes allows, and the default that
   * depends on them (JSMA's gamma share of the features); runAttack applies both.
   */
  sized?: { maxBudget(s: ModelSizes): number; defaultBudget?(s: ModelSizes): number };
  /** Whether it can return each sample's first saliency map (runAttack's keepSaliency). */
  saliencyMaps: boolean;
  /** Runs the attack on one batch. */
  run(model: NativeModel, batch: AttackBatch, o: ResolvedParameters, seed: number, keepSaliency: boolean): Promise<NativeBatchResult>;
  /** What test/ compares it with, sample by sample. */
  testedAgainst: string;
}

/** What an attack's budget counts. */
export type BudgetUnit = 'pixels' | 'steps' | 'queries';

/** The options an attack reads, each with its rule. */
export type OptionRules = Partial<Record<AttackParameterName, OptionRule>>;

/** JSMA's default budget for an input of `features` values: gamma = 14.5% of them, in whole pairs (112 for MNIST). */
export function jsmaBudget(features: number): number {
  return 2 * Math.floor((features * 0.145) / 2);
}

// Limits as the engine's table (native/napi/limits.h: lossTemperature, epsilon, stepSize), so both refuse alike.
const TEMPERATURE: OptionRule = { kind: 'number', min: 0, max: 1e30, minExclusive: true, default: 1 };
const LOSS: OptionRule = { kind: 'choice', values: ATTACK_LOSSES, default: 'xent' };
const PRECISION: OptionRule = { kind: 'choice', values: LOSS_PRECISIONS, default: 'float32' };
const EPSILON: OptionRule = { kind: 'number', min: 0, max: 1, minExclusive: true, default: 0.3 };
const EPSILONS: OptionRule = { kind: 'numbers', min: 0, max: 1, minExclusive: true };
// Budgets up to the largest input the engine takes (64 x 64 positions, 3 channels); runAttack
// then holds them to the model's own size.
const MAX_POSITIONS = 64 * 64;
const SALIENCY_OPTIONS = {
  budget: { kind: 'integer', min: 1, max: MAX_POSITIONS, default: 100 },
  temperature: TEMPERATURE,
  loss: LOSS,
  precision: PRECISION,
} as const satisfies OptionRules;
const JSMA_OPTIONS = {
  budget: { kind: 'integer', min: 2, max: 3 * MAX_POSITIONS, default: jsmaBudget(784) },
  temperature: TEMPERATURE,
  target: { kind: 'target', default: 'random' },
} as const satisfies OptionRules;
const PGD_OPTIONS = {
  temperature: TEMPERATURE,
  loss: LOSS,
  precision: PRECISION,
  epsilon: EPSILON,
  epsilons: EPSILONS,
  steps: { kind: 'integer', min: 1, max: 100000, default: 40 },
  stepSize: { kind: 'number', min: 0, max: 1, minExclusive: true, default: 0.01 },
  randomStart: { kind: 'boolean', default: true },
} as const satisfies OptionRules;
const FGSM_OPTIONS = {
  temperature: TEMPERATURE,
  loss: LOSS,
  precision: PRECISION,
  epsilon: EPSILON,
  epsilons: EPSILONS,
} as const satisfies OptionRules;

// APGD (Croce & Hein 2020): apgd-ce follows the cross-entropy at the temperature and precision
// asked for; the DLR losses are scale-invariant, so they take neither.
const APGD_RUNS = {
  epsilon: EPSILON,
  epsilons: EPSILONS,
  steps: { kind: 'integer', min: 1, max: 100000, default: 100 },
  restarts: { kind: 'integer', min: 1, max: 1000, default: 1 },
} as const satisfies OptionRules;
const APGD_CE_OPTIONS = { temperature: TEMPERATURE, precision: PRECISION, ...APGD_RUNS } as const satisfies OptionRules;
const APGD_DLR_OPTIONS = APGD_RUNS;
const APGD_T_OPTIONS = { ...APGD_RUNS, targetClasses: { kind: 'integer', min: 1, max: 99, default: 9 } } as const satisfies OptionRules;
const SQUARE_OPTIONS = {
  epsilon: EPSILON,
  queries: { kind: 'integer', min: 1, max: 1000000, default: 5000 },
  pInit: { kind: 'number', min: 0, max: 1, minExclusive: true, default: 0.8 },
} as const satisfies OptionRules;
const CW_L2_OPTIONS = {
  steps: { kind: 'integer', min: 1, max: 100000, default: 1000 },
  searchSteps: { kind: 'integer', min: 1, max: 100, default: 9 },
  learningRate: { kind: 'number', min: 0, max: 1e6, minExclusive: true, default: 0.01 },
  initialConst: { kind: 'number', min: 0, max: 1e10, minExclusive: true, default: 1e-3 },
  confidence: { kind: 'number', min: 0, max: 1e6, default: 0 },
} as const satisfies OptionRules;

/**
 * The options of each attack, by name: the descriptors read them from here, and the types
 * (AttackParametersOf) are derived from it, so the compiler refuses what checkAttackOptions refuses.
 */
export const ATTACK_OPTION_RULES = {
  alg1: SALIENCY_OPTIONS,
  alg2: SALIENCY_OPTIONS,
  alg3: SALIENCY_OPTIONS,
  alg4: SALIENCY_OPTIONS,
  jsma: JSMA_OPTIONS,
  'jsma-z': JSMA_OPTIONS,
  pgd: PGD_OPTIONS,
  fgsm: FGSM_OPTIONS,
  'apgd-ce': APGD_CE_OPTIONS,
  'apgd-dlr': APGD_DLR_OPTIONS,
  'apgd-t': APGD_T_OPTIONS,
  square: SQUARE_OPTIONS,
  'cw-l2': CW_L2_OPTIONS,
} as const satisfies Record<AttackAlgorithm, OptionRules>;

type TakenParameters<A extends AttackAlgorithm> = Pick<AttackParameters, keyof (typeof ATTACK_OPTION_RULES)[A] & AttackParameterName>;
/** `epsilon` or `epsilons`, not both (checkAttackOptions refuses both at once). */
type OneRadius<P> = 'epsilons' extends keyof P
  ? Omit<P, 'epsilon' | 'epsilons'> & ({ epsilon?: number; epsilons?: undefined } | { epsilon?: undefined; epsilons: number[] })
  : P;
/** The options attack A takes, and no other (an object literal with another key does not compile). */
export type AttackParametersOf<A extends AttackAlgorithm> = A extends AttackAlgorithm ? OneRadius<TakenParameters<A>> : never;

function saliency(n: 1 | 2 | 3 | 4, title: string): AttackDescriptor {
  return {
    name: `alg${n}`,
    title,
    reference: 'Song (2017), Algorithm ' + n,
    budgetUnit: 'pixels',
    options: ATTACK_OPTION_RULES[`alg${n}`],
    quadraticCost: n === 4,
    chunk: n === 4 ? 2 : 16,
    budgetOf: (o) => o.budget!,
    sized: { maxBudget: (s) => s.positions },
    saliencyMaps: true, // the attacks of PAPER_ALGORITHMS, which AttackOptionsOf lets keep them
    run: (model, b, o, _seed, keepSaliency) =>
      model.attack(b.images, b.labels, {
        algorithm: n,
        budget: o.budget!,
        loss: o.loss,
        precision: o.precision,
        temperature: o.temperature,
        wantSaliency: keepSaliency,
      }),
    testedAgainst: 'bruteForceAttack (test/reference/attacks.ts): full forward passes and plain TypeScript candidate order',
  };
}

function jsma(name: 'jsma' | 'jsma-z', variant: 'softmax' | 'logits', title: string, reference: string): AttackDescriptor {
  return {
    name,
    title,
    reference,
    budgetUnit: 'pixels',
    options: ATTACK_OPTION_RULES[name],
    quadraticCost: false,
    chunk: 16,
    budgetOf: (o) => 2 * Math.floor(o.budget! / 2),
    sized: { maxBudget: (s) => s.inputSize, defaultBudget: (s) => jsmaBudget(s.inputSize) },
    saliencyMaps: false,
    run: (model, b, o) => model.jsma(b.images, b.labels, b.targets, { variant, temperature: o.temperature, budget: o.budget! }),
    testedAgainst: 'referenceJsma (test/reference/attacks.ts): float64 Jacobian of all ten outputs, brute-force pair search',
  };
}

const APGD_REFERENCE =
  'Croce & Hein (2020), Reliable evaluation of adversarial robustness with an ensemble of diverse parameter-free attacks';

function apgd(name: 'apgd-ce' | 'apgd-dlr' | 'apgd-t', loss: 'ce' | 'dlr' | 'dlr-targeted', title: string): AttackDescriptor {
  return {
    name,
    title,
    reference: APGD_REFERENCE,
    budgetUnit: 'steps',
    options: ATTACK_OPTION_RULES[name],
    quadraticCost: false,
    chunk: 64,
    // Steps over every run: restarts x steps (apgd-t: x targets, at most targetClasses).
    budgetOf: (o) => o.steps! * o.restarts! * (loss === 'dlr-targeted' ? o.targetClasses! : 1),
    saliencyMaps: false,
    run: (model, b, o, seed) =>
      model.apgd(b.images, b.labels, b.keys, {
        loss,
        epsilon: o.epsilon!,
        steps: o.steps!,
        restarts: o.restarts!,
        seed,
        ...(loss === 'ce' ? { temperature: o.temperature, precision: o.precision } : {}),
        ...(loss === 'dlr-targeted' ? { targetClasses: Math.min(o.targetClasses!, model.plan().classes - 1) } : {}),
      }),
    testedAgainst: 'referenceApgd (test/reference/apgd.ts): float64 network from the spec, the steps in emulated float32',
  };
}

/** Every attack, in the order of ATTACK_ALGORITHMS. */
export const ATTACKS: readonly AttackDescriptor[] = [
  saliency(1, 'set the pixel with the largest positive dL/dx to 1, gradient computed once'),
  saliency(2, 'set the pixel whose change to 1 or 0 moves the loss most, saliency computed once'),
  saliency(3, 'set the pixel with the largest |dL/dx| to 1 (positive) or 0 (negative), gradient computed once'),
  saliency(4, 'Algorithm 2 with the saliency recomputed after every pixel'),
  jsma(
    'jsma',
    'softmax',
    'targeted Jacobian saliency map attack on the softmax at the evaluation temperature, pixel pairs set to 1',
    'Papernot, McDaniel, Jha, Fredrikson, Celik, Swami (2016), The Limitations of Deep Learning in Adversarial Settings',
  ),
  jsma(
    'jsma-z',
    'logits',
    'the same on the logits',
    'Carlini & Wagner (2016), Defensive Distillation is Not Robust to Adversarial Examples',
  ),
  {
    name: 'pgd',
    title: 'L-infinity projected gradient descent from a seeded random start',
    reference: 'Madry, Makelov, Schmidt, Tsipras, Vladu (2018), Towards Deep Learning Models Resistant to Adversarial Attacks',
    budgetUnit: 'steps',
    options: ATTACK_OPTION_RULES.pgd,
    quadraticCost: false,
    chunk: 64,
    budgetOf: (o) => o.steps!,
    saliencyMaps: false,
    run: (model, b, o, seed) =>
      model.pgd(b.images, b.labels, b.keys, {
        epsilon: o.epsilon!,
        steps: o.steps!,
        stepSize: o.stepSize!,
        randomStart: o.randomStart!,
        seed,
        loss: o.loss,
        precision: o.precision,
        temperature: o.temperature,
      }),
    testedAgainst: 'referencePgdStep (test/reference/attacks.ts): float64 gradient, the step in emulated float32',
  },
  {
    name: 'fgsm',
    title: 'one signed gradient step of size epsilon from the image',
    reference: 'Goodfellow, Shlens, Szegedy (2015), Explaining and Harnessing Adversarial Examples',
    budgetUnit: 'steps',
    options: ATTACK_OPTION_RULES.fgsm,
    quadraticCost: false,
    chunk: 64,
    budgetOf: () => 1,
    saliencyMaps: false,
    run: (model, b, o, seed) =>
      model.pgd(b.images, b.labels, b.keys, {
        epsilon: o.epsilon!,
        steps: 1,
        stepSize: o.epsilon!,
        randomStart: false,
        seed,
        loss: o.loss,
        precision: o.precision,
        temperature: o.temperature,
      }),
    testedAgainst: 'referencePgdStep (test/reference/attacks.ts): float64 gradient sign, the step in emulated float32',
  },
  apgd('apgd-ce', 'ce', 'APGD on the cross-entropy at the evaluation temperature: step-size schedule with checkpoints, momentum 0.75'),
  apgd('apgd-dlr', 'dlr', 'APGD on the difference-of-logits-ratio loss (scale-invariant)'),
  apgd('apgd-t', 'dlr-targeted', 'APGD on the targeted DLR loss, one run per target over the top classes by clean logit'),
  {
    name: 'square',
    title: 'L-infinity random search on the margin with square windows of +-epsilon, forward passes only',
    reference:
      'Andriushchenko, Croce, Flammarion, Hein (2020), Square Attack: a query-efficient black-box adversarial attack via random search',
    budgetUnit: 'queries',
    options: ATTACK_OPTION_RULES.square,
    quadraticCost: false,
    chunk: 64,
    budgetOf: (o) => o.queries!,
    saliencyMaps: false,
    run: (model, b, o, seed) =>
      model.square(b.images, b.labels, b.keys, { epsilon: o.epsilon!, queries: o.queries!, pInit: o.pInit!, seed }),
    testedAgainst: 'referenceSquare (test/reference/square.ts): the same draws, float64 network, decision by decision',
  },
  {
    name: 'cw-l2',
    title: 'smallest L2 perturbation by Adam on tanh-space with a binary search over the constant c',
    reference: 'Carlini & Wagner (2017), Towards Evaluating the Robustness of Neural Networks',
    budgetUnit: 'steps',
    options: ATTACK_OPTION_RULES['cw-l2'],
    quadraticCost: false,
    chunk: 64,
    budgetOf: (o) => o.steps! * o.searchSteps!,
    saliencyMaps: false,
    run: (model, b, o) =>
      model.cwL2(b.images, b.labels, {
        steps: o.steps!,
        searchSteps: o.searchSteps!,
        learningRate: o.learningRate!,
        initialConst: o.initialConst!,
        confidence: o.confidence!,
      }),
    testedAgainst: 'referenceCwL2 (test/reference/cw-l2.ts): float64 network, gradient, Adam and binary search',
  },
];

/** The descriptor of `name` (undefined for an unknown name). */
export function attackDescriptor(name: string): AttackDescriptor | undefined {
  return ATTACKS.find((a) => a.name === name);
}
