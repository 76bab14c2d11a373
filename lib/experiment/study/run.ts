// `tempered study`: robustness against the training temperature. For each T and seed it
// trains M_std-T (hard labels at T) and M_distill(T) (a student at T on M_std-T's soft
// labels at T), evaluates both at T = 1, and attacks the same test samples on every model
// that learned (a model near chance is reported and never attacked). Every finished part (a
// model, an attack, a transfer, a gradient table) is an atomic piece in the output folder,
// reused by a rerun exactly as reproduce's are; a folder made with other settings is refused.
import * as fs from 'fs';
import * as path from 'path';
import { ATTACK_PARAMETER_NAMES, AttackParameters, AttackRecord, AttackResult, AttackSummary, readSummary, runAttack } from '../../attack';
import { classifyTransfer, TransferRecord, TransferSummary } from '../../attacks/transfer';
import { BackendChoice, resolveBackend } from '../../backends';
import { distill, parametersHash } from '../../distill';
import { TemperedError } from '../../errors';
import { readJsonIfPresent, writeJsonAtomic } from '../../fsutil';
import { gradientStats, GradientStatsRow } from '../../gradients';
import { loadMnist, MnistData } from '../../mnist';
import { Model, packageVersion } from '../../model';
import { sampleWithoutReplacement } from '../../rng';
import { wilsonInterval } from '../../stats';
import { EpochRecord, train, TrainOptions } from '../../train';
import { storedAdversarial, storedRecord, StoredRecord } from '../pictures';
import { codeVersion, loadOrCompute, Piece, PieceContext } from '../pieces';
import { finishExperiment } from '../finish';
import { PieceCommit, RESULTS_FORMAT_VERSION, StageTime } from '../results';
import { ExperimentEvent, machineDescription } from '../run';
import { studyFigures } from './figures';
import {
  attackParameters,
  COMMON_PIXEL_BUDGET,
  resolveStudyProfile,
  STUDY_ATTACKS,
  STUDY_PROBES,
  studyAttack,
  StudyAttack,
  StudyProfile,
  StudyProfileName,
  trainingSettings,
} from './profiles';
import { StudyAttackRow, StudyGradients, StudyModel, StudyModelKind, StudyResults } from './results';

/** The attacked samples are drawn once with this seed: the same for every model and training seed. */
export const STUDY_SAMPLE_SEED = 0;

export interface StudyOptions {
  profile?: StudyProfileName;
  overrides?: Partial<StudyProfile>;
  out?: string;
  backend?: BackendChoice;
  data?: MnistData;
  /** Reuse attacks and gradients computed by another commit (default: recompute them). */
  reuseOtherCommits?: boolean;
  onEvent?: (e: ExperimentEvent) => void;
}

interface StoredAttack extends Piece {
  summary: AttackSummary;
  records: StoredRecord[];
}

interface StoredTransfer extends Piece {
  summary: Omit<TransferSummary, 'source'>;
  records: TransferRecord[];
}

interface StoredGradients extends Piece {
  rows: GradientStatsRow[];
}

/** What a folder's pieces depend on besides their own keys: a folder made with other values is refused (the near-chance threshold is not: it only decides what is attacked). */
function folderSettings(p: StudyProfile, fingerprint: string) {
  return {
    epochs: p.epochs,
    trainLimit: p.trainLimit ?? null,
    samples: p.samples,
    coldLearningRate: p.coldLearningRate,
    hotLearningRate: p.hotLearningRate,
    hotRateTimesT: p.hotRateTimesT,
    data: fingerprint,
  };
}

const commitOf = (p: Piece): PieceCommit | null => ({ commit: p.produced.commit, dirty: p.produced.dirty });
const modelName = (kind: StudyModelKind, t: number) => (kind === 'stdT' ? (t === 1 ? 'M_std' : `M_std-T (T=${t})`) : `M_distill (T=${t})`);

/** The first attack of the study with the same resolved settings: its piece serves both (Algorithm 2 at "the training T" is at T = 1 for T = 1). */
function canonicalAttack(a: StudyAttack, temperature: number): StudyAttack {
  const key = JSON.stringify([a.algorithm, attackParameters(a, temperature)]);
  return STUDY_ATTACKS.find((x) => !x.transferOf && JSON.stringify([x.algorithm, attackParameters(x, temperature)]) === key) ?? a;
}

export async function study(opts: StudyOptions = {}): Promise<StudyResults> {
  const started = Date.now();
  const profile = resolveStudyProfile(opts);
  const backend = resolveBackend(opts.backend ?? 'auto');
  const out = path.resolve(opts.out ?? path.join('runs', `study-${profile.name.split(' ')[0]}`));
  const emit = opts.onEvent ?? (() => undefined);
  const code = codeVersion();
  const reuseOtherCommits = !!opts.reuseOtherCommits;
  const pieces = (stage: ExperimentEvent['stage']): PieceContext => ({
    code,
    reuseOtherCommits,
    log: (message) => emit({ stage, message }),
  });
  const stages: StageTime[] = [];

  emit({ stage: 'data', message: 'loading MNIST' });
  const data = opts.data ?? (await loadMnist());
  const settings = folderSettings(profile, data.fingerprint);
  const manifest = path.join(out, 'study.json');
  const found = await readJsonIfPresent<{ settings: unknown }>(manifest);
  if (found && JSON.stringify(found.settings) !== JSON.stringify(settings))
    throw new TemperedError(
      'TEMPERED_INCOMPATIBLE',
      `${out} holds a study made with other settings (${JSON.stringify(found.settings)}); this run needs ${JSON.stringify(settings)}. ` +
        'Use another --out folder, or delete that one.',
    );
  for (const dir of ['models', 'attacks', 'transfers', 'gradients']) fs.mkdirSync(path.join(out, dir), { recursive: true });
  if (!found) await writeJsonAtomic(manifest, { settings });
  const seeds = Array.from({ length: profile.seeds }, (_, k) => k);

  // 1. Models: both kinds at every T and seed; near-chance ones are flagged.
  const models: StudyModel[] = [];
  const loaded = new Map<string, Model>();
  for (const seed of seeds)
    for (const temperature of profile.temperatures) {
      const { lossScale, learningRate } = trainingSettings(profile, temperature);
      const teacherKey = JSON.stringify({
        study: 'stdT',
        temperature,
        epochs: profile.epochs,
        trainLimit: profile.trainLimit ?? null,
        lossScale,
        learningRate,
        seed,
        data: data.fingerprint,
      });
      for (const kind of ['stdT', 'distill'] as const) {
        const id = `T${temperature}-s${seed}-${kind}`;
        const base = {
          id,
          kind,
          name: modelName(kind, temperature),
          temperature,
          seed,
          lossScale,
          learningRate,
          epochs: profile.epochs,
          reused: false,
          history: [],
          trainedBy: null,
        };
        const teacher = loaded.get(`T${temperature}-s${seed}-stdT`);
        if (kind === 'distill' && !teacher) {
          models.push({ ...base, status: 'teacher-near-chance' });
          emit({ stage: 'train', message: `${base.name} seed ${seed}: not trained (its teacher is near chance)` });
          continue;
        }
        const file = path.join(out, 'models', `${id}.safetensors`);
        const key = kind === 'stdT' ? teacherKey : JSON.stringify({ study: 'distill', teacher: teacherKey });
        const m = await trainOrReuse(
          file,
          key,
          `${base.name} seed ${seed}`,
          emit,
          async (common) => {
            if (kind === 'distill')
              return (
                await distill(teacher!, data, {
                  ...common,
                  temperature,
                  teacherFile: path.join(out, 'models', `T${temperature}-s${seed}-stdT.safetensors`),
                })
              ).student;
            const model = Model.create({ seed, backend });
            await train(model, data, { ...common, temperature });
            return model;
          },
          { epochs: profile.epochs, trainLimit: profile.trainLimit, seed, lossScale, learningRate },
          backend,
          data,
          code,
        );
        const status = m.testAccuracy < profile.nearChance ? 'near-chance' : 'ok';
        if (status === 'ok') loaded.set(id, m.model);
        models.push({
          ...base,
          status,
          file: path.relative(out, file),
          testAccuracy: m.testAccuracy,
          testLoss: m.testLoss,
          reused: m.reused,
          trainSeconds: m.trainSeconds,
          history: m.history,
          trainedBy: m.trainedBy,
        });
        if (m.trainSeconds !== undefined)
          stages.push({
            stage: 'train',
            label: `train ${base.name} seed ${seed}`,
            seconds: m.trainSeconds,
            reused: m.reused,
            producedBy: m.trainedBy,
          });
        emit({
          stage: 'train',
          message: `${base.name} seed ${seed}: test accuracy ${(100 * m.testAccuracy).toFixed(2)}% at T = 1${status === 'ok' ? '' : ' (near chance: not attacked)'}`,
        });
      }
    }

  // 2. The same test samples for every model.
  const indices = sampleWithoutReplacement(data.test.count, profile.samples, STUDY_SAMPLE_SEED, 7);
  const attacks: StudyAttackRow[] = [];
  const gradients: StudyGradients[] = [];
  const attackable = models.filter((m) => m.status === 'ok');
  const chosen = profile.attacks.map(studyAttack);
  const direct = chosen.filter((a) => !a.transferOf);
  const transfers = chosen.filter((a) => a.transferOf);
  const sourceIds = new Set(transfers.map((a) => a.transferOf!));
  let done = 0;
  const total = attackable.length * direct.length + transfers.length * Math.max(0, attackable.length - seeds.length);

  const attackPiece = async (m: StudyModel, a: StudyAttack, label: string) => {
    const canonical = canonicalAttack(a, m.temperature);
    const parameters = attackParameters(canonical, m.temperature);
    const model = loaded.get(m.id)!;
    // M_std keeps the images of the attacks that are transferred from it.
    const keepImages = m.kind === 'stdT' && m.temperature === 1 && sourceIds.has(canonical.id);
    const file = path.join(out, 'attacks', `${m.id}-${canonical.id}.json`);
    const key = JSON.stringify({
      model: parametersHash(model),
      algorithm: canonical.algorithm,
      parameters,
      samples: indices,
      seed: m.seed,
      keepImages,
    });
    return loadOrCompute<StoredAttack>(pieces('attack'), file, key, label, async () => {
      const r = await runAttack(model, canonical.algorithm, {
        ...parameters,
        data,
        samples: indices,
        seed: m.seed,
        onProgress: (d, n) => emit({ stage: 'attack', message: label, done: d, total: n }),
      });
      return { summary: r.summary, records: r.records.map((rec) => storedRecord(rec, keepImages)) };
    });
  };

  for (const seed of seeds) {
    const ofSeed = attackable.filter((m) => m.seed === seed);
    // 3. Attacks on every model that learned.
    for (const m of ofSeed)
      for (const a of direct) {
        const label = `${a.id} on ${m.name} seed ${seed}`;
        const { piece, reused } = await attackPiece(m, a, label);
        done++;
        const s = piece.summary;
        emit({
          stage: 'attack',
          message: `[${done}/${total}] ${label}: ${(100 * s.successRate).toFixed(1)}% of ${s.attacked}${reused ? ' (reused)' : ''}`,
        });
        stages.push({ stage: 'attack', label, seconds: piece.produced.seconds, reused, producedBy: commitOf(piece) });
        attacks.push(attackRow(a, m, piece));
      }
    // 4. Transfers from M_std (T = 1, same seed) to every other model of the seed.
    const source = ofSeed.find((m) => m.kind === 'stdT' && m.temperature === 1);
    if (source)
      for (const a of transfers) {
        const crafted = await attackPiece(
          source,
          studyAttack(a.transferOf!),
          `${a.transferOf} on ${source.name} seed ${seed} (transfer source)`,
        );
        for (const m of ofSeed.filter((x) => x !== source)) {
          const label = `${a.id} to ${m.name} seed ${seed}`;
          const file = path.join(out, 'transfers', `${m.id}-${a.id}.json`);
          const key = JSON.stringify({
            source: crafted.piece.key,
            sourceProducedAt: crafted.piece.produced.producedAt,
            target: parametersHash(loaded.get(m.id)!),
          });
          const { piece, reused } = await loadOrCompute<StoredTransfer>(pieces('attack'), file, key, label, async () => {
            const records = crafted.piece.records.map((r) => ({
              ...r,
              adversarial: storedAdversarial(r) as Float32Array,
            })) as AttackRecord[];
            const t = await classifyTransfer({ summary: crafted.piece.summary, records } as AttackResult, loaded.get(m.id)!, data.test);
            const { source: _source, ...summary } = t.summary;
            return { summary, records: t.records };
          });
          done++;
          emit({
            stage: 'attack',
            message: `[${done}/${total}] ${label}: ${(100 * piece.summary.successRate).toFixed(1)}% of ${piece.summary.counted}${reused ? ' (reused)' : ''}`,
          });
          stages.push({ stage: 'attack', label, seconds: piece.produced.seconds, reused, producedBy: commitOf(piece) });
          attacks.push(transferRow(a, m, piece, attackParameters(a, 1)));
        }
      }
    // 5. Input gradients on the samples every model of the seed that learned classifies correctly.
    const correct = await Promise.all(ofSeed.map((m) => correctlyClassified(loaded.get(m.id)!, data, indices)));
    const common = indices.filter((i) => correct.every((c) => c.has(i))).sort((a, b) => a - b);
    for (const m of ofSeed) {
      const temperatures = [...new Set([1, m.temperature])];
      const file = path.join(out, 'gradients', `${m.id}.json`);
      const key = JSON.stringify({ model: parametersHash(loaded.get(m.id)!), samples: common, temperatures });
      const label = `input gradients of ${m.name} seed ${seed}`;
      const { piece, reused } = await loadOrCompute<StoredGradients>(pieces('gradients'), file, key, label, async () => {
        emit({ stage: 'gradients', message: label });
        return { rows: common.length ? await gradientStats(loaded.get(m.id)!, data.test, { indices: common, temperatures }) : [] };
      });
      stages.push({ stage: 'gradients', label, seconds: piece.produced.seconds, reused, producedBy: commitOf(piece) });
      gradients.push({ model: m.id, kind: m.kind, temperature: m.temperature, seed, rows: piece.rows, producedBy: commitOf(piece) });
    }
  }

  const results: StudyResults = {
    formatVersion: RESULTS_FORMAT_VERSION,
    kind: 'study',
    tool: `tempered ${packageVersion()}`,
    code,
    reuseOtherCommits,
    profile,
    seeds,
    createdAt: new Date().toISOString(),
    machine: machineDescription(backend),
    data: { fingerprint: data.fingerprint, description: data.description, split: data.split },
    trainingSettings: profile.temperatures.map((temperature) => ({ temperature, ...trainingSettings(profile, temperature) })),
    probes: STUDY_PROBES,
    models,
    samples: { indices, seed: STUDY_SAMPLE_SEED, evaluationTemperature: 1 },
    attacks,
    gradients,
    stages,
    figures: [],
    seconds: 0,
  };
  results.figures = studyFigures(results);

  // 6. The report (finish.ts).
  emit({ stage: 'report', message: 'results.json, results.md and report.html' });
  await finishExperiment(out, results, code, started);
  return results;
}

interface TrainedModel {
  model: Model;
  reused: boolean;
  testAccuracy: number;
  testLoss: number;
  trainSeconds?: number;
  history: EpochRecord[];
  trainedBy: PieceCommit | null;
}

type Common = Pick<TrainOptions, 'epochs' | 'trainLimit' | 'seed' | 'lossScale' | 'learningRate' | 'checkpoint' | 'onProgress'>;

/**
 * The model at `file` when it was trained with `key` (its test accuracy at T = 1 is read from
 * it), else trained with a per-epoch checkpoint (resumed after a kill), evaluated and saved.
 */
async function trainOrReuse(
  file: string,
  key: string,
  label: string,
  emit: (e: ExperimentEvent) => void,
  make: (common: Common) => Promise<Model>,
  common: Common,
  backend: ReturnType<typeof resolveBackend>,
  data: MnistData,
  code: ReturnType<typeof codeVersion>,
): Promise<TrainedModel> {
  let model: Model;
  let reused = false;
  let trainSeconds: number | undefined;
  if (fs.existsSync(file)) {
    model = await Model.load(file, { backend });
    if (model.metadata.experimentKey !== key)
      throw new TemperedError(
        'TEMPERED_INCOMPATIBLE',
        `${file} was trained with other settings (${String(model.metadata.experimentKey)}); this run needs ${key}. Use another --out folder, or delete the file to retrain it.`,
      );
    reused = true;
    emit({ stage: 'train', message: `${label}: reusing ${file}` });
  } else {
    const t0 = Date.now();
    model = await make({
      ...common,
      checkpoint: `${file}.checkpoint`,
      onProgress: (p) =>
        emit({
          stage: 'train',
          message: `${label} epoch ${p.epoch}/${p.epochs} loss ${p.loss.toFixed(4)} ${p.samplesPerSecond.toFixed(0)} samples/s`,
          done: (p.epoch - 1) * p.batches + p.batch,
          total: p.epochs * p.batches,
        }),
    });
    trainSeconds = (Date.now() - t0) / 1000;
    const test = await model.evaluate(data.test, { temperature: 1 });
    model.metadata.experimentKey = key;
    model.metadata.experimentModel = label;
    model.metadata.experimentCommit = { commit: code.commit, dirty: code.dirty };
    model.metadata.result = { ...(model.metadata.result ?? {}), testAccuracy: test.accuracy, testLoss: test.meanLoss, trainSeconds };
    await model.save(file);
    fs.rmSync(`${file}.checkpoint`, { force: true });
  }
  const result = (model.metadata.result ?? {}) as Record<string, unknown>;
  let testAccuracy = result.testAccuracy as number | undefined;
  let testLoss = result.testLoss as number | undefined;
  if (typeof testAccuracy !== 'number' || typeof testLoss !== 'number') {
    const test = await model.evaluate(data.test, { temperature: 1 });
    testAccuracy = test.accuracy;
    testLoss = test.meanLoss;
  }
  return {
    model,
    reused,
    testAccuracy,
    testLoss,
    trainSeconds: (result.trainSeconds as number | undefined) ?? trainSeconds,
    history: Array.isArray(result.history) ? (result.history as EpochRecord[]) : [],
    trainedBy: (model.metadata.experimentCommit as PieceCommit | undefined) ?? null,
  };
}

async function correctlyClassified(model: Model, data: MnistData, indices: number[]): Promise<Set<number>> {
  const images = new Float32Array(indices.length * 784);
  indices.forEach((idx, k) => images.set(data.test.images.subarray(idx * 784, (idx + 1) * 784), k * 784));
  const predicted = await model.classify(images);
  return new Set(indices.filter((idx, k) => predicted[k] === data.test.labels[idx]));
}

/** The settings a row records: the attack, what its budget counts, and every attack option of the registry. */
const SETTING_KEYS = ['algorithm', 'budgetUnit', ...ATTACK_PARAMETER_NAMES] as const;

function attackRow(a: StudyAttack, m: StudyModel, piece: StoredAttack): StudyAttackRow {
  const s = readSummary(piece.summary); // a piece of an earlier version may hold PGD's steps as meanPixels
  const settings: Record<string, unknown> = {};
  for (const k of SETTING_KEYS) if (s[k] !== undefined) settings[k] = s[k];
  const row: StudyAttackRow = {
    attack: a.id,
    model: m.id,
    kind: m.kind,
    temperature: m.temperature,
    seed: m.seed,
    attacked: s.attacked,
    successes: s.successes,
    successRate: s.successRate,
    interval: s.interval,
    allZeroSaliency: s.allZeroSaliency,
    ...(s.budgetUnit === 'steps'
      ? { meanSteps: s.meanSteps, medianSteps: s.medianSteps }
      : { meanPixels: s.meanPixels, medianPixels: s.medianPixels }),
    settings,
    seconds: piece.produced.seconds,
    producedBy: commitOf(piece),
  };
  if (s.budgetUnit === 'pixels' && s.budget >= COMMON_PIXEL_BUDGET) {
    const wins = piece.records.filter((r: StoredRecord) => r.attacked && r.success && r.pixels <= COMMON_PIXEL_BUDGET).length;
    row.common = {
      budget: COMMON_PIXEL_BUDGET,
      successes: wins,
      successRate: s.attacked ? wins / s.attacked : 0,
      interval: wilsonInterval(wins, s.attacked),
    };
  }
  return row;
}

function transferRow(a: StudyAttack, m: StudyModel, piece: StoredTransfer, settings: AttackParameters): StudyAttackRow {
  const s = piece.summary;
  return {
    attack: a.id,
    model: m.id,
    kind: m.kind,
    temperature: m.temperature,
    seed: m.seed,
    attacked: s.counted,
    successes: s.successes,
    successRate: s.successRate,
    interval: s.interval,
    sourceSuccesses: s.sourceSuccesses,
    settings: { algorithm: a.algorithm, source: a.transferOf, ...settings },
    seconds: piece.produced.seconds,
    producedBy: commitOf(piece),
  };
}
