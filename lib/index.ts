// tempered: the public TypeScript API.
export { backends, resolveBackend, setThreads, getThreads, cpuIsa, describeBackend } from './backends';
export type { BackendChoice, BackendInfo, BackendName } from './backends';
export { TemperedError } from './errors';
export type { TemperedErrorCode } from './errors';
export { loadMnist, MNIST_SHAPE } from './mnist';
export type { MnistData, MnistSplit, MnistSplitName, ImageDataset, ImageSplit, ImageShape } from './mnist';
export { loadImageData, detectFormat, IMAGE_DATA_FORMATS } from './datasets';
export type { ImageDataFormat, LoadImageDataOptions } from './datasets';
export { CIFAR10_SHAPE } from './datasets/cifar10';
export { NAMED_ARCHS, DEFAULT_ARCH, namedArch, planArch, resolveArch, checkArch, canonicalArch, archName } from './arch';
export type { ArchSpec, ArchPlan, ArchName, LayerSpec } from './arch';
export { Model, parameterLayout, packageVersion, argmax } from './model';
export type { ModelMetadata, Evaluation } from './model';
export { importOnnx, decodeOnnx, SUPPORTED_OPS as ONNX_SUPPORTED_OPS } from './onnx/import';
export type { ImportedOnnx } from './onnx/import';
export { train, resolveTrainConfig, DEFAULT_TRAIN_CONFIG } from './train';
export type { TrainConfig, TrainOptions, TrainProgress, TrainResult, EpochRecord } from './train';
export { readSafetensors, writeSafetensors } from './safetensors';
export { Random, epochPermutation, sampleWithoutReplacement } from './rng';
export {
  runAttack,
  runTransfer,
  checkAttackOptions,
  ATTACK_ALGORITHMS,
  ATTACK_LOSSES,
  ATTACK_OPTION_RULES,
  ATTACK_PARAMETERS,
  LOSS_PRECISIONS,
  ATTACKS,
  attackDescriptor,
  randomTarget,
  readSummary,
  summarize,
} from './attack';
export type {
  AttackAlgorithm,
  AttackDescriptor,
  AttackLoss,
  AttackParameters,
  AttackParametersOf,
  ClassIndex,
  JsmaTarget,
  LossPrecision,
  AttackOptions,
  AttackOptionsOf,
  AttackRunOptions,
  EpsilonPoint,
  AttackRecord,
  AttackSummary,
  AttackResult,
  SkipReason,
  TransferRecord,
  TransferResult,
  TransferSummary,
} from './attack';
export {
  diagnose,
  checkDiagnoseOptions,
  evaluateRules,
  decideVerdict,
  trainSurrogate,
  availableSteps,
  BATTERY,
  RULES,
  THRESHOLDS,
  VERDICTS,
  CURVE_EPSILONS,
  DIAGNOSIS_FORMAT,
  DIAGNOSIS_FORMAT_VERSION,
} from './diagnose';
export type {
  Diagnosis,
  DiagnoseOptions,
  DiagnoseProgress,
  BatteryStep,
  StepRole,
  StepResult,
  RuleId,
  RuleResult,
  RuleStatus,
  RuleInputs,
  Verdict,
  SampleOutcome,
  GradientEvidence,
  SurrogateDescription,
} from './diagnose';
export { diagnosisDocument, writeDiagnosis } from './experiment/render/diagnosis';
export { gradientStats } from './gradients';
export type { GradientStatsOptions, GradientStatsRow } from './gradients';
export { distill, softLabels, parametersHash } from './distill';
export type { DistillOptions } from './distill';
export {
  reproduce,
  PROFILES,
  ATTACK_SETTINGS,
  readResults,
  parseResults,
  renderReport,
  writeRendered,
  RESULTS_FORMAT_VERSION,
} from './experiment';
export { study, STUDY_ATTACKS, STUDY_PROFILES } from './experiment';
export type { StudyOptions, StudyProfile, StudyResults } from './experiment';
export type { ExperimentProfile, ExperimentResults, ReproduceOptions, ProfileName, RenderedReport } from './experiment';
export { wilsonInterval } from './stats';
