// tempered study on a tiny configuration (T = 1 and 20, 1,000 training images, 8 samples, a
// subset of the attacks): the rates in results.json are those of the stored records, a rerun
// reuses every piece, a run killed with SIGKILL resumes with the same numbers, a model below
// the near-chance threshold is reported and never attacked, and bad input is refused with a
// coded error before anything is written.
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { STUDY_PROFILES, trainingSettings } from '../lib/experiment/study/profiles';

// Trainings and attacks run in child processes on a shared machine: generous time, never a failure on wall time.
jest.setTimeout(1800000);

const cli = path.join(__dirname, '..', 'bin', 'tempered.js');
const ATTACKS = 'alg2-xent32,alg2-xent32-T,pgd-0.1,fgsm-0.3,apgd-dlr-0.3,transfer-pgd-0.3';
const TINY = [
  '--temperatures',
  '1,20',
  '--epochs',
  '1',
  '--train-limit',
  '1000',
  '--samples',
  '8',
  '--attacks',
  ATTACKS,
  '--quiet',
  '--near-chance',
  '0',
];
let tmp: string;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tempered-study-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const run = (args: string[]) => spawnSync(process.execPath, [cli, 'study', ...args], { encoding: 'utf8' });
const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8'));

// Everything but timings, reuse flags and the near-chance status.
function comparable(file: string): unknown {
  const r = readJson(file);
  return {
    models: r.models.map((m: Record<string, unknown>) => ({ id: m.id, testAccuracy: m.testAccuracy, testLoss: m.testLoss })),
    samples: r.samples,
    attacks: r.attacks.map(({ seconds: _s, producedBy: _p, ...a }: Record<string, unknown>) => a),
    gradients: r.gradients.map(({ producedBy: _p, ...g }: Record<string, unknown>) => g),
  };
}

test('training settings per T: the paper at T = 1, loss scale T at every T > 1, learning rate capped at 1 / T', () => {
  for (const p of [STUDY_PROFILES.quick, STUDY_PROFILES.paper]) {
    expect(trainingSettings(p, 1)).toEqual({ lossScale: 1, learningRate: 0.1 });
    expect(trainingSettings(p, 2)).toEqual({ lossScale: 2, learningRate: 0.02 });
    expect(trainingSettings(p, 50)).toEqual({ lossScale: 50, learningRate: 0.02 });
    // 0.02 kills every ReLU in the first epoch at T = 100 (profiles.ts, STUDY_PROBES).
    expect(trainingSettings(p, 100)).toEqual({ lossScale: 100, learningRate: 0.01 });
    expect(trainingSettings(p, 400)).toEqual({ lossScale: 400, learningRate: 0.0025 });
  }
});

test('a tiny study trains both kinds at each T, attacks every model, and its rates are those of the stored records; a rerun reuses everything', () => {
  const out = path.join(tmp, 'straight');
  const r = run([...TINY, '--out', out, '--json']);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const result = JSON.parse(r.stdout);
  expect(result.kind).toBe('study');
  expect(result.models.map((m: { id: string }) => m.id)).toEqual(['T1-s0-stdT', 'T1-s0-distill', 'T20-s0-stdT', 'T20-s0-distill']);
  expect(result.trainingSettings).toEqual([
    { temperature: 1, lossScale: 1, learningRate: 0.1 },
    { temperature: 20, lossScale: 20, learningRate: 0.02 },
  ]);
  // 4 models x 5 direct attacks, and the transfer from M_std to the 3 others.
  expect(result.attacks).toHaveLength(4 * 5 + 3);
  for (const row of result.attacks) {
    if (row.attack.startsWith('transfer-')) {
      const t = readJson(path.join(out, 'transfers', `${row.model}-${row.attack}.json`));
      expect(row.attacked).toBe(t.records.filter((x: { counted: boolean }) => x.counted).length);
      expect(row.successes).toBe(t.records.filter((x: { success: boolean }) => x.success).length);
      continue;
    }
    // Algorithm 2 at "the training T" shares the piece of the T = 1 attack on the T = 1 models.
    const canonical = row.attack === 'alg2-xent32-T' && row.temperature === 1 ? 'alg2-xent32' : row.attack;
    const piece = readJson(path.join(out, 'attacks', `${row.model}-${canonical}.json`));
    const attacked = piece.records.filter((x: { attacked: boolean }) => x.attacked);
    expect(piece.records).toHaveLength(8);
    expect(row.attacked).toBe(attacked.length);
    expect(row.successes).toBe(attacked.filter((x: { success: boolean }) => x.success).length);
    expect(row.settings.temperature).toBe(row.attack === 'alg2-xent32-T' ? row.temperature : 1);
    if (row.attack.startsWith('alg2'))
      expect(row.common.successes).toBe(attacked.filter((x: { success: boolean; pixels: number }) => x.success && x.pixels <= 100).length);
    expect(row.interval.low).toBeLessThanOrEqual(row.successRate);
    expect(row.interval.high).toBeGreaterThanOrEqual(row.successRate);
  }
  expect(fs.existsSync(path.join(out, 'attacks', 'T1-s0-stdT-alg2-xent32-T.json'))).toBe(false);
  expect(result.gradients).toHaveLength(4);
  // Worst case at ε = 0.3 over the study's attacks at that radius (fgsm-0.3, apgd-dlr-0.3 and the transfer here): robust when classified correctly and fooled by none.
  expect(result.worstCase).toHaveLength(4);
  type Outcome = { index: number; attacked?: boolean; success: boolean };
  for (const w of result.worstCase) {
    const direct = ['fgsm-0.3', 'apgd-dlr-0.3'];
    expect(w.attacks).toEqual(w.model === 'T1-s0-stdT' ? direct : [...direct, 'transfer-pgd-0.3']);
    const records = (kind: string, id: string) => readJson(path.join(out, kind, `${w.model}-${id}.json`)).records as Outcome[];
    const fooled = [
      ...direct.map((id) => records('attacks', id)),
      ...(w.attacks.includes('transfer-pgd-0.3') ? [records('transfers', 'transfer-pgd-0.3')] : []),
    ];
    const correct = records('attacks', 'fgsm-0.3').filter((x) => x.attacked);
    const robust = correct.filter((x) => fooled.every((list) => !list.some((y) => y.index === x.index && y.success))).length;
    expect({ robust: w.robust, samples: w.samples }).toEqual({ robust, samples: 8 });
  }
  // Every model's masking diagnosis, on the first samples of the study's draw, M_std of the seed as the others' surrogate.
  expect(result.diagnoses.map((d: { model: string }) => d.model)).toEqual(result.models.map((m: { id: string }) => m.id));
  for (const { model, diagnosis } of result.diagnoses) {
    expect(['robustness is gradient masking', 'no sign of masking', 'inconclusive']).toContain(diagnosis.verdict);
    expect(diagnosis.settings.indices).toEqual(result.samples.indices.slice(0, 8));
    expect(diagnosis.settings.surrogate.source).toBe(model === 'T1-s0-stdT' ? 'trained' : 'given');
    expect(readJson(path.join(out, 'diagnoses', `${model}.json`)).diagnosis.verdict).toBe(diagnosis.verdict);
  }
  expect(result.figures.map((f: { id: string }) => f.id)).toEqual([
    'success-vs-temperature',
    'accuracy-vs-temperature',
    'gradient-vs-temperature',
  ]);
  const md = fs.readFileSync(path.join(out, 'results.md'), 'utf8');
  expect(md).toMatch(/## What the numbers show/);
  expect(md).toMatch(/## Training settings per temperature/);
  expect(md).toMatch(/### Headline: M_std-T \/ M_distill\(T\)/);
  expect(md).toMatch(/## Worst-case robust accuracy/);
  expect(md).toMatch(/## Masking diagnosis per model/);
  expect(fs.existsSync(path.join(out, 'report.html'))).toBe(true);
  expect(fs.existsSync(path.join(out, 'figures', 'success-vs-temperature.svg'))).toBe(true);

  fs.copyFileSync(path.join(out, 'results.json'), path.join(tmp, 'first-results.json'));
  const again = run([...TINY, '--out', out, '--json']);
  expect(again.status).toBe(0);
  const second = JSON.parse(again.stdout);
  expect(second.models.every((m: { reused: boolean }) => m.reused)).toBe(true);
  expect(second.stages.filter((s: { stage: string; reused: boolean }) => s.stage !== 'render' && !s.reused)).toEqual([]);
  expect(comparable(path.join(out, 'results.json'))).toEqual(comparable(path.join(tmp, 'first-results.json')));
  // tempered report renders a study again from results.json alone.
  const md2 = fs.readFileSync(path.join(out, 'results.md'), 'utf8');
  fs.rmSync(path.join(out, 'results.md'));
  const report = spawnSync(process.execPath, [cli, 'report', out], { encoding: 'utf8' });
  expect(report.status).toBe(0);
  expect(fs.readFileSync(path.join(out, 'results.md'), 'utf8')).toBe(md2);
});

test('a model below the near-chance threshold is reported and never attacked; its student is not trained', () => {
  const out = path.join(tmp, 'straight');
  const first = readJson(path.join(out, 'results.json'));
  // The threshold just above every model but the best M_std-T: the others are "near chance".
  const teachers = first.models.filter((m: { kind: string }) => m.kind === 'stdT');
  const best = teachers.reduce((a: { testAccuracy: number }, b: { testAccuracy: number }) => (b.testAccuracy > a.testAccuracy ? b : a));
  const r = run([...TINY.slice(0, -1), String(best.testAccuracy), '--out', out, '--json']);
  expect(r.status).toBe(0);
  const result = JSON.parse(r.stdout);
  const other = result.models.find((m: { kind: string; id: string }) => m.kind === 'stdT' && m.id !== best.id);
  expect(other.status).toBe('near-chance');
  expect(result.models.find((m: { id: string }) => m.id === other.id.replace('stdT', 'distill')).status).toBe('teacher-near-chance');
  expect(result.attacks.filter((a: { model: string }) => a.model === other.id || a.model === other.id.replace('stdT', 'distill'))).toEqual(
    [],
  );
  expect(result.attacks.filter((a: { model: string }) => a.model === best.id).length).toBeGreaterThan(0);
  expect(result.gradients.map((g: { model: string }) => g.model)).not.toContain(other.id);
  expect(fs.readFileSync(path.join(out, 'results.md'), 'utf8')).toMatch(/\*\*near chance\*\*/);
});

test('kill -9 in the middle of the attacks, then a rerun: same numbers as the uninterrupted run', async () => {
  const out = path.join(tmp, 'killed');
  // The trained models are copied (training resumption is tested with reproduce); the attacks are killed.
  fs.mkdirSync(out);
  fs.cpSync(path.join(tmp, 'straight', 'models'), path.join(out, 'models'), { recursive: true });
  fs.copyFileSync(path.join(tmp, 'straight', 'study.json'), path.join(out, 'study.json'));
  const child = spawn(process.execPath, [cli, 'study', ...TINY, '--out', out], { stdio: 'ignore' });
  await new Promise<void>((resolve, reject) => {
    const started = Date.now();
    const poll = setInterval(() => {
      const dir = path.join(out, 'attacks');
      const n = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.json')).length : 0;
      if (n >= 3) {
        clearInterval(poll);
        child.kill('SIGKILL');
        resolve();
      } else if (child.exitCode !== null || Date.now() - started > 300000) {
        clearInterval(poll);
        reject(new Error(`the run ended or stalled before it could be killed (${n} attacks written)`));
      }
    }, 10);
  });
  await new Promise((r) => child.on('exit', r));
  expect(fs.existsSync(path.join(out, 'results.json'))).toBe(false);
  for (const f of fs.readdirSync(path.join(out, 'attacks')).filter((x) => x.endsWith('.json')))
    expect(() => JSON.parse(fs.readFileSync(path.join(out, 'attacks', f), 'utf8'))).not.toThrow();
  const rerun = run([...TINY, '--out', out]);
  expect(rerun.status).toBe(0);
  expect(comparable(path.join(out, 'results.json'))).toEqual(comparable(path.join(tmp, 'first-results.json')));
});

test('a folder made with other settings is refused, not mixed', () => {
  const r = run([...TINY.map((a) => (a === '1000' ? '900' : a)), '--out', path.join(tmp, 'straight')]);
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/TEMPERED_INCOMPATIBLE/);
  expect(r.stderr).toMatch(/another --out folder/);
});

test.each([
  [['--attacks', 'pgd-0.3,cw'], 'TEMPERED_OUT_OF_RANGE', /unknown attack 'cw'/],
  [['--temperatures', '1,0'], 'TEMPERED_OUT_OF_RANGE', /temperatures\[1\]/],
  [['--temperatures=1,-5'], 'TEMPERED_OUT_OF_RANGE', /temperatures\[1\]/],
  [['--temperatures', '1,Infinity'], 'TEMPERED_NOT_FINITE', /temperatures\[1\]/],
  [['--temperatures', '1,20,1'], 'TEMPERED_OUT_OF_RANGE', /holds 1 twice/],
  [['--samples', '0'], 'TEMPERED_OUT_OF_RANGE', /samples/],
  [['--epochs', '0'], 'TEMPERED_OUT_OF_RANGE', /epochs/],
  [['--seeds', '0'], 'TEMPERED_OUT_OF_RANGE', /seeds/],
  [['--seeds', '-2'], 'TEMPERED_OUT_OF_RANGE', /seeds/],
])('bad input %j is refused with %s and nothing is written', (args, code, message) => {
  const out = path.join(tmp, 'refused');
  const r = run(['--out', out, '--quiet', ...args]);
  expect(r.status).toBe(2);
  expect(r.stderr).toContain(code);
  expect(r.stderr).toMatch(message);
  expect(fs.existsSync(out)).toBe(false);
});
