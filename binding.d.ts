// The raw native module (build/Release/tempered.node), declared exactly: test/binding.test.ts
// fails when the loaded module and this file disagree in either direction. Only lib/native.ts
// loads the module; everything else uses lib/.
//
// Errors carry a `code` (TEMPERED_*). Methods that return a Promise never throw: a refused
// argument, a busy or disposed model reject the promise; a failure in the work rejects it
// with the caller's stack. The others throw. One operation runs on a model at a time: a
// second (also one started from a getter of the first's options) is TEMPERED_BUSY, and so
// is dispose() while one runs.

/** Names of the compute backends. */
export type BackendName = 'cpu' | 'cuda';

/** One entry of backends(). */
export interface NativeBackendInfo {
  name: BackendName;
  available: boolean;
  /** Why the backend is unavailable (only when available is false). */
  reason?: string;
  /** What it runs on (only when available is true). */
  device?: string;
  /** cuda only: the cuDNN / cuBLAS files the plugin loads (or would load), or where it looked. */
  libraries?: string;
}

export interface NativeBuildInfo {
  version: string;
  /** Whether the CUDA plugin was built alongside this addon. */
  cudaPlugin: boolean;
  /** The C++ compiler's version string. */
  compiler: string;
}

/** One parameter tensor in the flat parameter array, in PyTorch's layout. */
export interface NativeParameterInfo {
  name: string;
  shape: number[];
  offset: number;
  size: number;
}

/** One layer of an architecture spec (native/include/tempered/arch.h; lib/arch.ts documents it). */
export type NativeLayerSpec =
  | { type: 'conv'; filters: number; kernel?: number; padding?: 'valid' | 'same' }
  | { type: 'relu' }
  | { type: 'maxpool' }
  | { type: 'dropout'; rate: number }
  | { type: 'flatten' }
  | { type: 'dense'; units: number };

/** A sequential network: its input shape, then its layers (the last dense layer gives the classes). */
export interface NativeArchSpec {
  input: { channels: number; height: number; width: number };
  layers: NativeLayerSpec[];
}

/** One operation of the run-time network ('same' convolutions get a 'pad' step; a ReLU after a conv or dense is fused). */
export interface NativeArchStep {
  kind: 'pad' | 'conv' | 'relu' | 'maxpool' | 'dropout' | 'flatten' | 'dense';
  /** Trace name: conv1, pool1, flat, fc1, ..., logits. */
  name: string;
  /** Index of the spec layer it comes from. */
  layer: number;
  relu: boolean;
  /** [height, width, channels] (a flat vector: [1, 1, features]). */
  outputShape: [number, number, number];
}

/** The checked plan of a spec. */
export interface NativeArchPlan {
  /** [height, width, channels]. */
  inputShape: [number, number, number];
  classes: number;
  totalParameters: number;
  parameters: NativeParameterInfo[];
  steps: NativeArchStep[];
}

/** Training hyper-parameters; every field optional (defaults: the paper's). */
export interface NativeTrainConfig {
  learningRate?: number;
  momentum?: number;
  temperature?: number;
  /** Multiplies the cross-entropy's gradient only (e.g. T or T^2); the reported loss is unscaled. */
  lossScale?: number;
  /** Coefficient of the L2 penalty on the last dense layer's weight (sum of squares; fc3.weight in the paper's net). */
  l2?: number;
  /** Every dropout layer's rate; absent: each layer's rate in the architecture spec. */
  dropoutRate?: number;
  dropoutSeed?: number;
  /** Train on the dataset's soft targets instead of its labels. */
  softTargets?: boolean;
  /**
   * 'fast' (trainSteps' default, and what predictions, attacks and sweeps always use): the
   * convolutions may use the backend's faster algorithm, whose float32 rounding differs from the
   * direct kernel's (the CPU's Winograd F(2x2,3x3) where it pays); 'direct' (trace's default): the
   * direct kernel, the reference.
   * TEMPERED_CONV=direct in the environment forces 'direct' everywhere.
   */
  convolution?: 'fast' | 'direct';
}

export interface NativeTrainResult {
  /** Per batch: the sum over its samples of the cross-entropy at the training temperature. */
  lossSum: Float64Array;
  /** Per batch: samples whose argmax logit equals the label. */
  correct: Int32Array;
  /** Per batch: its number of samples. */
  samples: Int32Array;
}

export interface NativeEvaluation {
  lossSum: number;
  correct: number;
  count: number;
  logits?: Float32Array;
}

/** The loss an attack follows (native/include/tempered/attack_loss.h). */
export interface NativeLossSpec {
  /** 'xent': cross-entropy at `temperature`; 'margin': max_{j != y} z_j - z_y. Default 'xent'. */
  loss?: 'xent' | 'margin';
  /** 'float32': the usual float32 loss; 'float64': the log1p form in float64. Default 'float32'. */
  precision?: 'float32' | 'float64';
  /** Evaluation temperature of the cross-entropy (default 1). */
  temperature?: number;
}

export interface NativeInputGradient {
  /** dL/dx per image [n * 784]. */
  gradient: Float64Array;
  /** L per image [n]. */
  loss: Float64Array;
  logits: Float32Array;
}

export interface NativeSweep {
  /** Per image 2 x positions losses (1,568 for MNIST): position p set to 1 at [p], set to 0 at [positions + p]; NaN where skipped. */
  losses: Float64Array;
  /** The unperturbed image's loss [n]. */
  base: Float64Array;
}

export interface NativeAttackConfig extends NativeLossSpec {
  algorithm: 1 | 2 | 3 | 4;
  /** Pixel budget, 1..784. */
  budget: number;
  /** Return each sample's first saliency map. */
  wantSaliency?: boolean;
}

/** Per-sample outcomes of Algorithms 1-4 (native/core/attack.h). */
export interface NativeAttackResult {
  /** 1 when the model classified the sample correctly, so it was attacked. */
  attacked: Uint8Array;
  success: Uint8Array;
  /** Pixels chosen; on success, the number it took. */
  iterations: Int32Array;
  /** Pixels whose value differs from the original at the end. */
  l0: Int32Array;
  initialPrediction: Int32Array;
  finalPrediction: Int32Array;
  /** 1 when every candidate entry of the (first) saliency map was exactly zero. */
  saliencyZero: Uint8Array;
  /** The images when the attack ended [n * 784]. */
  adversarial: Float32Array;
  /** Chosen candidates per sample [n * budget]: p = set pixel p to 1, 784 + p = set it to 0; -1 after the end. */
  path: Int32Array;
  /** First saliency map per sample [n * 1568] (Algorithms 1 and 3: dL/dx in the first 784), when asked. */
  saliency?: Float64Array;
}

/** JSMA (Papernot et al. 2016) on the softmax at `temperature` or on the logits (native/core/attack.h). */
export interface NativeJsmaConfig {
  variant: 'softmax' | 'logits';
  /** Temperature of the softmax (variant 'softmax'; default 1). */
  temperature?: number;
  /** Most pixels changed, 2..784 (pairs: budget / 2, rounded down). */
  budget: number;
}

/** L-infinity PGD (Madry et al. 2018); FGSM is one step of size epsilon without random start. */
export interface NativePgdConfig extends NativeLossSpec {
  /** Radius of the L-infinity ball, in (0, 1]. */
  epsilon: number;
  /** Steps, at least 1. */
  steps: number;
  /** Size of each sign step, in (0, 1]. */
  stepSize: number;
  /** Start from a uniform draw in the ball (default true). */
  randomStart?: boolean;
  /** Seed of the random start (default 0). */
  seed?: number;
}

/** APGD (Croce & Hein 2020), L-infinity (native/core/apgd.h). */
export interface NativeApgdConfig {
  /** 'ce': the cross-entropy at `temperature` in `precision`; 'dlr', 'dlr-targeted': the (targeted) DLR loss. */
  loss: 'ce' | 'dlr' | 'dlr-targeted';
  /** Radius of the L-infinity ball, in (0, 1]. */
  epsilon: number;
  /** Steps per run, 1..100000. */
  steps: number;
  /** Runs (per target for 'dlr-targeted') from fresh random starts, each while every earlier one failed, 1..1000 (default 1). */
  restarts?: number;
  /** 'dlr-targeted': targets, the top classes other than the label by clean logit, 1..classes-1 (default min(9, classes-1)). */
  targetClasses?: number;
  /** Seed of the random starts (default 0). */
  seed?: number;
  /** 'ce' only: temperature of the cross-entropy (default 1). */
  temperature?: number;
  /** 'ce' only: 'float32' (default) or 'float64'. */
  precision?: 'float32' | 'float64';
}

/** The L-infinity Square attack (Andriushchenko et al. 2020; native/core/square_attack.h). */
export interface NativeSquareConfig {
  /** Radius of the L-infinity ball, in (0, 1]. */
  epsilon: number;
  /** Forward passes of perturbed images per sample, 1..10^6 (default 5,000; the stripes included). */
  queries?: number;
  /** The share of the pixels the first windows cover, in (0, 1] (default 0.8). */
  pInit?: number;
  /** Seed of the draws (default 0). */
  seed?: number;
}

/** Carlini & Wagner (2017) L2, untargeted (native/core/cw_l2.h). */
export interface NativeCwL2Config {
  /** Adam steps per constant, 1..100000 (default 1000). */
  steps?: number;
  /** Constants tried by the binary search, 1..100 (default 9). */
  searchSteps?: number;
  /** Adam's learning rate, > 0 (default 0.01). */
  learningRate?: number;
  /** The first constant, > 0 (default 1e-3). */
  initialConst?: number;
  /** kappa >= 0 (default 0). */
  confidence?: number;
}

/** A labelled data set resident on a backend's device. */
export declare class Dataset {
  private constructor();
  count(): number;
  backend(): BackendName;
  hasSoftTargets(): boolean;
  dispose(): void;
  isDisposed(): boolean;
}

/** The network's weights and optimiser state on a backend's device. */
export declare class Model {
  private constructor();
  backend(): BackendName;
  /** The checked plan of the model's architecture. */
  plan(): NativeArchPlan;
  parameterCount(): number;
  /** All parameters, flat, in parameterLayout() order. */
  getParameters(): Float32Array;
  setParameters(parameters: Float32Array): void;
  /** The optimiser's momentum buffers, same layout as the parameters. */
  getVelocity(): Float32Array;
  setVelocity(velocity: Float32Array): void;
  /** SGD steps over consecutive batches of `indices`; step numbers (dropout masks) start at firstStep. */
  trainSteps(
    dataset: Dataset,
    indices: Int32Array,
    batchSize: number,
    config: NativeTrainConfig,
    firstStep: number,
  ): Promise<NativeTrainResult>;
  /** Deterministic forward pass over dataset rows [begin, end) at the given temperature. */
  evaluate(dataset: Dataset, begin: number, end: number, temperature: number, wantLogits: boolean): Promise<NativeEvaluation>;
  /** Logits [n * classes] for images [n * inputSize] (NHWC, pixels in [0, 1]). */
  predict(images: Float32Array): Promise<Float32Array>;
  /** One forward and backward pass without an update; every activation and gradient (for tests). */
  trace(
    images: Float32Array,
    labels: Int32Array,
    softTargets: Float32Array | null,
    config: NativeTrainConfig,
    step: number,
  ): Promise<Record<string, Float32Array>>;
  /** Per image: the attack loss, its gradient w.r.t. the input pixels, and the logits. */
  inputGradient(images: Float32Array, labels: Int32Array, lossSpec?: NativeLossSpec): Promise<NativeInputGradient>;
  /** Per image: the attack loss from a full forward pass, and the logits. */
  attackLosses(images: Float32Array, labels: Int32Array, lossSpec?: NativeLossSpec): Promise<{ loss: Float64Array; logits: Float32Array }>;
  /** Algorithm 2's 2 x positions perturbed losses per image, exact; `skip` [n * positions] marks positions not to perturb. */
  sweep(images: Float32Array, labels: Int32Array, lossSpec?: NativeLossSpec, skip?: Uint8Array | null): Promise<NativeSweep>;
  /** Algorithms 1-4 on the given samples. */
  attack(images: Float32Array, labels: Int32Array, config: NativeAttackConfig): Promise<NativeAttackResult>;
  /**
   * Targeted JSMA towards targets [n]; path [n * budget] lists the pixels set to 1, in order;
   * iterations = pixels changed. Samples misclassified at the start or whose target is their label are not attacked.
   */
  jsma(images: Float32Array, labels: Int32Array, targets: Int32Array, config: NativeJsmaConfig): Promise<NativeAttackResult>;
  /**
   * PGD / FGSM; keys [n] (the samples' indices in their data set) select each sample's random start.
   * iterations = steps taken (0: the random start alone succeeded); path is empty.
   */
  pgd(
    images: Float32Array,
    labels: Int32Array,
    keys: Uint32Array,
    config: NativePgdConfig,
  ): Promise<NativeAttackResult & { linf: Float32Array }>;
  /**
   * APGD; keys [n] select each sample's random starts. iterations = steps taken over every run
   * (0: the first random start succeeded); path is empty; the adversarial image is the first
   * misclassified iterate, else the last run's highest-loss iterate.
   */
  apgd(
    images: Float32Array,
    labels: Int32Array,
    keys: Uint32Array,
    config: NativeApgdConfig,
  ): Promise<NativeAttackResult & { linf: Float32Array }>;
  /** Per image: the loss APGD follows, its input gradient and the logits; targets [n] are read by 'dlr-targeted' only. */
  apgdLoss(
    images: Float32Array,
    labels: Int32Array,
    targets: Int32Array,
    config: Pick<NativeApgdConfig, 'loss' | 'temperature' | 'precision'>,
  ): Promise<{ loss: Float64Array; gradient: Float64Array; logits: Float32Array }>;
  /** The Square attack; keys [n] select each sample's draws. iterations = queries used. */
  square(
    images: Float32Array,
    labels: Int32Array,
    keys: Uint32Array,
    config: NativeSquareConfig,
  ): Promise<NativeAttackResult & { linf: Float32Array }>;
  /**
   * Carlini-Wagner L2. iterations = gradient evaluations up to the best image (0: none succeeded);
   * l2 [n] = ||adversarial - original||_2; consts and roundSuccess [n * searchSteps]: each round's c and outcome.
   */
  cwL2(
    images: Float32Array,
    labels: Int32Array,
    config: NativeCwL2Config,
  ): Promise<NativeAttackResult & { linf: Float32Array; l2: Float64Array; consts: Float64Array; roundSuccess: Uint8Array }>;
  /** The model's CPU operations on `threads` threads of its own (1..1024), or on the process-wide pool (0). Refused while an operation runs. */
  setThreads(threads: number): void;
  /** The model's own thread count; 0 when it uses the process-wide pool (setThreads / getThreads of the module). */
  getThreads(): number;
  dispose(): void;
  isDisposed(): boolean;
}

/**
 * APGD's step-size decisions for one run of `steps` steps whose iterates x^0, x^1, ... have the
 * given losses (at most steps + 1): the checkpoints, and per iterate whether it became x_max
 * and whether eta was halved there (the iterate then becomes x_max).
 */
export declare function apgdSchedule(
  steps: number,
  losses: Float64Array,
): { checkpoints: Int32Array; newMax: Uint8Array; halve: Uint8Array };
export declare function version(): string;
export declare function buildInfo(): NativeBuildInfo;
export declare function backends(): NativeBackendInfo[];
export declare function setThreads(threads: number): void;
export declare function getThreads(): number;
export declare function hardwareThreads(): number;
/** The instruction set of the CPU kernels in use: 'avx512' | 'avx2' | 'generic'. */
export declare function cpuIsa(): string;
export declare function supportedCpuIsas(): string[];
export declare function setCpuIsa(isa: string): void;
/** The parameter tensors of a network (the paper's when `arch` is undefined). */
export declare function parameterLayout(arch?: NativeArchSpec): NativeParameterInfo[];
/** The checked plan of a spec; throws TEMPERED_BAD_ARCH naming the layer when it is not one. */
export declare function planArch(arch: NativeArchSpec): NativeArchPlan;
/** The range of a numeric option (temperature in (0, 1e6], ...). */
export interface NativeLimit {
  min: number;
  max: number;
  minExclusive: boolean;
  maxExclusive: boolean;
}
/** The ranges the entry points enforce, by option name (lossTemperature: the loss spec's temperature; epsilon, stepSize: PGD/FGSM). */
export declare function limits(): Record<
  'temperature' | 'learningRate' | 'momentum' | 'lossScale' | 'l2' | 'dropoutRate' | 'lossTemperature' | 'epsilon' | 'stepSize',
  NativeLimit
>;
/** One operation of a training step or a prediction, as profiled by profileTraining() or profileForward(). */
export interface NativeOpProfile {
  op: string;
  shape: string;
  calls: number;
  seconds: number;
  /** Floating-point operations done in all calls (a multiply-add counts 2); 0 for data movement. */
  flops: number;
}

/** The measured fp32 multiply-add peak of the CPU backend's threads with its kernels, and their core clock (GHz; 0 where it cannot be measured). */
export declare function fmaPeak(seconds: number): Promise<{ gflops: number; clockGhz: number; threads: number; isa: string }>;
/** Times every operation of `steps` training steps at `batchSize` on random data. */
export declare function profileTraining(
  backend: BackendName,
  batchSize: number,
  steps: number,
  arch?: NativeArchSpec,
): Promise<NativeOpProfile[]>;
/** Times every operation of `repetitions` predictions (inference forward passes, in the backend's evaluation chunks) of `batchSize` random images. */
export declare function profileForward(
  backend: BackendName,
  batchSize: number,
  repetitions: number,
  arch?: NativeArchSpec,
): Promise<NativeOpProfile[]>;
/** A model of `arch` (the paper's network when undefined) with Glorot-uniform weights drawn from `seed`. */
export declare function createModel(backend: BackendName, seed: number, arch?: NativeArchSpec): Model;
/** Images [count * inputSize] (default 784) with labels in 0..classes-1 (default 10). */
export declare function createDataset(
  backend: BackendName,
  images: Float32Array,
  labels: Int32Array,
  softTargets?: Float32Array | null,
  inputSize?: number,
  classes?: number,
): Promise<Dataset>;
