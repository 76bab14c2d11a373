// The figures of a reproduce run as Vega-Lite specs with their data inline. Every number a
// figure shows is computed here, by the experiment, and stored in results.json (the
// renderer only draws the spec): the success rate per budget with its 95% Wilson interval,
// the training curves per epoch. Captions and text alternatives come from the same numbers.
import { wilsonInterval } from '../stats';
import { ALGORITHMS, ATTACK_SETTINGS } from './profiles';
import type { AttackRow, ExperimentResults, FigureRecord, ModelResult } from './results';

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const VEGA_LITE_SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';

/** Chart text of at least 12 px (Vega-Lite's defaults are 10-11 px), for every figure of the reports. */
export const READABLE_TEXT = {
  axis: { labelFontSize: 12, titleFontSize: 12 },
  legend: { labelFontSize: 12, titleFontSize: 12 },
  header: { labelFontSize: 12, titleFontSize: 13 },
  title: { fontSize: 14 },
} as const;

/** The models told apart by the line's dash and the point's shape as well as by hue (colour-blind readers, greyscale print). */
export function modelEncodings(names: string[]): Record<string, unknown> {
  const field = { field: 'model', type: 'nominal', title: 'model', sort: names };
  return { color: field, strokeDash: field, shape: field };
}

export interface BudgetPoint {
  model: string;
  loss: string;
  budget: number;
  rate: number;
  low: number;
  high: number;
  successes: number;
  attacked: number;
}

/** Success rate at every budget 1..budget with its 95% Wilson interval (successes are exact: rate x attacked). */
export function budgetCurve(a: AttackRow, model: string, loss: string): BudgetPoint[] {
  return a.successRateByBudget.map((rate, k) => {
    const successes = Math.round(rate * a.attacked);
    const { low, high } = wilsonInterval(successes, a.attacked);
    return { model, loss, budget: k + 1, rate, low, high, successes, attacked: a.attacked };
  });
}

function budgetFigure(r: Pick<ExperimentResults, 'attacks' | 'models' | 'profile'>, alg: string): FigureRecord | undefined {
  const rows = r.attacks.filter((a) => a.algorithm === alg);
  if (rows.length === 0) return undefined;
  const values: BudgetPoint[] = [];
  const alt: string[] = [];
  for (const s of ATTACK_SETTINGS) {
    const parts: string[] = [];
    for (const m of r.models) {
      const a = rows.find((x) => x.model === m.id && x.setting === s.id);
      if (!a) continue;
      if (a.attacked === 0) {
        parts.push(`${m.name} not drawn (no sample attacked)`);
        continue;
      }
      const curve = budgetCurve(a, m.name, s.label);
      values.push(...curve);
      const last = curve[curve.length - 1];
      const at10 = curve[Math.min(9, curve.length - 1)];
      if (last)
        parts.push(
          `${m.name} ${pct(last.rate)} [${pct(last.low)}, ${pct(last.high)}] of ${last.attacked} at ${last.budget} pixels` +
            ` (${pct(at10.rate)} at ${at10.budget})`,
        );
    }
    if (parts.length) alt.push(`${s.label}: ${parts.join('; ')}.`);
  }
  const number = alg.replace('alg', '');
  const budget = r.profile.budget;
  return {
    id: `success-by-budget-${alg}`,
    title: `Algorithm ${number}: success rate against the pixel budget`,
    caption:
      `Algorithm ${number}: the fraction of attacked samples misclassified within each budget of 1 to ${budget} changed pixels, ` +
      "one panel per loss the attack follows, one line per model; the band is the 95% Wilson interval of each budget's rate. " +
      'A model none of whose samples was attacked (all misclassified to begin with) has no line.',
    alt: `Success rate of Algorithm ${number} against the pixel budget. ${alt.join(' ')}`,
    spec: {
      $schema: VEGA_LITE_SCHEMA,
      description: `Algorithm ${number}: success rate against the pixel budget`,
      data: { values },
      facet: { column: { field: 'loss', type: 'nominal', title: null, sort: ATTACK_SETTINGS.map((s) => s.label) } },
      spec: {
        width: 230,
        height: 170,
        layer: [
          {
            mark: { type: 'area', opacity: 0.18 },
            encoding: {
              x: { field: 'budget', type: 'quantitative', title: 'pixel budget', scale: { domain: [1, budget] } },
              y: { field: 'low', type: 'quantitative', title: 'success rate', axis: { format: '%' }, scale: { domain: [0, 1] } },
              y2: { field: 'high' },
              color: { field: 'model', type: 'nominal', title: 'model', sort: r.models.map((m) => m.name) },
            },
          },
          {
            mark: { type: 'line', strokeWidth: 2 },
            encoding: {
              x: { field: 'budget', type: 'quantitative' },
              y: { field: 'rate', type: 'quantitative' },
              ...modelEncodings(r.models.map((m) => m.name)),
            },
          },
        ],
      },
      resolve: { scale: { y: 'shared' } },
      // The legend shows the lines (the bands' faint fill would hide the colours).
      config: { ...READABLE_TEXT, legend: { ...READABLE_TEXT.legend, symbolType: 'stroke', symbolOpacity: 1, symbolStrokeWidth: 3 } },
    },
  };
}

export interface EpochPoint {
  model: string;
  epoch: number;
  measure: 'training loss' | 'validation accuracy';
  value: number;
}

function trainingFigure(models: ModelResult[]): FigureRecord | undefined {
  const values: EpochPoint[] = [];
  const alt: string[] = [];
  for (const m of models) {
    const h = m.history ?? [];
    if (h.length === 0) continue;
    for (const e of h) {
      values.push({ model: m.name, epoch: e.epoch, measure: 'training loss', value: e.trainLoss });
      if (e.validationAccuracy !== undefined)
        values.push({ model: m.name, epoch: e.epoch, measure: 'validation accuracy', value: e.validationAccuracy });
    }
    const first = h[0];
    const last = h[h.length - 1];
    const acc = (e: typeof first) => (e.validationAccuracy === undefined ? 'not measured' : pct(e.validationAccuracy));
    alt.push(
      h.length === 1
        ? `${m.name}: one epoch, training loss ${first.trainLoss.toPrecision(3)}, validation accuracy ${acc(first)}.`
        : `${m.name}: training loss ${first.trainLoss.toPrecision(3)} after epoch 1, ${last.trainLoss.toPrecision(3)} after epoch ${last.epoch}; ` +
            `validation accuracy ${acc(first)} then ${acc(last)}.`,
    );
  }
  if (values.length === 0) return undefined;
  const panel = (measure: EpochPoint['measure'], format?: string) => ({
    width: 300,
    height: 180,
    transform: [{ filter: { field: 'measure', equal: measure } }],
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1 } },
      y: { field: 'value', type: 'quantitative', title: measure, scale: { zero: false }, ...(format ? { axis: { format } } : {}) },
      ...modelEncodings(models.map((m) => m.name)),
    },
  });
  return {
    id: 'training-curves',
    title: 'Training curves',
    caption:
      "Training loss (mean over each epoch, at the training temperature; the student's against its soft labels) and validation accuracy " +
      'after each epoch, for each model.',
    alt: `Training curves. ${alt.join(' ')}`,
    spec: {
      $schema: VEGA_LITE_SCHEMA,
      description: 'Training loss and validation accuracy per epoch',
      data: { values },
      hconcat: [panel('training loss'), panel('validation accuracy', '.1%')],
      config: READABLE_TEXT,
    },
  };
}

/** The figures of a reproduce run, computed from its numbers. */
export function reproduceFigures(r: Pick<ExperimentResults, 'attacks' | 'models' | 'profile'>): FigureRecord[] {
  const out: FigureRecord[] = [];
  for (const alg of ALGORITHMS) {
    const f = budgetFigure(r, alg);
    if (f) out.push(f);
  }
  const t = trainingFigure(r.models);
  if (t) out.push(t);
  return out;
}
