// A study on a real Slurm (one node, this machine: scripts/slurm-local.sh start, as .ci/run
// does): the tiny study (T = 1 and 20, 1 epoch, 2,000 training images, 5 samples, every
// attack) submitted with `tempered slurm --submit`, waited for, and its results.json equal to
// a serial run's but for the wall times and reuse flags (test/cluster-helpers.ts says which).
// Then the same again with a training killed (kill -9) in the middle: its array task requeues
// itself, the piece is computed again, no other piece is computed twice, the numbers are
// the same. Skipped, saying why, only where sbatch is absent; a Slurm that does not answer fails.
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { codeVersion } from '../lib/experiment/pieces';
import { comparableResults } from './cluster-helpers';

jest.setTimeout(3600000);

const cli = path.join(__dirname, '..', 'bin', 'tempered.js');
// Near chance at 0: after one epoch on 2,000 images every model is "near chance" (10-25%), and the attacks would not run at all.
const TINY = ['--temperatures', '1,20', '--epochs', '1', '--train-limit', '2000', '--samples', '5', '--near-chance', '0'];
const WAIT_MS = 20 * 60 * 1000;

const sbatch = spawnSync('sh', ['-c', 'command -v sbatch'], { encoding: 'utf8' }).stdout.trim();
const slurmTest = sbatch ? test : test.skip;
if (!sbatch)
  console.warn('test/slurm.test.ts: skipped, sbatch is not installed (apt-get install slurm-wlm munge; scripts/slurm-local.sh start)');

// Every process of the test (the Slurm tasks inherit sbatch's environment) records the commit of the test's start, so an
// edit of the checkout while it runs cannot make the provenance of the serial run and of the pieces differ.
const code = codeVersion();
process.env.TEMPERED_COMMIT = `${code.commit}${code.dirty ? '+dirty' : ''}`;

let tmp: string;
const submitted: string[] = [];

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tempered-slurm-'));
  if (!sbatch) return;
  const info = spawnSync('sinfo', ['-h', '-o', '%T'], { encoding: 'utf8', timeout: 20000 });
  if (info.status !== 0 || !/idle|mixed|allocated/.test(info.stdout))
    throw new Error(
      `sbatch is installed but no Slurm node is ready (sinfo: ${(info.stderr || info.stdout).trim()}); start one with: sudo bash scripts/slurm-local.sh start`,
    );
});
afterAll(() => {
  // Jobs of a failed test are not left in the queue.
  if (submitted.length) spawnSync('scancel', submitted);
  fs.rmSync(tmp, { recursive: true, force: true });
});

const tempered = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8'));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function submit(dir: string): Map<string, string> {
  const plan = tempered(['study', ...TINY, '--out', dir, '--plan', '--quiet']);
  expect(plan.status).toBe(0);
  const r = tempered(['slurm', dir, '--max-parallel', '2', '--cpus-per-task', '1', '--time', '00:30:00', '--submit', '--json']);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const jobs = new Map<string, string>(JSON.parse(r.stdout).submitted.map((s: { name: string; jobId: string }) => [s.name, s.jobId]));
  submitted.push(...jobs.values());
  return jobs;
}

/** The state of every task of the jobs (scontrol keeps finished jobs for MinJobAge; no accounting database is needed). */
function states(jobIds: string[]): Map<string, { state: string; reason: string }> {
  const found = new Map<string, { state: string; reason: string }>();
  for (const id of jobIds) {
    const text = spawnSync('scontrol', ['show', 'job', '-o', id], { encoding: 'utf8' }).stdout;
    for (const line of text.split('\n').filter(Boolean)) {
      const field = (name: string) => new RegExp(`(?:^| )${name}=(\\S*)`).exec(line)?.[1] ?? '';
      const task = field('ArrayTaskId');
      found.set(task ? `${field('ArrayJobId')}_${task}` : field('JobId'), { state: field('JobState'), reason: field('Reason') });
    }
  }
  return found;
}

async function waitForJobs(
  jobIds: string[],
  onPoll: () => void = () => undefined,
): Promise<Map<string, { state: string; reason: string }>> {
  const started = Date.now();
  for (;;) {
    onPoll();
    const queued = execFileSync('squeue', ['-h', '-j', jobIds.join(','), '-o', '%i'], { encoding: 'utf8' }).trim();
    if (!queued) return states(jobIds);
    const stuck = [...states(jobIds)].filter(([, s]) => s.reason === 'DependencyNeverSatisfied');
    if (stuck.length) throw new Error(`jobs whose dependencies failed: ${stuck.map(([id]) => id).join(', ')}`);
    if (Date.now() - started > WAIT_MS) throw new Error(`still queued after ${WAIT_MS / 60000} minutes: ${queued.replace(/\n/g, ' ')}`);
    await sleep(1000);
  }
}

/** "<id>: computed|reused|skipped" lines of run-piece in every task log. */
function pieceRuns(dir: string): string[] {
  const logs = path.join(dir, 'slurm', 'logs');
  return fs
    .readdirSync(logs)
    .flatMap((f) => fs.readFileSync(path.join(logs, f), 'utf8').split('\n'))
    .filter((l) => /^[a-z]+\/\S+: (computed|reused|skipped)/.test(l));
}

let serialResults: unknown;
const timings: string[] = [];

slurmTest('the tiny study as Slurm job arrays: every task completes and results.json has the numbers of a serial run', async () => {
  const serial = path.join(tmp, 'serial');
  let t0 = Date.now();
  const s = tempered(['study', ...TINY, '--out', serial, '--quiet']);
  expect(s.status).toBe(0);
  timings.push(`serial: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  serialResults = comparableResults(readJson(path.join(serial, 'results.json')));

  const dir = path.join(tmp, 'array');
  t0 = Date.now();
  const jobs = submit(dir);
  expect([...jobs.keys()]).toEqual(['teachers', 'students', 'attacks', 'transfers', 'gradients', 'diagnoses', 'report']);
  const final = await waitForJobs([...jobs.values()]);
  timings.push(`array: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  const plan = readJson(path.join(dir, 'plan.json'));
  expect(final.size).toBe(plan.pieces.length + 1);
  expect([...final].filter(([, st]) => st.state !== 'COMPLETED')).toEqual([]);
  expect(comparableResults(readJson(path.join(dir, 'results.json')))).toEqual(serialResults);
  expect(pieceRuns(dir).filter((l) => / computed/.test(l))).toHaveLength(plan.pieces.length);
  console.warn(`test/slurm.test.ts, the tiny study on this machine: ${timings.join(', ')} (${plan.pieces.length} pieces)`);
});

slurmTest(
  'kill -9 of a training mid-piece: its task requeues itself, that piece is redone, nothing else is, the numbers are the same',
  async () => {
    expect(serialResults).toBeDefined();
    const dir = path.join(tmp, 'killed');
    const jobs = submit(dir);
    const lock = path.join(dir, 'models', 'T20-s0-stdT.safetensors.lock');
    const model = path.join(dir, 'models', 'T20-s0-stdT.safetensors');
    // Task 1 of the teachers' array trains T = 20 (plan order); it holds the lock while it trains.
    const task = `${jobs.get('teachers')}_1`;
    let killed: number | undefined;
    let released = false;
    const final = await waitForJobs([...jobs.values()], () => {
      if (killed === undefined && fs.existsSync(lock) && !fs.existsSync(model)) {
        try {
          killed = JSON.parse(fs.readFileSync(lock, 'utf8')).pid as number;
          process.kill(killed, 'SIGKILL');
        } catch {
          killed = undefined; // the lock was still being written, or its owner had just finished: next poll
        }
      }
      // Slurm holds a requeued job for a while (its begin time); let it start now rather than in two minutes.
      if (killed !== undefined && !released && states([jobs.get('teachers')!]).get(task)?.reason === 'BeginTime') {
        spawnSync('scontrol', ['update', `JobId=${task}`, 'StartTime=now']);
        released = true;
      }
    });
    expect(killed).toBeDefined();
    expect([...final].filter(([, st]) => st.state !== 'COMPLETED')).toEqual([]);
    const log = fs.readFileSync(path.join(dir, 'slurm', 'logs', `teachers-${task}.out`), 'utf8');
    expect(log).toMatch(/run-piece ended by signal 9; requeueing/);
    expect(log).toMatch(/removing the stale lock .*pid \d+ .* is dead/);
    const computed = pieceRuns(dir)
      .filter((l) => / computed/.test(l))
      .map((l) => l.split(':')[0]);
    const plan = readJson(path.join(dir, 'plan.json'));
    // Every piece computed once: the killed one by its requeued task, none twice.
    expect(computed.sort()).toEqual(plan.pieces.map((p: { id: string }) => p.id).sort());
    expect(comparableResults(readJson(path.join(dir, 'results.json')))).toEqual(serialResults);
  },
);
