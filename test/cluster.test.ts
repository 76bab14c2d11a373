// A study as pieces (no scheduler needed): `study --plan` writes the same plan.json byte for
// byte, every piece run alone with run-piece and then merged by `tempered report` gives the
// numbers of a serial run, a piece whose dependency is missing or was made with other
// settings is refused with a coded error, two copies of one piece at once compute it once,
// a stale lock is removed, and the Slurm scripts and Kubernetes manifests say what they must
// (the manifests checked by a structural validator of the batch/v1 Job fields they use: no
// Kubernetes cluster runs here). test/slurm.test.ts runs the scripts on a real Slurm.
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { k8sManifests } from '../lib/cluster/k8s';
import { slurmScripts } from '../lib/cluster/slurm';
import { runPlannedPiece } from '../lib/experiment/planned';
import { Plan, withPieceLock } from '../lib/experiment/plan';
import { codeVersion } from '../lib/experiment/pieces';
import { comparableResults, validateIndexedJob } from './cluster-helpers';

jest.setTimeout(1800000);

const cli = path.join(__dirname, '..', 'bin', 'tempered.js');
// Every kind of piece: trainings, direct attacks, a transfer (and its source), gradients.
const TINY = [
  '--temperatures',
  '1,20',
  '--epochs',
  '1',
  '--train-limit',
  '1000',
  '--samples',
  '4',
  '--attacks',
  'fgsm-0.3,transfer-pgd-0.3',
  '--near-chance',
  '0',
  '--threads',
  '2',
];
// Every process of the test (the Slurm tasks inherit sbatch's environment) records the commit of the test's start, so an
// edit of the checkout while it runs cannot make the provenance of the serial run and of the pieces differ.
const code = codeVersion();
process.env.TEMPERED_COMMIT = `${code.commit}${code.dirty ? '+dirty' : ''}`;

let tmp: string;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tempered-cluster-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const tempered = (args: string[], env: NodeJS.ProcessEnv = process.env) =>
  spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env });
const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8'));

function planned(name: string): { dir: string; plan: Plan } {
  const dir = path.join(tmp, name);
  const r = tempered(['study', ...TINY, '--out', dir, '--plan', '--quiet']);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return { dir, plan: readJson(path.join(dir, 'plan.json')) };
}

test('study --plan: every piece with its file and dependencies, stages in order, the same bytes for the same options, nothing computed', () => {
  const { dir, plan } = planned('plan-a');
  const again = planned('plan-b');
  expect(fs.readFileSync(path.join(again.dir, 'plan.json'))).toEqual(fs.readFileSync(path.join(dir, 'plan.json')));
  expect(plan.stages.map((s) => [s.name, s.after, s.pieces.length])).toEqual([
    ['teachers', [], 2],
    ['students', ['teachers'], 2],
    ['attacks', ['teachers', 'students'], 5],
    ['transfers', ['teachers', 'students', 'attacks'], 3],
    ['gradients', ['teachers', 'students'], 4],
    ['diagnoses', ['teachers', 'students'], 4],
  ]);
  const byId = new Map(plan.pieces.map((p) => [p.id, p]));
  expect(byId.get('train/T20-s0-distill')!.needs).toEqual(['train/T20-s0-stdT']);
  // The transfer's source is an attack piece of its own (pgd-0.3 is not a direct attack here) with its images kept.
  expect(byId.get('attack/T1-s0-stdT-pgd-0.3')!.inputs).toMatchObject({ keepImages: true, rows: [] });
  expect(byId.get('transfer/T20-s0-stdT-transfer-pgd-0.3')!.needs).toEqual(['attack/T1-s0-stdT-pgd-0.3', 'train/T20-s0-stdT']);
  expect(byId.get('gradients/T1-s0-stdT')!.needs).toHaveLength(4);
  // The diagnosis needs its model, and M_std of the seed as the transfer's surrogate (M_std's own trains one).
  expect(byId.get('diagnose/T20-s0-distill')!.needs).toEqual(['train/T20-s0-distill', 'train/T1-s0-stdT']);
  expect(byId.get('diagnose/T1-s0-stdT')!).toMatchObject({ needs: ['train/T1-s0-stdT'], inputs: { samples: 4, surrogate: null } });
  expect(byId.get('attack/T20-s0-distill-fgsm-0.3')!.file).toBe('attacks/T20-s0-distill-fgsm-0.3.json');
  // Other options, another plan.
  const other = path.join(tmp, 'plan-c');
  expect(tempered(['study', ...TINY.map((a) => (a === '4' ? '5' : a)), '--out', other, '--plan', '--quiet']).status).toBe(0);
  expect(fs.readFileSync(path.join(other, 'plan.json'), 'utf8')).not.toBe(fs.readFileSync(path.join(dir, 'plan.json'), 'utf8'));
  expect(fs.readdirSync(path.join(dir, 'models'))).toEqual([]);
});

test('run-piece refuses a piece whose dependency is missing, and an unknown piece, with TEMPERED_PLAN', () => {
  const { dir } = planned('refused');
  const r = tempered(['run-piece', dir, 'attack/T1-s0-stdT-fgsm-0.3', '--quiet']);
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/\[TEMPERED_PLAN\].*train\/T1-s0-stdT.*is missing/);
  expect(fs.existsSync(path.join(dir, 'attacks', 'T1-s0-stdT-fgsm-0.3.json'))).toBe(false);
  expect(tempered(['run-piece', dir, 'attack/nothing', '--quiet']).stderr).toMatch(/TEMPERED_PLAN.*no piece 'attack\/nothing'/);
  expect(tempered(['run-piece', dir, '--stage', 'attacks', '--index', '9', '--quiet']).stderr).toMatch(/TEMPERED_PLAN.*pieces 0\.\.4/);
  expect(tempered(['run-piece', path.join(tmp, 'no-plan-here'), 'train/T1-s0-stdT']).stderr).toMatch(/TEMPERED_PLAN.*plan\.json/);
});

test('every piece run alone, in plan order, then `tempered report`: the numbers of a serial run', () => {
  const serial = path.join(tmp, 'serial');
  expect(tempered(['study', ...TINY, '--out', serial, '--quiet']).status).toBe(0);
  const { dir, plan } = planned('pieces');
  for (const stage of plan.stages)
    stage.pieces.forEach((id, index) => {
      // Half by id, half as an array task does it (stage and index from the environment).
      const args = index % 2 ? [id] : ['--stage', stage.name, '--index-env', 'TASK_INDEX'];
      const r = tempered(['run-piece', dir, ...args, '--threads', '2', '--json', '--quiet'], { ...process.env, TASK_INDEX: String(index) });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ id, status: 'computed' });
    });
  // Run again: reused, not recomputed.
  const again = tempered(['run-piece', dir, 'transfer/T1-s0-distill-transfer-pgd-0.3', '--json', '--quiet']);
  expect(JSON.parse(again.stdout).status).toBe('reused');
  const report = tempered(['report', dir]);
  expect(report.status).toBe(0);
  expect(comparableResults(readJson(path.join(dir, 'results.json')))).toEqual(
    comparableResults(readJson(path.join(serial, 'results.json'))),
  );
  expect(fs.existsSync(path.join(dir, 'report.html'))).toBe(true);
  const leftovers = fs.readdirSync(dir, { recursive: true }).map(String);
  expect(leftovers.filter((f) => f.endsWith('.lock') || f.endsWith('.tmp') || f.endsWith('.checkpoint'))).toEqual([]);
});

test('reproduce --plan: its pieces run alone (in this process) and merged give the numbers of a serial reproduce', async () => {
  const REPRODUCE = [
    '--epochs',
    '1',
    '--train-limit',
    '700',
    '--samples',
    '6',
    '--alg4-samples',
    '1',
    '--budget',
    '6',
    '--pictures',
    '2',
    '--seed',
    '3',
  ];
  const serial = path.join(tmp, 'reproduce-serial');
  expect(tempered(['reproduce', ...REPRODUCE, '--out', serial, '--quiet']).status).toBe(0);
  const dir = path.join(tmp, 'reproduce-pieces');
  const r = tempered(['reproduce', ...REPRODUCE, '--out', dir, '--plan', '--json']);
  expect(r.status).toBe(0);
  const plan: Plan = JSON.parse(r.stdout);
  expect(fs.readFileSync(path.join(dir, 'plan.json'), 'utf8')).toBe(JSON.stringify(plan, null, 2) + '\n');
  expect(plan.stages.map((s) => [s.name, s.after, s.pieces.length])).toEqual([
    ['teachers', [], 2],
    ['students', ['teachers'], 1],
    ['attacks', ['teachers', 'students'], 36],
    ['gradients', ['teachers', 'students'], 3],
    ['diagnoses', ['teachers', 'students'], 3],
    ['pictures', ['attacks'], 1],
  ]);
  await expect(runPlannedPiece(dir, { id: 'pictures/pictures' })).rejects.toMatchObject({ code: 'TEMPERED_PLAN' });
  for (const piece of plan.pieces) expect(await runPlannedPiece(dir, { id: piece.id })).toMatchObject({ id: piece.id, status: 'computed' });
  // The merge as the Slurm chain's last job runs it.
  expect(tempered(['report', dir]).status).toBe(0);
  const merged = readJson(path.join(dir, 'results.json'));
  const reference = readJson(path.join(serial, 'results.json'));
  expect(comparableResults(merged)).toEqual(comparableResults(reference));
  expect(fs.readFileSync(path.join(dir, 'pictures', 'adversarial-std.png'))).toEqual(
    fs.readFileSync(path.join(serial, 'pictures', 'adversarial-std.png')),
  );
});

test('a dependency produced with other settings is refused: a model trained at another T, an attack of other samples', () => {
  const dir = path.join(tmp, 'pieces');
  const models = path.join(dir, 'models');
  const attack = path.join(dir, 'attacks', 'T1-s0-stdT-pgd-0.3.json');
  fs.copyFileSync(path.join(models, 'T1-s0-stdT.safetensors'), path.join(tmp, 'T1.keep'));
  fs.copyFileSync(attack, path.join(tmp, 'attack.keep'));
  try {
    fs.copyFileSync(path.join(models, 'T20-s0-stdT.safetensors'), path.join(models, 'T1-s0-stdT.safetensors'));
    const r = tempered(['run-piece', dir, 'gradients/T1-s0-stdT', '--quiet']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/\[TEMPERED_INCOMPATIBLE\].*T1-s0-stdT\.safetensors was trained with other settings/);
    fs.copyFileSync(path.join(tmp, 'T1.keep'), path.join(models, 'T1-s0-stdT.safetensors'));
    fs.writeFileSync(attack, JSON.stringify({ ...readJson(attack), key: 'other samples' }));
    fs.rmSync(path.join(dir, 'transfers', 'T20-s0-stdT-transfer-pgd-0.3.json'));
    const t = tempered(['run-piece', dir, 'transfer/T20-s0-stdT-transfer-pgd-0.3', '--quiet']);
    expect(t.status).toBe(2);
    expect(t.stderr).toMatch(/\[TEMPERED_PLAN\].*attack\/T1-s0-stdT-pgd-0\.3.*produced with other settings/);
    expect(fs.existsSync(path.join(dir, 'transfers', 'T20-s0-stdT-transfer-pgd-0.3.json'))).toBe(false);
  } finally {
    fs.copyFileSync(path.join(tmp, 'T1.keep'), path.join(models, 'T1-s0-stdT.safetensors'));
    fs.copyFileSync(path.join(tmp, 'attack.keep'), attack);
  }
});

test('two copies of one piece at once: one computes it, the other waits for the lock and reuses it; the file is whole', async () => {
  const { dir } = planned('twice');
  const copy = () =>
    new Promise<{ status: number | null; stdout: string }>((resolve) => {
      const child = spawn(process.execPath, [cli, 'run-piece', dir, 'train/T1-s0-stdT', '--threads', '1', '--json', '--quiet']);
      let stdout = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.on('exit', (status) => resolve({ status, stdout }));
    });
  const both = await Promise.all([copy(), copy()]);
  expect(both.map((r) => r.status)).toEqual([0, 0]);
  expect(both.map((r) => JSON.parse(r.stdout).status).sort()).toEqual(['computed', 'reused']);
  expect(fs.readdirSync(path.join(dir, 'models'))).toEqual(['T1-s0-stdT.safetensors']);
  // The model loads: the student's piece can read it.
  expect(tempered(['run-piece', dir, 'train/T1-s0-distill', '--quiet']).status).toBe(0);
});

test('a lock left by a dead process is removed by the next run; a live one is waited for; a lock not refreshed for too long is stale', async () => {
  const { dir } = planned('stale');
  const lock = path.join(dir, 'models', 'T20-s0-stdT.safetensors.lock');
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  fs.writeFileSync(lock, JSON.stringify({ host: os.hostname(), pid: Number(dead.stdout), startedAt: new Date().toISOString() }));
  const r = tempered(['run-piece', dir, 'train/T20-s0-stdT', '--json']);
  expect(r.status).toBe(0);
  expect(r.stderr).toMatch(/removing the stale lock .*its owner, pid \d+ on .* is dead/);
  expect(JSON.parse(r.stdout).status).toBe('computed');
  expect(fs.existsSync(lock)).toBe(false);

  // In-process: a holder on another host is judged by the lock's age alone.
  const file = path.join(tmp, 'locked-piece.json');
  fs.writeFileSync(`${file}.lock`, JSON.stringify({ host: 'some-other-node', pid: 1, startedAt: '' }));
  const messages: string[] = [];
  const order: string[] = [];
  const waiting = withPieceLock(file, async () => order.push('second'), { staleAfterMs: 1500, pollMs: 50, log: (m) => messages.push(m) });
  await new Promise((resolve) => setTimeout(resolve, 500));
  order.push('still waiting after 0.5 s');
  await waiting;
  expect(order).toEqual(['still waiting after 0.5 s', 'second']);
  expect(messages[0]).toMatch(/waiting for .*held by pid 1 on some-other-node/);
  expect(messages[1]).toMatch(/not refreshed for \d+ s/);
  expect(fs.existsSync(`${file}.lock`)).toBe(false);
  // Work that throws still removes the lock.
  await expect(
    withPieceLock(file, async () => {
      throw new Error('boom');
    }),
  ).rejects.toThrow('boom');
  expect(fs.existsSync(`${file}.lock`)).toBe(false);
});

test('tempered slurm: one array per stage with its pieces, afterok on the ids sbatch returned, a report job last', () => {
  const { dir, plan } = planned('slurm-scripts');
  // A stand-in sbatch that records its arguments and answers "id;cluster" as --parsable does.
  const fake = path.join(tmp, 'fake-sbatch');
  const calls = path.join(tmp, 'sbatch-calls');
  fs.writeFileSync(fake, `#!/bin/bash\necho "$@" >> ${calls}\necho "$((100 + $(wc -l < ${calls})));cluster"\n`, { mode: 0o755 });
  const r = tempered([
    'slurm',
    dir,
    '--partition',
    'gpu',
    '--gpus-per-task',
    '1',
    '--max-parallel',
    '3',
    '--time',
    '01:30:00',
    '--submit',
    '--sbatch',
    fake,
  ]);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/submitted teachers: job 101\n.*students: job 102/);
  const sbatch = fs.readFileSync(calls, 'utf8').trim().split('\n');
  const folder = path.join(dir, 'slurm');
  expect(sbatch).toEqual([
    `--parsable ${folder}/01-teachers.sbatch`,
    `--parsable --dependency=afterok:101 ${folder}/02-students.sbatch`,
    `--parsable --dependency=afterok:101:102 ${folder}/03-attacks.sbatch`,
    `--parsable --dependency=afterok:101:102:103 ${folder}/04-transfers.sbatch`,
    `--parsable --dependency=afterok:101:102 ${folder}/05-gradients.sbatch`,
    `--parsable --dependency=afterok:101:102 ${folder}/06-diagnoses.sbatch`,
    `--parsable --dependency=afterok:101:102:103:104:105:106 ${folder}/07-report.sbatch`,
  ]);
  const attacks = fs.readFileSync(path.join(folder, '03-attacks.sbatch'), 'utf8');
  for (const line of ['--array=0-4%3', '--requeue', '--partition=gpu', '--gpus-per-task=1', '--time=01:30:00'])
    expect(attacks).toContain(`#SBATCH ${line}\n`);
  expect(attacks).toMatch(/run-piece \S+ --stage attacks --index "\$SLURM_ARRAY_TASK_ID"/);
  expect(attacks).toContain('scontrol requeue');
  expect(fs.readFileSync(path.join(folder, '07-report.sbatch'), 'utf8')).toMatch(/ report \S+slurm-scripts\n/);
  expect(fs.readFileSync(path.join(folder, '07-report.sbatch'), 'utf8')).not.toContain('--gpus-per-task');
  // The scripts are a pure function of the plan and the options.
  expect(slurmScripts(plan, dir, { partition: 'gpu' }).files).toEqual(slurmScripts(plan, dir, { partition: 'gpu' }).files);
  expect(tempered(['slurm', dir, '--time', 'soon']).stderr).toMatch(/TEMPERED_OUT_OF_RANGE.*--time/);
  // A task as Slurm runs it, outside Slurm: array index 1 of the teachers.
  const task = spawnSync('bash', [path.join(folder, '01-teachers.sbatch')], {
    encoding: 'utf8',
    env: { ...process.env, SLURM_ARRAY_TASK_ID: '1' },
  });
  expect(task.status).toBe(0);
  expect(fs.existsSync(path.join(dir, 'models', 'T20-s0-stdT.safetensors'))).toBe(true);
  expect(fs.existsSync(path.join(dir, 'models', 'T1-s0-stdT.safetensors'))).toBe(false);
});

test('tempered k8s: Indexed Jobs per stage that pass the batch/v1 structural validator; the validator catches broken ones', () => {
  const { dir, plan } = planned('k8s');
  const r = tempered([
    'k8s',
    dir,
    '--image',
    'registry.example/tempered:0.1',
    '--pvc',
    'studies',
    '--gpus-per-task',
    '1',
    '--max-parallel',
    '2',
  ]);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const folder = path.join(dir, 'k8s');
  const files = fs.readdirSync(folder).sort();
  expect(files).toEqual([
    '01-teachers.json',
    '02-students.json',
    '03-attacks.json',
    '04-transfers.json',
    '05-gradients.json',
    '06-diagnoses.json',
    '07-report.json',
    'apply.sh',
  ]);
  for (const f of files.filter((x) => x.endsWith('.json') && x !== '07-report.json')) {
    const job = readJson(path.join(folder, f));
    expect(validateIndexedJob(job)).toEqual([]);
    const stage = plan.stages.find((s) => f.endsWith(`-${s.name}.json`))!;
    expect(job.spec).toMatchObject({ completionMode: 'Indexed', completions: stage.pieces.length, parallelism: 2 });
    expect(job.spec.template.spec.containers[0].args).toEqual([
      'run-piece',
      '/data/k8s',
      '--stage',
      stage.name,
      '--index-env',
      'JOB_COMPLETION_INDEX',
      '--quiet',
    ]);
    expect(job.spec.template.spec.containers[0].resources.limits['nvidia.com/gpu']).toBe(1);
  }
  expect(validateIndexedJob(readJson(path.join(folder, '07-report.json')), { indexed: false })).toEqual([]);
  const apply = fs.readFileSync(path.join(folder, 'apply.sh'), 'utf8');
  expect(apply.indexOf('03-attacks.json')).toBeLessThan(apply.indexOf('job/tempered-k8s-attacks'));
  expect(apply.indexOf('job/tempered-k8s-attacks')).toBeLessThan(apply.indexOf('04-transfers.json'));

  const good = k8sManifests(plan, dir, { image: 'x', pvc: 'p' })[2].manifest as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  const broken = JSON.parse(JSON.stringify(good));
  broken.metadata.name = 'Tempered_Attacks';
  broken.spec.completionMode = 'indexed';
  broken.spec.template.spec.restartPolicy = 'Always';
  broken.spec.template.spec.containers[0].volumeMounts[0].name = 'elsewhere';
  broken.spec.parallelizm = 2;
  expect(validateIndexedJob(broken)).toEqual([
    'metadata.name: Tempered_Attacks is not a DNS-1123 label of at most 63 characters',
    'spec: unknown field parallelizm',
    'spec.completionMode: indexed is not one of NonIndexed, Indexed',
    'spec.template.spec.restartPolicy: a Job pod restarts Never or OnFailure, not Always',
    'spec.template.spec.containers[0].volumeMounts[0].name: elsewhere names no volume',
  ]);
  expect(tempered(['k8s', dir, '--image', 'x', '--pvc', 'Not A Claim']).stderr).toMatch(/TEMPERED_OUT_OF_RANGE.*--pvc/);
});
