// tempered: the public TypeScript API.
export { backends, resolveBackend, setThreads, getThreads, cpuIsa, describeBackend } from './backends';
export type { BackendChoice, BackendInfo, BackendName } from './backends';
export { TemperedError } from './errors';
export type { TemperedErrorCode } from './errors';
export { loadMnist } from './mnist';
export type { MnistData, MnistSplit } from './mnist';
export { Model, parameterLayout, packageVersion, argmax } from './model';
export type { ModelMetadata, Evaluation } from './model';
export { train, resolveTrainConfig, DEFAULT_TRAIN_CONFIG } from './train';
export type { TrainConfig, TrainOptions, TrainProgress, TrainResult, EpochRecord } from './train';
export { readSafetensors, writeSafetensors } from './safetensors';
export { Random, epochPermutation, sampleWithoutReplacement } from './rng';
