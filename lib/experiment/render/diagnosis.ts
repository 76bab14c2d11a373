// A diagnosis (lib/diagnose.ts) as report blocks: the verdict with its rule and evidence, the
// rules, the battery's steps, the gradients and the epsilon curve as a Vega-Lite figure. The
// page of `tempered diagnose --out`, and the diagnosis sections of the study and reproduce
// reports, are built from these blocks with the project's report machinery (document.ts).
import * as path from 'path';
import type { Diagnosis } from '../../diagnose';
import { writeFileAtomic, writeJsonAtomic } from '../../fsutil';
import { READABLE_TEXT } from '../figures';
import type { FigureRecord } from '../results';
import { Block, figureFile, ReportDocument, Table, tableFile, toCsv, toHtml, toMarkdown } from './document';
import { specToSvg } from './vega';

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const ci = (i: { low: number; high: number }) => `[${pct(i.low)}, ${pct(i.high)}]`;

/** The epsilon curve of rule 4 with its 95% Wilson band. `id` makes the figure's file name unique in a report. */
export function diagnosisCurveFigure(d: Diagnosis, id: string, name = 'the model'): FigureRecord | undefined {
  const curve = d.steps.find((s) => s.byEpsilon?.length);
  if (!curve) return undefined;
  const values = curve.byEpsilon!.map((p) => ({ epsilon: p.epsilon, rate: p.successRate, low: p.interval.low, high: p.interval.high }));
  return {
    id,
    title: `Success against epsilon, ${name}`,
    caption:
      `${curve.label} (${String(curve.parameters.loss)}, ${String(curve.parameters.precision)}) on ${curve.attacked} correctly classified samples: ` +
      'the share fooled within each L-infinity radius, with its 95% Wilson interval. Any attack must reach 100% at epsilon = 1 (rule 4).',
    alt: `Success rate against epsilon for ${name}: ${values.map((v) => `${v.epsilon}: ${pct(v.rate)}`).join(', ')}.`,
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      description: 'Success rate against epsilon',
      data: { values },
      width: 360,
      height: 200,
      layer: [
        {
          mark: { type: 'area', opacity: 0.2 },
          encoding: {
            x: { field: 'epsilon', type: 'quantitative', title: 'epsilon (L-infinity radius)', scale: { domain: [0, 1] } },
            y: { field: 'low', type: 'quantitative', title: 'success rate', axis: { format: '%' }, scale: { domain: [0, 1] } },
            y2: { field: 'high' },
          },
        },
        {
          mark: { type: 'line', point: true, strokeWidth: 2 },
          encoding: { x: { field: 'epsilon', type: 'quantitative' }, y: { field: 'rate', type: 'quantitative' } },
        },
      ],
      config: READABLE_TEXT,
    },
  };
}

/** The blocks of one diagnosis; `prefix` keeps its table and figure ids unique in a larger report. */
export function diagnosisBlocks(d: Diagnosis, opts: { prefix?: string; name?: string } = {}): Block[] {
  const prefix = opts.prefix ?? 'diagnosis';
  const sub = 3 as const;
  const blocks: Block[] = [];
  blocks.push({ kind: 'paragraph', text: `**Verdict: ${d.verdict}** (${d.rule}). ${d.because}.` });
  if (d.notEvaluated.length)
    blocks.push({
      kind: 'paragraph',
      text:
        `Not evaluated: rule ${d.notEvaluated.join(', ')}` +
        (d.settings.missingAttacks.length ? ` (this build's registry lacks ${d.settings.missingAttacks.join(', ')})` : '') +
        '.',
    });
  const w = d.worstCase;
  blocks.push({
    kind: 'paragraph',
    text:
      `Worst-case robust accuracy at epsilon ${d.settings.epsilon}: **${pct(w.robustAccuracy)}** ${ci(w.interval)}, ${w.robust} of ${w.samples} samples ` +
      `classified correctly and surviving every one of ${w.attacks.join(', ')}` +
      (w.paperFailedBatterySucceeded !== undefined
        ? `; on ${w.paperFailedBatterySucceeded} samples where the paper's Algorithm 2 (float32) failed, an attack of the battery succeeded.`
        : '.'),
  });
  const rules: Table = {
    id: `${prefix}-rules`,
    columns: ['rule', 'finding', 'evidence'],
    align: ['l', 'l', 'l'],
    rows: d.rules.map((r) => [`${r.id}. ${r.title}`, r.status === 'masking' ? '**masking**' : r.status, r.evidence]),
  };
  blocks.push({ kind: 'heading', level: sub, text: 'Rules' }, { kind: 'table', table: rules });
  const steps: Table = {
    id: `${prefix}-steps`,
    columns: ['attack', 'settings', 'success', '95% CI', 'counted', 'all-zero gradient', 'worst case', 'seconds'],
    align: ['l', 'l', 'r', 'r', 'r', 'r', 'l', 'r'],
    rows: d.steps.map((s) => {
      const p = s.parameters;
      const rate = s.atEpsilon ?? s;
      const settings = [
        p.loss ? `${p.loss} ${p.precision}` : undefined,
        p.temperature !== undefined ? `T=${p.temperature}` : undefined,
        p.epsilons ? `eps ${p.epsilons.join(', ')}` : p.epsilon !== undefined ? `eps ${p.epsilon}` : undefined,
        p.steps !== undefined ? `${p.steps} steps` : undefined,
      ]
        .filter(Boolean)
        .join(', ');
      return [
        `\`${s.id}\` ${s.label}`,
        settings,
        `${pct(rate.successRate)}${s.atEpsilon ? ` at ${d.settings.epsilon}` : ''}`,
        ci(rate.interval),
        `${rate.successes}/${rate.attacked}`,
        s.allZero === undefined ? '-' : String(s.allZero),
        s.worstCase ? 'yes' : 'no',
        s.seconds.toFixed(1),
      ];
    }),
  };
  blocks.push({ kind: 'heading', level: sub, text: 'The battery' }, { kind: 'table', table: steps });
  const gradients: Table = {
    id: `${prefix}-gradients`,
    columns: ['evaluation T', 'precision', 'all-zero gradients', 'share', '95% CI'],
    align: ['r', 'l', 'r', 'r', 'r'],
    rows: d.gradients.map((g) => [String(g.temperature), g.precision, `${g.zeroSamples}/${g.samples}`, pct(g.zeroShare), ci(g.interval)]),
  };
  blocks.push(
    { kind: 'heading', level: sub, text: 'Input gradients' },
    {
      kind: 'paragraph',
      text: `The cross-entropy's input gradient on the correctly classified samples; rule 1 reads the float32 row at T = ${d.settings.temperature}.`,
    },
    { kind: 'table', table: gradients },
  );
  const figure = diagnosisCurveFigure(d, `${prefix}-epsilon-curve`, opts.name);
  if (figure) blocks.push({ kind: 'figure', figure });
  return blocks;
}

/** The page of one diagnosis. */
export function diagnosisDocument(d: Diagnosis): ReportDocument {
  const s = d.settings;
  const model = d.model.file ?? `model ${d.model.fingerprint.slice(0, 12)}`;
  return {
    title: `Diagnosis of ${model}`,
    blocks: [
      {
        kind: 'paragraph',
        text:
          `${s.samples} test samples drawn with seed ${s.seed} (${d.accuracy.correct} classified correctly), epsilon ${s.epsilon}, ` +
          `evaluation temperature ${s.temperature}; model \`${d.model.fingerprint.slice(0, 16)}\` (${d.model.arch}` +
          (d.model.trainingTemperature !== undefined ? `, trained at T = ${d.model.trainingTemperature}` : '') +
          `), data \`${d.data.fingerprint.slice(0, 16)}\`, backend ${d.backend.backend} (${d.backend.device}); surrogate: ` +
          (s.surrogate.source === 'trained'
            ? `trained here at T = 1 on ${s.surrogate.trainImages} images for ${s.surrogate.epochs} epoch(s), seed ${s.surrogate.seed}`
            : `${s.surrogate.file ?? 'given'}`) +
          `, ${s.surrogate.correct} of ${s.samples} samples correct. Rules and thresholds: docs/diagnose.md.`,
      },
      ...diagnosisBlocks(d),
    ],
  };
}

/** Writes DIR/diagnosis.json (atomically), then the page: diagnosis.md, diagnosis.html, figures/ and tables/. */
export async function writeDiagnosis(dir: string, d: Diagnosis): Promise<string[]> {
  const doc = diagnosisDocument(d);
  const written: string[] = [];
  const svgs = new Map<string, string>();
  await writeJsonAtomic(path.join(dir, 'diagnosis.json'), d);
  written.push('diagnosis.json');
  for (const b of doc.blocks) {
    if (b.kind === 'figure') {
      const svg = await specToSvg(b.figure.id, b.figure.spec);
      svgs.set(b.figure.id, svg);
      await writeFileAtomic(path.join(dir, figureFile(b.figure)), svg);
      written.push(figureFile(b.figure));
    } else if (b.kind === 'table') {
      await writeFileAtomic(path.join(dir, tableFile(b.table)), toCsv(b.table));
      written.push(tableFile(b.table));
    }
  }
  await writeFileAtomic(path.join(dir, 'diagnosis.md'), toMarkdown(doc));
  await writeFileAtomic(path.join(dir, 'diagnosis.html'), toHtml(doc, svgs));
  written.push('diagnosis.md', 'diagnosis.html');
  return written;
}
