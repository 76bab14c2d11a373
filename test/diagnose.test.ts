// tempered diagnose: the rules on hand-made numbers (every verdict reachable, the inconclusive
// and not-evaluated cases), then the battery on the published M_std-T (masking: float32
// gradients all zero, the battery succeeding where the paper's float32 Algorithm 2 fails) and
// on a model trained at T = 1 (no sign of masking), then the command: --json parsed, bad
// options refused with their codes before any work, the HTML page written.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  BATTERY,
  checkDiagnoseOptions,
  decideVerdict,
  diagnose,
  Diagnosis,
  evaluateRules,
  RuleInputs,
  StepRole,
  availableSteps,
} from '../lib/diagnose';
import { loadMnist, MnistData } from '../lib/mnist';
import { Model } from '../lib/model';
import { wilsonInterval } from '../lib/stats';
import { briefModels } from './attack-models';
import { caughtAsync, expectError } from './helpers';

// Trainings and attacks on a shared machine: generous time, never a failure on wall time.
jest.setTimeout(1200000);

const root = path.join(__dirname, '..');
const cli = path.join(root, 'bin', 'tempered.js');
const STD_T = path.join(root, 'docs/results/paper/models/stdT.safetensors');
const STD = path.join(root, 'docs/results/paper/models/std.safetensors');

let data: MnistData;
let tmp: string;
beforeAll(async () => {
  data = await loadMnist();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tempered-diagnose-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

// ---------------------------------------------------------------- the rules on hand-made numbers

function step(id: string, roles: StepRole[], successes: number, attacked = 50): RuleInputs['steps'][number] {
  return { id, label: id, roles, attacked, successes, successRate: successes / attacked, interval: wilsonInterval(successes, attacked) };
}
function curve(last: number, attacked = 50): RuleInputs['steps'][number] {
  const points = [0.3, 1].map((epsilon, k) => ({
    epsilon,
    attacked,
    successes: k === 0 ? Math.min(last, 40) : last,
    successRate: (k === 0 ? Math.min(last, 40) : last) / attacked,
    interval: wilsonInterval(k === 0 ? Math.min(last, 40) : last, attacked),
  }));
  return { ...step('curve', ['curve'], points[0].successes, attacked), byEpsilon: points };
}
/** A model with no sign of masking: PGD beats FGSM, every loss alike, the curve reaches 100%. */
function clean(): RuleInputs {
  return {
    attacked: 50,
    zeroGradients: 0,
    steps: [
      step('fgsm', ['single-step'], 20),
      step('pgd-xent32', ['iterative', 'xent'], 45),
      step('pgd-margin', ['non-saturating'], 46),
      step('square', ['black-box'], 40),
      step('transfer', ['transfer'], 30),
      curve(50),
    ],
    worstCase: { samples: 52, robust: 4, attacks: ['fgsm', 'pgd-xent32', 'pgd-margin', 'square', 'transfer', 'curve'] },
    epsilon: 0.3,
  };
}
const replace = (x: RuleInputs, id: string, s: RuleInputs['steps'][number]): RuleInputs => ({
  ...x,
  steps: x.steps.map((t) => (t.id === id ? s : t)),
});
const statusOf = (x: RuleInputs) => Object.fromEntries(evaluateRules(x).map((r) => [r.id, r.status]));

test('no sign of masking when every rule is evaluated and clean; rule 7 is the worst-case robust accuracy', () => {
  const rules = evaluateRules(clean());
  expect(rules.map((r) => [r.id, r.status])).toEqual([
    [1, 'clean'],
    [2, 'clean'],
    [3, 'clean'],
    [4, 'clean'],
    [5, 'clean'],
    [6, 'clean'],
    [7, 'measured'],
  ]);
  const v = decideVerdict(rules);
  expect(v.verdict).toBe('no sign of masking');
  expect(v.rule).toBe('rules 1, 2, 3, 4, 5, 6: none found a sign');
  expect(v.fired).toEqual([]);
  const r7 = rules.find((r) => r.id === 7)!;
  expect(r7.numbers).toMatchObject({ robust: 4, samples: 52, robustAccuracy: 4 / 52, interval: wilsonInterval(4, 52) });
});

test.each<[string, (x: RuleInputs) => RuleInputs, number]>([
  ['rule 1: most float32 gradients are exactly zero', (x) => ({ ...x, zeroGradients: 30 }), 1],
  [
    'rule 2: FGSM beats PGD on the same loss',
    (x) => replace(replace(x, 'fgsm', step('fgsm', ['single-step'], 49)), 'pgd-xent32', step('pgd-xent32', ['iterative', 'xent'], 30)),
    2,
  ],
  [
    'rule 3: Square beats the white-box cross-entropy attacks',
    (x) => replace(replace(x, 'pgd-xent32', step('pgd-xent32', ['iterative', 'xent'], 25)), 'square', step('square', ['black-box'], 45)),
    3,
  ],
  ['rule 4: a survivor at epsilon 1', (x) => replace(x, 'curve', curve(49)), 4],
  [
    'rule 5: transfer beats white-box',
    (x) =>
      replace(
        replace(replace(x, 'pgd-xent32', step('pgd-xent32', ['iterative', 'xent'], 10)), 'square', step('square', ['black-box'], 12)),
        'fgsm',
        step('fgsm', ['single-step'], 5),
      ),
    5,
  ],
  [
    'rule 6: the margin beats the cross-entropy',
    (x) =>
      replace(
        replace(replace(x, 'pgd-xent32', step('pgd-xent32', ['iterative', 'xent'], 10)), 'square', step('square', ['black-box'], 12)),
        'transfer',
        step('transfer', ['transfer'], 11),
      ),
    6,
  ],
])('masking by %s', (_name, change, rule) => {
  const x = change(clean());
  const rules = evaluateRules(x);
  const v = decideVerdict(rules);
  expect(v.verdict).toBe('robustness is gradient masking');
  expect(v.fired[0]).toBe(rule);
  expect(v.rule).toMatch(new RegExp(`^rule ${rule}: `));
  expect(rules.find((r) => r.id === rule)!.status).toBe('masking');
  expect(v.because).toBe(
    rules.find((r) => r.id === rule)!.evidence.concat(v.fired.length > 1 ? `; also rule ${v.fired.slice(1).join(', ')}` : ''),
  );
});

test('a gap whose intervals overlap is inconclusive, and so is a zero share above the threshold whose interval reaches below it', () => {
  // 12/20 against 8/20: a gap of 20 points, the intervals overlap.
  const x = clean();
  const overlap: RuleInputs = {
    ...x,
    attacked: 20,
    steps: [step('fgsm', ['single-step'], 12, 20), step('pgd-xent32', ['iterative', 'xent'], 8, 20), curve(20, 20)],
  };
  expect(statusOf(overlap)[2]).toBe('inconclusive');
  const v = decideVerdict(evaluateRules(overlap));
  expect(v.verdict).toBe('inconclusive');
  expect(v.rule).toMatch(/^rule 2: /);
  // A smaller gap (under 10 points) is not a sign either way: clean.
  expect(statusOf({ ...overlap, steps: [step('fgsm', ['single-step'], 9, 20), ...overlap.steps.slice(1)] })[2]).toBe('clean');
  // 2 of 20 all-zero: 10% > 5%, but the interval starts at 2.8%.
  expect(statusOf({ ...x, attacked: 20, zeroGradients: 2 })[1]).toBe('inconclusive');
  expect(statusOf({ ...x, attacked: 20, zeroGradients: 1 })[1]).toBe('clean');
});

test('a rule without its attacks is "not evaluated", never clean; no rule at all is inconclusive', () => {
  const x = clean();
  const noSquare = { ...x, steps: x.steps.filter((s) => s.id !== 'square') };
  const rules = evaluateRules(noSquare);
  expect(rules.find((r) => r.id === 3)!.status).toBe('not evaluated');
  const v = decideVerdict(rules);
  expect(v.verdict).toBe('no sign of masking');
  expect(v.notEvaluated).toEqual([3]);
  expect(v.rule).toBe('rules 1, 2, 4, 5, 6: none found a sign');
  expect(v.because).toMatch(/not evaluated: rule 3$/);
  const nothing = decideVerdict(
    evaluateRules({ attacked: 0, zeroGradients: 0, steps: [], worstCase: { samples: 3, robust: 0, attacks: [] }, epsilon: 0.3 }),
  );
  expect(nothing.verdict).toBe('inconclusive');
});

test('bad options are refused with a code before any work', async () => {
  expectError(await caughtAsync(async () => checkDiagnoseOptions({ epsilon: 0 })), 'RangeError', 'TEMPERED_OUT_OF_RANGE', /epsilon/);
  expectError(await caughtAsync(async () => checkDiagnoseOptions({ epsilon: 1.5 })), 'RangeError', 'TEMPERED_OUT_OF_RANGE', /epsilon/);
  expectError(await caughtAsync(async () => checkDiagnoseOptions({ epsilon: NaN })), 'RangeError', 'TEMPERED_NOT_FINITE', /epsilon/);
  expectError(
    await caughtAsync(async () => checkDiagnoseOptions({ temperature: -1 })),
    'RangeError',
    'TEMPERED_OUT_OF_RANGE',
    /temperature/,
  );
  expectError(await caughtAsync(async () => checkDiagnoseOptions({ samples: 0 })), 'RangeError', 'TEMPERED_OUT_OF_RANGE', /samples/);
  expectError(await caughtAsync(async () => checkDiagnoseOptions({ samples: [] })), 'RangeError', 'TEMPERED_INVALID_LENGTH', /samples/);
  expectError(await caughtAsync(async () => checkDiagnoseOptions({ seed: 1.5 })), 'RangeError', 'TEMPERED_OUT_OF_RANGE', /seed/);
  const model = Model.create({ seed: 1 });
  expectError(await caughtAsync(() => diagnose(model, { data, samples: [3, 3] })), 'RangeError', 'TEMPERED_OUT_OF_RANGE', /repeated/);
  expectError(await caughtAsync(() => diagnose(model, { data, samples: 10001 })), 'RangeError', 'TEMPERED_OUT_OF_RANGE', /samples/);
  expectError(await caughtAsync(() => diagnose({} as Model, { data })), 'TypeError', 'TEMPERED_INVALID_TYPE', /model/);
  model.dispose();
});

// ---------------------------------------------------------------- the battery on real models

const N = 20;
let stdT: Diagnosis;

test('the published M_std-T: masking, float32 gradients all zero on most samples, the battery succeeding where float32 Algorithm 2 fails', async () => {
  const model = await Model.load(STD_T);
  stdT = await diagnose(model, { data, samples: N, seed: 0, surrogateImages: 5000 });
  expect(stdT.verdict).toBe('robustness is gradient masking');
  expect(stdT.fired).toContain(1);
  expect(stdT.rule).toMatch(/^rule 1: /);
  const g = stdT.gradients.find((x) => x.temperature === 1 && x.precision === 'float32')!;
  expect(g.samples).toBe(stdT.accuracy.correct);
  expect(g.zeroSamples / g.samples).toBeGreaterThan(0.5);
  // float64 has no all-zero gradient: the zeros are float32's saturation, not a flat model.
  expect(stdT.gradients.find((x) => x.temperature === 1 && x.precision === 'float64')!.zeroSamples).toBe(0);
  // The samples: the same draw for every step, alg2 float32 mostly failing, the battery's worst case fooling them.
  expect(stdT.samples.map((s) => s.index)).toEqual(stdT.settings.indices);
  const alg2 = stdT.steps.find((s) => s.id === 'alg2-xent32')!;
  expect(alg2.successRate).toBeLessThan(0.5);
  const alg2Failed = stdT.samples.filter((s) => s.correct && !s.fooledBy.includes('alg2-xent32'));
  const rescued = alg2Failed.filter((s) => !s.robust);
  expect(rescued.length).toBeGreaterThan(alg2Failed.length / 2);
  expect(stdT.worstCase.paperFailedBatterySucceeded).toBe(rescued.length);
  // The non-saturating attacks present in this build succeed where Algorithm 2 fails (APGD-DLR and Square once in the registry).
  for (const id of ['pgd-margin', 'apgd-dlr', 'square'].filter((s) => stdT.steps.some((x) => x.id === s)))
    expect(alg2Failed.filter((s) => s.fooledBy.includes(id)).length).toBeGreaterThan(alg2Failed.length / 2);
  // Worst case: robust only if every worst-case step failed, counted over every sample (misclassified ones are not robust).
  const robust = stdT.samples.filter((s) => s.correct && !s.fooledBy.some((id) => stdT.worstCase.attacks.includes(id))).length;
  expect(stdT.worstCase.robust).toBe(robust);
  expect(stdT.worstCase.interval).toEqual(wilsonInterval(robust, N));
  expect(stdT.worstCase.attacks).not.toContain('alg2-xent32');
  // What the JSON records.
  expect(stdT.model.trainingTemperature).toBe(20);
  expect(stdT.model.fingerprint).toMatch(/^[0-9a-f]{64}$/);
  expect(stdT.data.fingerprint).toBe(data.fingerprint);
  expect(stdT.backend.backend).toBe('cpu');
  expect(stdT.settings.missingAttacks).toEqual(BATTERY.filter((s) => !availableSteps().includes(s)).map((s) => s.id));
  model.dispose();
});

test('a model trained at T = 1: no sign of masking', async () => {
  const { std, hot } = await briefModels(data);
  hot.dispose();
  const d = await diagnose(std, { data, samples: N, seed: 0, surrogateImages: 5000 });
  expect(d.rules.filter((r) => r.status === 'masking')).toEqual([]);
  expect(d.verdict).toBe('no sign of masking');
  expect(d.gradients.find((x) => x.precision === 'float32')!.zeroSamples).toBe(0);
  const c = d.steps.find((s) => s.id === 'pgd-curve')!;
  expect(c.byEpsilon![c.byEpsilon!.length - 1]).toMatchObject({ epsilon: 1, successRate: 1 });
  std.dispose();
});

// ---------------------------------------------------------------- the command

const runCli = (args: string[]) => spawnSync(process.execPath, [cli, 'diagnose', ...args], { encoding: 'utf8' });

test('--json prints the diagnosis; --out writes diagnosis.json and the HTML page with the epsilon figure; exit 0', () => {
  const out = path.join(tmp, 'out');
  const r = runCli(['--model', STD_T, '--samples', '8', '--surrogate', STD, '--json', '--quiet', '--out', out]);
  expect(r.status).toBe(0);
  const d = JSON.parse(r.stdout) as Diagnosis & { page: string };
  expect(d.verdict).toBe('robustness is gradient masking');
  expect(d.settings.surrogate).toMatchObject({ source: 'given', file: STD });
  expect(d.settings.samples).toBe(8);
  const written = JSON.parse(fs.readFileSync(path.join(out, 'diagnosis.json'), 'utf8')) as Diagnosis;
  expect(written.verdict).toBe(d.verdict);
  expect(written.steps.map((s) => s.successes)).toEqual(d.steps.map((s) => s.successes));
  const html = fs.readFileSync(path.join(out, 'diagnosis.html'), 'utf8');
  expect(html).toContain('Verdict: robustness is gradient masking');
  expect(html).toContain('<svg');
  expect(html).toContain('id="figure-diagnosis-epsilon-curve"');
  expect(fs.existsSync(path.join(out, 'figures', 'diagnosis-epsilon-curve.svg'))).toBe(true);
  expect(fs.readFileSync(path.join(out, 'tables', 'diagnosis-rules.csv'), 'utf8')).toMatch(/^rule,finding,evidence\n1\. /);
  // The terminal's table without --json.
  const human = runCli(['--model', STD_T, '--samples', '8', '--surrogate', STD, '--quiet']);
  expect(human.status).toBe(0);
  expect(human.stdout).toMatch(/^verdict: robustness is gradient masking$/m);
  expect(human.stdout).toMatch(/^worst-case robust accuracy: /m);
});

test.each<[string[], number, string, RegExp]>([
  [['--epsilon', '0'], 2, 'TEMPERED_OUT_OF_RANGE', /epsilon/],
  [['--epsilon', '1.5'], 2, 'TEMPERED_OUT_OF_RANGE', /epsilon/],
  [['--temperature', '0'], 2, 'TEMPERED_OUT_OF_RANGE', /temperature/],
  [['--samples', '0'], 2, 'TEMPERED_INVALID_ARGUMENT', /--samples/],
  [['--samples', 'many'], 2, 'TEMPERED_INVALID_ARGUMENT', /--samples/],
  [['--seed', '-1'], 2, 'TEMPERED_INVALID_ARGUMENT', /--seed/],
])('diagnose %j is refused with exit %i and %s', (args, status, code, message) => {
  const out = path.join(tmp, `refused-${args.join('')}`);
  const r = runCli(['--model', STD_T, ...args, '--json', '--quiet', '--out', out]);
  expect(r.status).toBe(status);
  const e = JSON.parse(r.stdout) as { error: { code: string; message: string } };
  expect(e.error.code).toBe(code);
  expect(e.error.message).toMatch(message);
  expect(fs.existsSync(out)).toBe(false); // refused before anything is written
});

test('a missing model file or surrogate is refused with exit 2', () => {
  for (const args of [
    ['--model', path.join(tmp, 'none.safetensors')],
    ['--model', STD_T, '--surrogate', path.join(tmp, 'none.safetensors')],
  ]) {
    const r = runCli([...args, '--samples', '4', '--json', '--quiet']);
    expect(r.status).toBe(2);
    expect(JSON.parse(r.stdout).error.code).toBe('TEMPERED_IO');
  }
});
