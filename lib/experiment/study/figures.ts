// The study's figures as Vega-Lite specs with their data inline (stored in results.json,
// drawn by the shared renderer): success against T per attack for both model kinds with the
// 95% Wilson band, test accuracy against T, and the mean input gradient against T. T is on
// a log axis; the captions and text alternatives are generated from the same numbers.
import { READABLE_TEXT } from '../figures';
import type { FigureRecord } from '../results';
import { KIND_NAMES, meanOf, pooledRate } from './aggregate';
import { studyAttack } from './profiles';
import type { StudyModelKind, StudyResults } from './results';

const VEGA_LITE_SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';
const KINDS: StudyModelKind[] = ['stdT', 'distill'];
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const tAxis = (temperatures: number[]) => ({
  field: 'T',
  type: 'quantitative',
  title: 'training temperature T (log scale)',
  scale: { type: 'log', domain: [Math.min(...temperatures), Math.max(...temperatures)] },
  axis: { values: temperatures },
});

function successFigure(r: StudyResults): FigureRecord | undefined {
  const values: Record<string, unknown>[] = [];
  const alt: string[] = [];
  const labels: string[] = [];
  for (const id of r.profile.attacks) {
    // The legend names attacks by their short ids (the tables give each id's full description).
    const label = id;
    labels.push(label);
    for (const kind of KINDS) {
      const points: string[] = [];
      for (const T of r.profile.temperatures) {
        const p = pooledRate(r, id, kind, T);
        if (!p) continue;
        values.push({
          attack: label,
          model: KIND_NAMES[kind],
          T,
          rate: p.rate,
          low: p.interval.low,
          high: p.interval.high,
          successes: p.successes,
          attacked: p.attacked,
        });
        points.push(`T=${T} ${pct(p.rate)}`);
      }
      if (points.length) alt.push(`${studyAttack(id).label}, ${KIND_NAMES[kind]}: ${points.join(', ')}.`);
    }
  }
  if (values.length === 0) return undefined;
  const colour = { field: 'attack', type: 'nominal', title: 'attack', sort: labels };
  return {
    id: 'success-vs-temperature',
    title: 'Attack success against the training temperature',
    caption:
      'Success rate of each attack (pooled over the seeds) on the models trained at T (left) and distilled at T (right), evaluated at T = 1; ' +
      'the band is the 95% Wilson interval; attacks by their ids, as in the tables. Models near chance are left out; a missing point means no model of that kind and T was attacked.',
    alt: `Attack success against T. ${alt.join(' ')}`,
    spec: {
      $schema: VEGA_LITE_SCHEMA,
      description: 'Attack success rate against the training temperature',
      data: { values },
      facet: { column: { field: 'model', type: 'nominal', title: null, sort: KINDS.map((k) => KIND_NAMES[k]) } },
      spec: {
        width: 330,
        height: 260,
        layer: [
          {
            mark: { type: 'area', opacity: 0.12 },
            encoding: {
              x: tAxis(r.profile.temperatures),
              y: { field: 'low', type: 'quantitative', title: 'success rate', axis: { format: '%' }, scale: { domain: [0, 1] } },
              y2: { field: 'high' },
              color: colour,
            },
          },
          {
            mark: { type: 'line', point: true, strokeWidth: 2 },
            encoding: { x: { field: 'T', type: 'quantitative' }, y: { field: 'rate', type: 'quantitative' }, color: colour },
          },
        ],
      },
      config: {
        ...READABLE_TEXT,
        legend: { ...READABLE_TEXT.legend, symbolType: 'stroke', symbolOpacity: 1, symbolStrokeWidth: 3, labelLimit: 320 },
      },
    },
  };
}

function accuracyFigure(r: StudyResults): FigureRecord | undefined {
  const trained = r.models.filter((m) => m.testAccuracy !== undefined);
  if (trained.length === 0) return undefined;
  const values = trained.map((m) => ({
    model: KIND_NAMES[m.kind],
    T: m.temperature,
    seed: m.seed,
    accuracy: m.testAccuracy,
    error: 1 - m.testAccuracy!,
  }));
  const alt = KINDS.map(
    (kind) =>
      `${KIND_NAMES[kind]}: ` +
      r.profile.temperatures
        .map((T) => {
          const a = meanOf(trained.filter((m) => m.kind === kind && m.temperature === T).map((m) => m.testAccuracy));
          return a === undefined ? `T=${T} not trained` : `T=${T} ${(100 * a).toFixed(2)}%`;
        })
        .join(', ') +
      '.',
  );
  const colour = { field: 'model', type: 'nominal', title: 'model', sort: KINDS.map((k) => KIND_NAMES[k]) };
  return {
    id: 'accuracy-vs-temperature',
    title: 'Test accuracy against the training temperature',
    caption:
      `Test error (1 − accuracy on the 10,000 test images at T = 1) of every model, one point per seed, the line through the mean; both axes log scale. ` +
      `Below ${pct(r.profile.nearChance)} accuracy (error above ${pct(1 - r.profile.nearChance)}) a model counts as near chance.`,
    alt: `Test accuracy against T. ${alt.join(' ')}`,
    spec: {
      $schema: VEGA_LITE_SCHEMA,
      description: 'Test error against the training temperature',
      data: { values },
      width: 420,
      height: 240,
      layer: [
        {
          mark: { type: 'point', filled: true, opacity: 0.6 },
          encoding: {
            shape: colour,
            x: tAxis(r.profile.temperatures),
            y: {
              field: 'error',
              type: 'quantitative',
              title: 'test error at T = 1 (log scale)',
              scale: { type: 'log' },
              axis: { format: '.1%' },
            },
            color: colour,
          },
        },
        {
          mark: { type: 'line' },
          encoding: {
            x: { field: 'T', type: 'quantitative' },
            y: { aggregate: 'mean', field: 'error', type: 'quantitative' },
            color: colour,
            strokeDash: colour,
          },
        },
      ],
      config: READABLE_TEXT,
    },
  };
}

function gradientFigure(r: StudyResults): FigureRecord | undefined {
  const values: Record<string, unknown>[] = [];
  const zeros: string[] = [];
  for (const g of r.gradients)
    for (const row of g.rows) {
      if (row.temperature !== 1) continue;
      if (row.meanAbs > 0)
        values.push({ model: KIND_NAMES[g.kind], precision: row.precision, T: g.temperature, seed: g.seed, meanAbs: row.meanAbs });
      else zeros.push(`${KIND_NAMES[g.kind]} T=${g.temperature} seed ${g.seed} ${row.precision}`);
    }
  if (values.length === 0) return undefined;
  const alt = KINDS.flatMap((kind) =>
    (['float32', 'float64'] as const).map(
      (precision) =>
        `${KIND_NAMES[kind]}, ${precision}: ` +
        r.profile.temperatures
          .map((T) => {
            const v = meanOf(
              values.filter((x) => x.model === KIND_NAMES[kind] && x.precision === precision && x.T === T).map((x) => x.meanAbs as number),
            );
            return v === undefined ? `T=${T} –` : `T=${T} ${v.toExponential(2)}`;
          })
          .join(', ') +
        '.',
    ),
  );
  const colour = { field: 'model', type: 'nominal', title: 'model', sort: KINDS.map((k) => KIND_NAMES[k]) };
  return {
    id: 'gradient-vs-temperature',
    title: 'Mean |dL/dx| against the training temperature',
    caption:
      'Mean absolute input gradient of the cross-entropy at evaluation temperature 1 on the samples every model of the seed classifies correctly, ' +
      'in float32 (solid) and float64 (dashed), the models told apart by colour and point shape; both axes log scale, the line through the mean over seeds.' +
      (zeros.length ? ` Exactly zero (not drawn on the log axis): ${zeros.join('; ')}.` : ''),
    alt: `Mean |dL/dx| against T. ${alt.join(' ')}`,
    spec: {
      $schema: VEGA_LITE_SCHEMA,
      description: 'Mean input gradient against the training temperature',
      data: { values },
      width: 420,
      height: 240,
      layer: [
        {
          mark: { type: 'point', filled: true, opacity: 0.6 },
          encoding: {
            x: tAxis(r.profile.temperatures),
            y: {
              field: 'meanAbs',
              type: 'quantitative',
              title: 'mean |dL/dx| (log scale)',
              scale: { type: 'log' },
              axis: { format: '.0e' },
            },
            color: colour,
            shape: colour, // the model, by shape as well as hue; the lines' dash is the precision
          },
        },
        {
          mark: { type: 'line' },
          encoding: {
            x: { field: 'T', type: 'quantitative' },
            y: { aggregate: 'mean', field: 'meanAbs', type: 'quantitative' },
            color: colour,
            strokeDash: { field: 'precision', type: 'nominal', title: 'precision' },
          },
        },
      ],
      config: READABLE_TEXT,
    },
  };
}

/**
 * The study's attacks that differ only in their L-infinity radius (pgd-0.1, pgd-0.2, pgd-0.3),
 * grouped: each group with two radii or more is an epsilon curve.
 */
export function epsilonGroups(attackIds: readonly string[]): { label: string; attacks: { id: string; epsilon: number }[] }[] {
  const groups = new Map<string, { id: string; epsilon: number }[]>();
  for (const id of attackIds) {
    const a = studyAttack(id);
    if (a.transferOf || a.parameters.epsilon === undefined) continue;
    const { epsilon, ...rest } = a.parameters;
    const key = JSON.stringify({ algorithm: a.algorithm, ...rest });
    groups.set(key, [...(groups.get(key) ?? []), { id, epsilon }]);
  }
  return [...groups.values()]
    .filter((g) => g.length >= 2)
    .map((g) => ({ label: studyAttack(g[0].id).label.replace(/,?\s*ε = [\d.]+/, ''), attacks: g.sort((x, y) => x.epsilon - y.epsilon) }));
}

function epsilonFigure(r: StudyResults): FigureRecord | undefined {
  const values: Record<string, unknown>[] = [];
  const alt: string[] = [];
  const groups = epsilonGroups(r.profile.attacks);
  for (const g of groups)
    for (const kind of KINDS)
      for (const T of r.profile.temperatures) {
        const points: string[] = [];
        for (const { id, epsilon } of g.attacks) {
          const p = pooledRate(r, id, kind, T);
          if (!p) continue;
          values.push({
            attack: g.label,
            model: KIND_NAMES[kind],
            T: String(T),
            epsilon,
            rate: p.rate,
            low: p.interval.low,
            high: p.interval.high,
          });
          points.push(`ε=${epsilon} ${pct(p.rate)}`);
        }
        if (points.length) alt.push(`${g.label}, ${KIND_NAMES[kind]}, T=${T}: ${points.join(', ')}.`);
      }
  if (values.length === 0) return undefined;
  // Nominal, not ordinal: Vega-Lite warns when a point shape encodes an ordered field.
  const temperature = { field: 'T', type: 'nominal', title: 'training T', sort: r.profile.temperatures.map(String) };
  const epsilonAxis = {
    field: 'epsilon',
    type: 'quantitative',
    title: 'L∞ radius ε',
    axis: { values: [...new Set(values.map((v) => v.epsilon))] },
  };
  return {
    id: 'success-vs-epsilon',
    title: 'Attack success against the radius ε',
    caption:
      `${groups.map((g) => g.label).join('; ')}: success rate (pooled over the seeds) against the L∞ radius, one line per training temperature, ` +
      'models trained at T (left) and distilled at T (right); the band is the 95% Wilson interval.',
    alt: `Attack success against ε. ${alt.join(' ')}`,
    spec: {
      $schema: VEGA_LITE_SCHEMA,
      description: 'Attack success rate against the L-infinity radius',
      data: { values },
      facet: {
        row: { field: 'attack', type: 'nominal', title: null },
        column: { field: 'model', type: 'nominal', title: null, sort: KINDS.map((k) => KIND_NAMES[k]) },
      },
      spec: {
        width: 300,
        height: 220,
        layer: [
          {
            mark: { type: 'area', opacity: 0.1 },
            encoding: {
              x: epsilonAxis,
              y: { field: 'low', type: 'quantitative', title: 'success rate', axis: { format: '%' }, scale: { domain: [0, 1] } },
              y2: { field: 'high' },
              color: temperature,
            },
          },
          {
            mark: { type: 'line', point: true, strokeWidth: 2 },
            encoding: {
              x: { field: 'epsilon', type: 'quantitative' },
              y: { field: 'rate', type: 'quantitative' },
              color: temperature,
              shape: temperature,
            },
          },
        ],
      },
      config: READABLE_TEXT,
    },
  };
}

/** The figures of a study, computed from its numbers. */
export function studyFigures(r: StudyResults): FigureRecord[] {
  return [successFigure(r), epsilonFigure(r), accuracyFigure(r), gradientFigure(r)].filter((f): f is FigureRecord => f !== undefined);
}
