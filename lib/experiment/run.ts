// `tempered reproduce`: the paper's whole experiment. Trains (or reuses) M_std, M_std-T
// (the teacher) and M_distill; evaluates them; attacks the same test samples on all three
// with Algorithms 1-3 (4 on a subset) under three loss settings; measures the input
// gradients; draws the pictures; writes results.json, results.md and report.html. Every
// finished piece (a model, an attack, a gradient table, the pictures) is written atomically
// into the output folder and reused by a rerun, so an interrupted run (even kill -9)
// resumes and loses nothing. Each piece records the commit that produced it.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AttackAlgorithm, attackDescriptor, runAttack, summarize } from '../attack';
import { BackendChoice, describeBackend, resolveBackend } from '../backends';
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
import { codeVersion, loadOrCompute, Piece, PieceContext } from './pieces';
import {
  nearChanceWarning,
  ALGORITHMS,
  ATTACK_SETTINGS,
  AttackSetting,
  ExperimentProfile,
  learningRateOf,
  lossScaleOf,
  ModelId,
  modelSpecs,
  ModelSpec,
  ProfileName,
  resolveProfile,
  trainingKey,
} from './profiles';
import { finishExperiment } from './finish';
import { ExperimentResults, ModelResult, PictureGrid, PieceCommit, RESULTS_FORMAT_VERSION, StageTime } from './results';

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
  stage: 'data' | 'train' | 'attack' | 'gradients' | 'pictures' | 'report';
  message: string;
  done?: number;
  total?: number;
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

export async function reproduce(opts: ReproduceOptions = {}): Promise<ExperimentResults> {
  const started = Date.now();
  const profile = resolveProfile(opts);
  const seed = checkNumber(opts.seed ?? 0, 'seed', { min: 0, max: 0xffffffff, integer: true });
  const backend = resolveBackend(opts.backend ?? 'auto');
  const out = path.resolve(opts.out ?? path.join('runs', `reproduce-${profile.name.split(' ')[0]}`));
  const emit = opts.onEvent ?? (() => undefined);
  const code = codeVersion();
  const reuseOtherCommits = !!opts.reuseOtherCommits;
  const pieces = (stage: ExperimentEvent['stage']): PieceContext => ({
    code,
    reuseOtherCommits,
    log: (message) => emit({ stage, message }),
  });
  for (const dir of ['models', 'attacks', 'gradients', 'pictures']) fs.mkdirSync(path.join(out, dir), { recursive: true });
  const stages: StageTime[] = [];

  emit({ stage: 'data', message: 'loading MNIST' });
  const data = opts.data ?? (await loadMnist());
  const specs = modelSpecs(profile);
  const arch = opts.arch ? checkArch(opts.arch) : namedArch(DEFAULT_ARCH);
  const archLabel = archName(arch) ?? 'custom';

  // 1. Models: reused whatever commit trained them (the commit is recorded), when the training key matches.
  const models = new Map<ModelId, Model>();
  const modelResults: ModelResult[] = [];
  for (const spec of specs) {
    const file = path.join(out, 'models', `${spec.id}.safetensors`);
    const key = trainingKey(spec, profile, seed, data.fingerprint, arch);
    const lossScale = lossScaleOf(spec, profile);
    const learningRate = learningRateOf(spec, profile);
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
      const t0 = Date.now();
      const checkpoint = `${file}.checkpoint`;
      const onProgress = (p: { epoch: number; epochs: number; batch: number; batches: number; loss: number; samplesPerSecond: number }) =>
        emit({
          stage: 'train',
          message: `${spec.name} (T=${spec.temperature}) epoch ${p.epoch}/${p.epochs} loss ${p.loss.toFixed(4)} ${p.samplesPerSecond.toFixed(0)} samples/s`,
          done: (p.epoch - 1) * p.batches + p.batch,
          total: p.epochs * p.batches,
        });
      const common = { epochs: profile.epochs, trainLimit: profile.trainLimit, seed, checkpoint, onProgress, lossScale, learningRate };
      if (spec.id === 'distill') {
        const teacher = models.get('stdT')!;
        const r = await distill(teacher, data, {
          ...common,
          temperature: spec.temperature,
          teacherFile: path.join(out, 'models', 'stdT.safetensors'),
        });
        model = r.student;
      } else {
        model = Model.create({ seed, backend, arch });
        await train(model, data, { ...common, temperature: spec.temperature });
      }
      trainSeconds = (Date.now() - t0) / 1000;
      model.metadata.experimentKey = key;
      model.metadata.experimentModel = spec.name;
      model.metadata.experimentCommit = { commit: code.commit, dirty: code.dirty };
    }
    const test = await model.evaluate(data.test, { temperature: 1 });
    if (!reused) {
      model.metadata.result = { ...(model.metadata.result ?? {}), testAccuracy: test.accuracy, testLoss: test.meanLoss, trainSeconds };
      await model.save(file);
      fs.rmSync(`${file}.checkpoint`, { force: true });
    }
    emit({
      stage: 'train',
      message: `${spec.name}: test accuracy ${(100 * test.accuracy).toFixed(2)}% (paper ${(100 * spec.paperAccuracy).toFixed(2)}%)`,
    });
    models.set(spec.id, model);
    const result = (model.metadata.result ?? {}) as Record<string, unknown>;
    const trainedBy = (model.metadata.experimentCommit as PieceCommit | undefined) ?? null;
    const seconds = (result.trainSeconds as number | undefined) ?? trainSeconds;
    if (seconds !== undefined) stages.push({ stage: 'train', label: `train ${spec.name}`, seconds, reused, producedBy: trainedBy });
    modelResults.push({
      id: spec.id,
      name: spec.name,
      file: path.relative(out, file),
      trainingTemperature: spec.temperature,
      testAccuracy: test.accuracy,
      testLoss: test.meanLoss,
      paperAccuracy: spec.paperAccuracy,
      epochs: profile.epochs,
      lossScale,
      learningRate,
      reused,
      trainSeconds: seconds,
      history: Array.isArray(result.history) ? (result.history as EpochRecord[]) : [],
      trainedBy,
    });
  }

  const nearChance = nearChanceWarning(modelResults);
  if (nearChance) emit({ stage: 'train', message: `warning: ${nearChance}` });

  // 2. The samples: the same test images for every model.
  const indices = sampleWithoutReplacement(data.test.count, profile.samples, seed, 7);
  // Attacks of quadratic cost (Algorithm 4) run on a subset of them, profile.alg4Samples.
  const subsetIndices = sampleWithoutReplacement(indices.length, profile.alg4Samples, seed, 8).map((k) => indices[k]);
  const correct = new Map<ModelId, Set<number>>();
  for (const spec of specs) {
    const images = gatherImages(data.test, indices);
    const predicted = await models.get(spec.id)!.classify(images);
    correct.set(spec.id, new Set(indices.filter((idx, k) => predicted[k] === data.test.labels[idx])));
  }
  const common = new Set(indices.filter((i) => specs.every((s) => correct.get(s.id)!.has(i))));
  const shown = pictureSamples(indices, common, profile.pictures);
  const shownSet = new Set(shown);

  // 3. Attacks: each keeps the images of the picture samples (Algorithm 2 also its saliency maps).
  const attacks: ExperimentResults['attacks'] = [];
  const stored = new Map<string, StoredAttack>();
  const jobs: { spec: ModelSpec; alg: AttackAlgorithm; setting: AttackSetting }[] = [];
  for (const alg of ALGORITHMS)
    for (const setting of ATTACK_SETTINGS)
      for (const spec of specs) if (!attackDescriptor(alg)!.quadraticCost || subsetIndices.length > 0) jobs.push({ spec, alg, setting });
  let jobIndex = 0;
  for (const { spec, alg, setting } of jobs) {
    jobIndex++;
    const model = models.get(spec.id)!;
    const descriptor = attackDescriptor(alg)!;
    const samples = descriptor.quadraticCost ? subsetIndices : indices;
    const file = path.join(out, 'attacks', `${spec.id}-${alg}-${setting.id}.json`);
    const keep = samples.filter((i) => shownSet.has(i));
    const key = JSON.stringify({
      model: parametersHash(model),
      alg,
      setting: setting.id,
      budget: profile.budget,
      temperature: 1,
      samples,
      pictures: keep,
    });
    const label = `${alg} ${setting.id} on ${spec.name}`;
    const { piece: result, reused } = await loadOrCompute<StoredAttack>(pieces('attack'), file, key, label, async () => {
      const r = await runAttack(model, alg, {
        data,
        samples,
        budget: profile.budget,
        temperature: 1,
        loss: setting.loss,
        precision: setting.precision,
        keepSaliency: descriptor.saliencyMaps && SALIENCY_PICTURE_ALGORITHMS.includes(alg) && keep.length > 0,
        onProgress: (done, total) => emit({ stage: 'attack', message: `[${jobIndex}/${jobs.length}] ${label}`, done, total }),
      });
      return {
        model: spec.id,
        algorithm: alg,
        setting: setting.id,
        summary: { ...r.summary, model: spec.id, setting: setting.id },
        records: r.records.map((rec) => storedRecord(rec, shownSet.has(rec.index))),
      };
    });
    emit({
      stage: 'attack',
      message:
        `[${jobIndex}/${jobs.length}] ${label}: ${(100 * result.summary.successRate).toFixed(1)}% of ${result.summary.attacked}` +
        ` (${result.summary.allZeroSaliency} all-zero saliency maps)${reused ? ' (reused)' : ''}`,
    });
    stored.set(`${spec.id}-${alg}-${setting.id}`, result);
    stages.push({ stage: 'attack', label, seconds: result.produced.seconds, reused, producedBy: commitOf(result) });
    const commonRecords = result.records.filter((r) => common.has(r.index));
    const commonSummary = summarize(
      { algorithm: alg, budget: profile.budget, temperature: 1, loss: setting.loss, precision: setting.precision },
      commonRecords.map((r) => ({ ...r, adversarial: new Float32Array(0) })),
      0,
    );
    attacks.push({
      ...result.summary,
      model: spec.id,
      setting: setting.id,
      commonSuccessRate: commonSummary.successRate,
      commonAttacked: commonSummary.attacked,
      producedBy: commitOf(result),
    });
  }

  // 4. Gradient statistics on the samples every model classifies correctly.
  const gradients: ExperimentResults['gradients'] = [];
  const gradientIndices = [...common].sort((a, b) => a - b);
  for (const spec of specs) {
    const file = path.join(out, 'gradients', `${spec.id}.json`);
    const key = JSON.stringify({
      model: parametersHash(models.get(spec.id)!),
      samples: gradientIndices,
      temperatures: profile.gradientTemperatures,
    });
    const label = `input gradients of ${spec.name}`;
    const { piece, reused } = await loadOrCompute<StoredGradients>(pieces('gradients'), file, key, label, async () => {
      emit({ stage: 'gradients', message: label });
      const rows = gradientIndices.length
        ? await gradientStats(models.get(spec.id)!, data.test, { indices: gradientIndices, temperatures: profile.gradientTemperatures })
        : [];
      return { rows };
    });
    stages.push({ stage: 'gradients', label, seconds: piece.produced.seconds, reused, producedBy: commitOf(piece) });
    gradients.push({ model: spec.id, rows: piece.rows, producedBy: commitOf(piece) });
  }

  // 5. Pictures, drawn from the attack pieces they come from.
  emit({ stage: 'pictures', message: 'pictures' });
  const sources = [...stored.values()].filter((a) => PICTURED_ALGORITHMS.includes(a.algorithm)).map((a) => [a.key, a.produced.producedAt]);
  const picturesKey = JSON.stringify({ shown, sources });
  const gridFiles = specs.flatMap((s) => [`adversarial-${s.id}.png`, `saliency-${s.id}.png`]).map((f) => path.join(out, 'pictures', f));
  const picturesFile = path.join(out, 'pictures', 'pictures.json');
  // A missing PNG (deleted by hand) means the pictures are drawn again.
  if (shown.length > 0 && !gridFiles.every((f) => fs.existsSync(f))) fs.rmSync(picturesFile, { force: true });
  const { piece: pictures, reused: picturesReused } = await loadOrCompute<StoredPictures>(
    pieces('pictures'),
    picturesFile,
    picturesKey,
    'pictures',
    async () => ({
      grids: await drawPictures(out, data.test, specs, shown, (model, alg, setting, index) =>
        stored.get(`${model}-${alg}-${setting}`)?.records.find((r) => r.index === index),
      ),
    }),
  );
  stages.push({
    stage: 'pictures',
    label: 'pictures',
    seconds: pictures.produced.seconds,
    reused: picturesReused,
    producedBy: commitOf(pictures),
  });

  const results: ExperimentResults = {
    formatVersion: RESULTS_FORMAT_VERSION,
    kind: 'reproduce',
    tool: `tempered ${packageVersion()}`,
    code,
    reuseOtherCommits,
    profile,
    seed,
    createdAt: new Date().toISOString(),
    machine: machineDescription(backend),
    data: { fingerprint: data.fingerprint, description: data.description, split: data.split },
    arch: { name: archLabel, spec: arch },
    models: modelResults,
    samples: { indices, alg4Indices: subsetIndices, correctByAll: common.size, evaluationTemperature: 1, pictureIndices: shown },
    attacks,
    gradients,
    stages,
    figures: reproduceFigures({ attacks, models: modelResults, profile }),
    pictures: pictures.grids,
    seconds: 0,
  };

  // 6. The report (finish.ts).
  emit({ stage: 'report', message: 'results.json, results.md and report.html' });
  await finishExperiment(out, results, code, started);
  return results;
}
