// PGD and FGSM at several radii in one call (`epsilons`): each radius gives success and
// robust accuracy with Wilson intervals, and equals what separate calls at each radius give
// (a sample fooled at a smaller radius counts as fooled at the larger ones); steps are
// reported as steps, not pixels; nonsense is refused.
import { AttackResult, AttackSummary, checkAttackOptions, readSummary, runAttack } from '../lib/attack';
import { checkStudyResults } from '../lib/experiment/study/load';
import type { StudyResults } from '../lib/experiment/study/results';
import { loadMnist, MnistData } from '../lib/mnist';
import { Model } from '../lib/model';
import { wilsonInterval } from '../lib/stats';
import { briefModels } from './attack-models';
import { caught, expectError } from './helpers';

let data: MnistData;
let std: Model;
const samples = Array.from({ length: 40 }, (_, i) => i);
const epsilons = [0.02, 0.05, 0.1];

beforeAll(async () => {
  data = await loadMnist();
  ({ std } = await briefModels(data));
});

describe.each(['pgd', 'fgsm'] as const)('%s with epsilons', (alg) => {
  test('each radius equals separate calls, fooled-at-a-smaller-radius counted', async () => {
    const steps = alg === 'pgd' ? { steps: 5, stepSize: 0.01 } : {};
    const curve = await runAttack(std, alg, { data, samples, epsilons: [0.1, 0.02, 0.05], ...steps });
    const single: AttackResult[] = [];
    for (const epsilon of epsilons) single.push(await runAttack(std, alg, { data, samples, epsilon, ...steps })); // a model runs one call at a time
    const points = curve.summary.byEpsilon!;
    expect(points.map((p) => p.epsilon)).toEqual(epsilons); // sorted
    points.forEach((p, k) => {
      // Fooled within eps_k: fooled by a separate call at some eps_j <= eps_k (same seed, same random starts).
      const fooled = samples.filter((_, i) => single.slice(0, k + 1).some((s) => s.records[i].success)).length;
      expect(p.successes).toBe(fooled);
      expect(p.attacked).toBe(single[k].summary.attacked);
      expect(p.samples).toBe(samples.length);
      expect(p.successRate).toBeCloseTo(fooled / p.attacked, 12);
      expect(p.interval).toEqual(wilsonInterval(fooled, p.attacked));
      expect(p.robustAccuracy).toBeCloseTo((p.attacked - fooled) / samples.length, 12);
      expect(p.robustInterval).toEqual(wilsonInterval(p.attacked - fooled, samples.length));
      // Only the samples not yet fooled are attacked again.
      const before = k === 0 ? 0 : points[k - 1].successes;
      expect(p.attackedHere).toBe(p.attacked - before);
    });
    for (let k = 1; k < points.length; k++) expect(points[k].successes).toBeGreaterThanOrEqual(points[k - 1].successes);
    // The records: the smallest radius that fooled each sample, else the largest; the summary is the largest radius.
    expect(curve.summary.epsilon).toBe(0.1);
    expect(curve.summary.epsilons).toEqual(epsilons);
    expect(curve.summary.successes).toBe(points[2].successes);
    curve.records.forEach((rec, i) => {
      const first = single.findIndex((s) => s.records[i].success);
      if (!rec.attacked) return;
      expect(rec.epsilon).toBe(first >= 0 ? epsilons[first] : 0.1);
      expect(rec.linf!).toBeLessThanOrEqual(rec.epsilon! + 1e-6);
    });
    // Something moved: the brief model is fooled more at 0.1 than at 0.02.
    expect(points[2].successes).toBeGreaterThan(points[0].successes);
  });

  test('steps are reported as steps, not pixels', async () => {
    const r = await runAttack(std, alg, { data, samples: 20, epsilon: 0.3 });
    expect(r.summary.successes).toBeGreaterThan(0);
    expect(r.summary.meanSteps).toBeGreaterThanOrEqual(0);
    expect(r.summary.medianSteps).toBeDefined();
    expect(r.summary.meanPixels).toBeUndefined();
    expect(r.summary.medianPixels).toBeUndefined();
  });
});

describe('epsilons nonsense is refused', () => {
  test.each([
    ['both epsilon and epsilons', 'pgd', { epsilon: 0.3, epsilons: [0.1] }, /epsilon or epsilons/],
    ['an empty list', 'fgsm', { epsilons: [] }, /epsilons must not be empty/],
    ['a radius above 1', 'pgd', { epsilons: [0.1, 1.5] }, /epsilons\[1\]/],
    ['a radius of 0', 'fgsm', { epsilons: [0] }, /epsilons\[0\]/],
    ['a repeated radius', 'pgd', { epsilons: [0.1, 0.1] }, /repeated/],
    ['epsilons for alg2', 'alg2', { epsilons: [0.1] }, /epsilons.*alg2/],
  ])('%s', (_name, alg, opts, message) => {
    const e = caught(() => checkAttackOptions(alg, opts));
    expect(e.message).toMatch(message);
    expect(e.code).toMatch(/TEMPERED_OUT_OF_RANGE|TEMPERED_INVALID_LENGTH/);
  });
  test('not an array', () => {
    expectError(
      caught(() => checkAttackOptions('pgd', { epsilons: 0.1 as unknown as number[] })),
      'TypeError',
      'TEMPERED_INVALID_TYPE',
      /epsilons/,
    );
  });
});

describe('results of earlier versions, which held the step counts as meanPixels, still read', () => {
  const old = { algorithm: 'pgd', budgetUnit: 'steps', budget: 40, meanPixels: 3.5, medianPixels: 3 } as Partial<AttackSummary>;
  test('an attack summary', () => {
    expect(readSummary(old)).toEqual({ algorithm: 'pgd', budgetUnit: 'steps', budget: 40, meanSteps: 3.5, medianSteps: 3 });
    const pixels = { ...old, algorithm: 'alg2', budgetUnit: 'pixels' } as Partial<AttackSummary>;
    expect(readSummary(pixels)).toBe(pixels);
  });
  test("a study's rows", () => {
    const row = (unit: string) => ({
      attack: 'x',
      attacked: 10,
      successes: 5,
      interval: { low: 0, high: 1 },
      meanPixels: 2,
      medianPixels: 2,
      settings: { budgetUnit: unit },
    });
    const raw = {
      profile: { temperatures: [1], attacks: [] },
      seeds: [0],
      trainingSettings: [],
      probes: [],
      machine: {},
      data: {},
      samples: {},
      code: {},
      models: [],
      attacks: [row('steps'), row('pixels')],
      gradients: [],
      stages: [],
      figures: [],
    } as unknown as Record<string, unknown>;
    const r: StudyResults = checkStudyResults(raw, (why) => new Error(why));
    expect(r.attacks[0]).toEqual(expect.objectContaining({ meanSteps: 2, medianSteps: 2 }));
    expect(r.attacks[0].meanPixels).toBeUndefined();
    expect(r.attacks[1]).toEqual(expect.objectContaining({ meanPixels: 2, medianPixels: 2 }));
  });
});
