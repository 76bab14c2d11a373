// The report figures read without hue alone and at a legible size: wherever colour tells the
// models apart, a dash or a point shape does too, and chart text is at least 12 px; the study
// draws an epsilon curve where its attacks differ only in their radius. Metadata of the
// Vega-Lite specs, then each spec drawn to SVG.
import * as fs from 'fs';
import * as path from 'path';
import { reproduceFigures } from '../lib/experiment';
import { studyDocument } from '../lib/experiment/study/document';
import { checkStudyResults } from '../lib/experiment/study/load';
import { specToSvg } from '../lib/experiment/render/vega';
import { epsilonGroups, studyFigures } from '../lib/experiment/study/figures';
import type { StudyResults } from '../lib/experiment/study/results';
import { fixture } from './reproduce-fixture';

type Spec = Record<string, unknown>;

/** Every object nested in `spec` (itself included). */
function objects(spec: unknown, out: Spec[] = []): Spec[] {
  if (spec && typeof spec === 'object') {
    if (!Array.isArray(spec)) out.push(spec as Spec);
    for (const v of Object.values(spec as Spec)) objects(v, out);
  }
  return out;
}

function fontSizes(spec: Spec): number[] {
  return objects(spec.config).flatMap((o) =>
    Object.entries(o)
      .filter(([k]) => /fontsize$/i.test(k))
      .map(([, v]) => v as number),
  );
}

function studyFixture(): StudyResults {
  const attacks = ['pgd-0.1', 'pgd-0.2', 'pgd-0.3', 'alg2-margin'];
  const rows = attacks.flatMap((attack, k) =>
    (['stdT', 'distill'] as const).flatMap((kind) =>
      [1, 20].map((temperature) => ({
        attack,
        model: `${kind}-${temperature}`,
        kind,
        temperature,
        seed: 0,
        attacked: 50,
        successes: 10 + 10 * k,
        successRate: (10 + 10 * k) / 50,
        interval: { low: 0, high: 1 },
        settings: {},
        seconds: 1,
        producedBy: null,
      })),
    ),
  );
  const models = (['stdT', 'distill'] as const).flatMap((kind) =>
    [1, 20].map((temperature) => ({
      id: `${kind}-${temperature}`,
      name: `${kind} T=${temperature}`,
      kind,
      temperature,
      seed: 0,
      testAccuracy: 0.98,
    })),
  );
  return {
    profile: { temperatures: [1, 20], attacks, nearChance: 0.5 },
    attacks: rows,
    models,
    gradients: [],
  } as unknown as StudyResults;
}

describe('figures', () => {
  const reproduce = reproduceFigures(fixture());
  const study = studyFigures(studyFixture());

  test.each([...reproduce, ...study].map((f) => [f.id, f] as const))('%s: text of at least 12 px', (_id, f) => {
    const sizes = fontSizes(f.spec);
    expect(sizes.length).toBeGreaterThanOrEqual(4); // axis and legend labels and titles at least
    for (const s of sizes) expect(s).toBeGreaterThanOrEqual(12);
  });

  test.each([...reproduce, ...study].map((f) => [f.id, f] as const))('%s: models told apart by more than hue', (_id, f) => {
    // Lines and points (a band's faint fill is read through its line).
    for (const layer of objects(f.spec).filter((o) => o.mark && o.encoding)) {
      const mark = typeof layer.mark === 'string' ? layer.mark : (layer.mark as Spec).type;
      const e = layer.encoding as Record<string, Spec | undefined>;
      if (mark === 'area' || e.color?.field !== 'model') continue;
      expect([e.strokeDash?.field, e.shape?.field]).toContain('model');
    }
  });

  test('the reproduce budget figures dash each model line differently', () => {
    const line = objects(reproduce.find((f) => f.id === 'success-by-budget-alg2')!.spec).find(
      (o) => (o.mark as Spec | undefined)?.type === 'line',
    )!;
    expect((line.encoding as Spec).strokeDash).toEqual(expect.objectContaining({ field: 'model' }));
  });

  test("the study draws PGD's success against ε, one point per radius", async () => {
    expect(epsilonGroups(['pgd-0.1', 'pgd-0.2', 'pgd-0.3', 'fgsm-0.3', 'alg2-margin'])).toEqual([
      {
        label: 'PGD margin',
        attacks: [
          { id: 'pgd-0.1', epsilon: 0.1 },
          { id: 'pgd-0.2', epsilon: 0.2 },
          { id: 'pgd-0.3', epsilon: 0.3 },
        ],
      },
    ]);
    const f = study.find((x) => x.id === 'success-vs-epsilon')!;
    expect(f).toBeDefined();
    const values = (f.spec.data as { values: { epsilon: number; rate: number; model: string; T: string }[] }).values;
    expect(values).toHaveLength(3 * 2 * 2);
    expect(values.filter((v) => v.T === '20' && v.model.startsWith('M_distill')).map((v) => [v.epsilon, v.rate])).toEqual([
      [0.1, 0.2],
      [0.2, 0.4],
      [0.3, 0.6],
    ]);
    // The study's page places it: a tiny real study (T = 1 and 20, 1 epoch on 2,000 images, 20
    // samples, pgd-0.1/0.2/0.3; its figures left out, computed here).
    const raw = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'study-pgd-epsilons.json'), 'utf8')) as Record<string, unknown>;
    const tiny = checkStudyResults(raw, (why) => new Error(why));
    tiny.figures = studyFigures(tiny);
    const blocks = studyDocument(tiny).blocks;
    expect(blocks.some((b) => b.kind === 'figure' && b.figure.id === 'success-vs-epsilon')).toBe(true);
    const svg = await specToSvg(f.id, f.spec);
    expect(svg).toMatch(/^<svg/);
    expect(svg).toContain('L∞ radius ε');
  });
});
