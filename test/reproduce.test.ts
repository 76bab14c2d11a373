// tempered reproduce on a tiny configuration: it writes every piece with its commit and
// time, a rerun reuses them (another commit's only when asked), and a run killed with
// SIGKILL in the middle resumes, loses nothing and ends with the same numbers.
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { native } from '../lib/native';

const cli = path.join(__dirname, '..', 'bin', 'tempered.js');
const TINY = [
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
  '--quiet',
];
let tmp: string;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tempered-reproduce-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

// What must not depend on how the run was split: everything but timings and reuse flags.
function comparable(file: string): unknown {
  const r = JSON.parse(fs.readFileSync(file, 'utf8'));
  return {
    models: r.models.map((m: Record<string, unknown>) => ({ id: m.id, testAccuracy: m.testAccuracy, testLoss: m.testLoss })),
    samples: r.samples,
    attacks: r.attacks.map(({ seconds: _s, producedBy: _p, ...a }: Record<string, unknown>) => a),
    gradients: r.gradients.map(({ producedBy: _p, ...g }: Record<string, unknown>) => g),
  };
}

test('a tiny reproduce writes models, attacks, gradients, pictures and both reports', () => {
  const out = path.join(tmp, 'straight');
  const r = spawnSync(process.execPath, [cli, 'reproduce', ...TINY, '--out', out, '--json'], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const result = JSON.parse(r.stdout);
  expect(result.models.map((m: { name: string }) => m.name)).toEqual(['M_std', 'M_std-T', 'M_distill']);
  expect(result.attacks).toHaveLength(4 * 3 * 3);
  for (const f of [
    'results.json',
    'results.md',
    'models/std.safetensors',
    'models/stdT.safetensors',
    'models/distill.safetensors',
    'attacks/std-alg2-xent32.json',
    'attacks/distill-alg4-margin.json',
    'gradients/stdT.json',
  ])
    expect(fs.existsSync(path.join(out, f))).toBe(true);
  const md = fs.readFileSync(path.join(out, 'results.md'), 'utf8');
  expect(md).toMatch(/## What the numbers show/);
  expect(md).toMatch(/\| \*the paper \(float32 cross-entropy\)\* \|/);
  expect(md).toMatch(/seed 3/);
  const pictures = fs.readdirSync(path.join(out, 'pictures'));
  expect(pictures.filter((p) => p.endsWith('.png')).length).toBeGreaterThan(0);
  // The student records its teacher.
  const student = JSON.parse(
    JSON.parse(
      fs
        .readFileSync(path.join(out, 'models', 'distill.safetensors'))
        .subarray(8, 8 + Number(fs.readFileSync(path.join(out, 'models', 'distill.safetensors')).readBigUInt64LE(0)))
        .toString(),
    ).__metadata__.tempered,
  );
  expect(student.kind).toBe('distilled');
  expect(student.teacher.softLabelTemperature).toBe(20);
  // A rerun reuses everything and changes no number.
  const again = spawnSync(process.execPath, [cli, 'reproduce', ...TINY, '--out', out, '--json'], { encoding: 'utf8' });
  expect(again.status).toBe(0);
  const second = JSON.parse(again.stdout);
  expect(second.models.every((m: { reused: boolean }) => m.reused)).toBe(true);
  // Every stage has a time and the commit that produced it; the rerun marks them reused.
  expect(result.formatVersion).toBe(2);
  expect(result.stages.map((s: { stage: string }) => s.stage)).toEqual([
    ...new Array(3).fill('train'),
    ...new Array(36).fill('attack'),
    ...new Array(3).fill('gradients'),
    ...new Array(3).fill('diagnose'),
    'pictures',
    'render',
  ]);
  expect(
    result.stages.every(
      (s: { seconds: number; producedBy: { commit: string } }) => s.seconds >= 0 && s.producedBy.commit === result.code.commit,
    ),
  ).toBe(true);
  expect(second.stages.filter((s: { stage: string; reused: boolean }) => s.stage !== 'render' && !s.reused)).toEqual([]);
  expect(second.stages.slice(0, -1).map((s: { seconds: number }) => s.seconds)).toEqual(
    result.stages.slice(0, -1).map((s: { seconds: number }) => s.seconds),
  );
  expect(fs.existsSync(path.join(out, 'report.html'))).toBe(true);
  expect(md).toMatch(/## Stage times and the code that produced each piece/);
  // The pictures come from the attacks' own saliency maps and images, labelled on the page.
  expect(result.pictures.map((g: { id: string }) => g.id)).toEqual([
    'adversarial-std',
    'saliency-std',
    'adversarial-stdT',
    'saliency-stdT',
    'adversarial-distill',
    'saliency-distill',
  ]);
  expect(result.figures.map((f: { id: string }) => f.id)).toContain('success-by-budget-alg2');
  // The masking diagnosis of each model on the first samples (all 6 here), M_std crafting the others' transfer.
  expect(result.diagnoses.map((d: { model: string }) => d.model)).toEqual(['std', 'stdT', 'distill']);
  for (const { model, diagnosis } of result.diagnoses) {
    expect(diagnosis.settings.indices).toEqual(result.samples.indices);
    expect(diagnosis.settings.surrogate.source).toBe(model === 'std' ? 'trained' : 'given');
    expect(fs.existsSync(path.join(out, 'diagnoses', `${model}.json`))).toBe(true);
  }
  expect(md).toMatch(/## Masking diagnosis/);
  expect(fs.readFileSync(path.join(out, 'report.html'), 'utf8')).toContain('id="figure-diagnosis-stdT-epsilon-curve"');
});

test('pieces of another commit are recomputed, unless --reuse-other-commits; models are kept with their training commit', () => {
  const out = path.join(tmp, 'straight');
  const firstFile = path.join(tmp, 'first-results.json');
  fs.copyFileSync(path.join(out, 'results.json'), firstFile);
  const first = JSON.parse(fs.readFileSync(firstFile, 'utf8'));
  const env = { ...process.env, TEMPERED_COMMIT: 'feedface-test+dirty' };
  const reused = spawnSync(process.execPath, [cli, 'reproduce', ...TINY, '--out', out, '--json', '--reuse-other-commits'], {
    encoding: 'utf8',
    env,
  });
  expect(reused.status).toBe(0);
  const r1 = JSON.parse(reused.stdout);
  expect(r1.code).toEqual({ commit: 'feedface-test', dirty: true, source: 'env' });
  expect(r1.attacks.every((a: { producedBy: { commit: string } }) => a.producedBy.commit === first.code.commit)).toBe(true);
  const recomputed = spawnSync(process.execPath, [cli, 'reproduce', ...TINY, '--out', out, '--json'], { encoding: 'utf8', env });
  expect(recomputed.status).toBe(0);
  const r2 = JSON.parse(recomputed.stdout);
  expect(r2.models.map((m: { trainedBy: { commit: string } }) => m.trainedBy.commit)).toEqual([
    first.code.commit,
    first.code.commit,
    first.code.commit,
  ]);
  expect(
    r2.attacks.every(
      (a: { producedBy: { commit: string; dirty: boolean } }) => a.producedBy.commit === 'feedface-test' && a.producedBy.dirty,
    ),
  ).toBe(true);
  expect(r2.stages.filter((s: { stage: string; reused: boolean }) => s.stage === 'attack' && s.reused)).toEqual([]);
  // Same code path, same numbers.
  expect(comparable(path.join(out, 'results.json'))).toEqual(comparable(firstFile));
});

// The tensors of a model file (its metadata holds timings, which differ).
function tensorBytes(file: string): Buffer {
  const bytes = fs.readFileSync(file);
  return bytes.subarray(8 + Number(bytes.readBigUInt64LE(0)));
}

test('M_std and M_std-T trained side by side (2+ threads) equal --serial-training to the bit', () => {
  const straight = path.join(tmp, 'straight');
  const first = JSON.parse(fs.readFileSync(path.join(straight, 'results.json'), 'utf8'));
  const sideBySide = native.hardwareThreads() >= 2;
  if (!sideBySide) console.warn('reproduce.test: 1 hardware thread: the straight run trained one model at a time');
  const trains = first.stages.filter((x: { stage: string }) => x.stage === 'train');
  expect(trains.map((x: { alongside?: string[] }) => x.alongside ?? [])).toEqual(
    sideBySide ? [['train M_std-T'], ['train M_std'], []] : [[], [], []],
  );
  const out = path.join(tmp, 'serial');
  const r = spawnSync(process.execPath, [cli, 'reproduce', ...TINY, '--out', out, '--json', '--serial-training'], { encoding: 'utf8' });
  expect(r.status).toBe(0);
  const serial = JSON.parse(r.stdout);
  expect(serial.stages.filter((x: { alongside?: string[] }) => x.alongside)).toEqual([]);
  for (const m of ['std', 'stdT', 'distill'])
    expect(
      tensorBytes(path.join(out, 'models', `${m}.safetensors`)).equals(tensorBytes(path.join(straight, 'models', `${m}.safetensors`))),
    ).toBe(true);
  expect(comparable(path.join(out, 'results.json'))).toEqual(comparable(path.join(straight, 'results.json')));
});

test('kill -9 in the middle, then a rerun: nothing lost, same numbers as the uninterrupted run', async () => {
  const out = path.join(tmp, 'killed');
  const child = spawn(process.execPath, [cli, 'reproduce', ...TINY, '--out', out], { stdio: 'ignore' });
  // Kill once some attacks are written (the models are done by then).
  await new Promise<void>((resolve, reject) => {
    const started = Date.now();
    const poll = setInterval(() => {
      const dir = path.join(out, 'attacks');
      const n = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.json')).length : 0;
      if (n >= 5) {
        clearInterval(poll);
        child.kill('SIGKILL');
        resolve();
      } else if (child.exitCode !== null || Date.now() - started > 120000) {
        clearInterval(poll);
        reject(new Error(`the run ended or stalled before it could be killed (${n} attacks written)`));
      }
    }, 10);
  });
  await new Promise((r) => child.on('exit', r));
  expect(fs.existsSync(path.join(out, 'results.json'))).toBe(false);
  const before = fs.readdirSync(path.join(out, 'attacks')).filter((f) => f.endsWith('.json'));
  // No half-written piece: every file there parses.
  for (const f of before) expect(() => JSON.parse(fs.readFileSync(path.join(out, 'attacks', f), 'utf8'))).not.toThrow();
  const rerun = spawnSync(process.execPath, [cli, 'reproduce', ...TINY, '--out', out], { encoding: 'utf8' });
  expect(rerun.status).toBe(0);
  expect(comparable(path.join(out, 'results.json'))).toEqual(comparable(path.join(tmp, 'straight', 'results.json')));
});

test('a folder holding models of another configuration is refused, not mixed', () => {
  const out = path.join(tmp, 'straight');
  const r = spawnSync(process.execPath, [cli, 'reproduce', ...TINY.map((a) => (a === '700' ? '800' : a)), '--out', out], {
    encoding: 'utf8',
  });
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/TEMPERED_INCOMPATIBLE/);
  expect(r.stderr).toMatch(/another --out folder/);
});
