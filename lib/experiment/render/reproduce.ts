// The report of `tempered reproduce`: its tables beside the paper's own numbers, a
// plain-words reading generated from whatever the numbers turned out to be, the figures,
// the pictures, the stage times and the commit of every piece. Built from results.json alone.
import type { AttackSummary } from '../../attack';
import { ALGORITHMS, ATTACK_SETTINGS, hotStartSentence, ModelId, nearChanceWarning, paperGapSentence } from '../profiles';
import { ExperimentResults, PieceCommit, shortCommit } from '../results';
import { diagnosisBlocks } from './diagnosis';
import type { Block, ReportDocument, Table } from './document';

const pct = (x: number | undefined, d = 1) => (x === undefined || Number.isNaN(x) ? '–' : `${(100 * x).toFixed(d)}%`);
const sci = (x: number) => (x === 0 ? '0' : x.toExponential(2));

// The paper's success rates for the float32 cross-entropy (the only setting it ran).
const PAPER_RATES: Partial<Record<string, Partial<Record<ModelId, string>>>> = {
  alg1: { std: '66% (logs: 60.5%)' },
  alg2: { std: '37% (39.01%, 35.69%)', stdT: '0.81%', distill: '1.31%' },
  alg3: { std: '>95% (text)' },
};

type Row = ExperimentResults['attacks'][number];

function find(r: ExperimentResults, model: ModelId, alg: string, setting: string): Row | undefined {
  return r.attacks.find((a) => a.model === model && a.algorithm === alg && a.setting === setting);
}

function cell(a: Row | undefined): string {
  if (!a) return '–';
  const px = a.successes > 0 ? `; px mean ${a.meanPixels!.toFixed(1)}, median ${a.medianPixels}` : '';
  const zero = a.allZeroSaliency > 0 ? `; **${a.allZeroSaliency} all-zero**` : '';
  return `${pct(a.successRate)} [${pct(a.interval.low)}, ${pct(a.interval.high)}] of ${a.attacked}${px}${zero}`;
}

/** The sentence said instead of a comparison the 95% intervals cannot settle. */
export const NO_CONCLUSION = 'the intervals overlap: no conclusion';

/** Whether the 95% Wilson intervals of two rows overlap (then their rates are not told apart). */
function overlap(a: Row | undefined, b: Row | undefined): boolean {
  return !!a && !!b && a.interval.low <= b.interval.high && b.interval.low <= a.interval.high;
}

function reading(r: ExperimentResults): string[] {
  const out: string[] = [];
  const warning = nearChanceWarning(r.models);
  if (warning) out.push(`**Warning.** ${warning}`);
  const rate = (m: ModelId, alg: string, s: string) => find(r, m, alg, s)?.successRate;
  const row = (m: ModelId, s: string) => find(r, m, 'alg2', s);
  const s32 = rate('std', 'alg2', 'xent32');
  const t32 = rate('stdT', 'alg2', 'xent32');
  const d32 = rate('distill', 'alg2', 'xent32');
  const zero = (m: ModelId, alg: string, s: string) => {
    const a = find(r, m, alg, s);
    return a ? `${a.allZeroSaliency} of ${a.attacked}` : '–';
  };
  const acc = r.models.map((m) => `${m.name} ${pct(m.testAccuracy, 2)}`).join(', ');
  out.push(
    `**Accuracy.** ${acc} on the 10,000 test images (the paper: 99.57%, 99.34%, 99.07% after 50 epochs)` +
      (r.profile.epochs < 50
        ? `; these models had ${r.profile.epochs} epoch${r.profile.epochs === 1 ? '' : 's'}, so lower figures are expected.`
        : '.'),
  );
  if (s32 !== undefined && t32 !== undefined && d32 !== undefined) {
    let s =
      `**The paper's attack** (Algorithm 2, float32 cross-entropy at evaluation temperature 1) misclassified ${pct(s32)} of M_std's attacked samples ` +
      `within ${r.profile.budget} pixels, ${pct(t32)} of M_std-T's and ${pct(d32)} of M_distill's (the paper: 37%, 0.81%, 1.31%). `;
    if (overlap(row('std', 'xent32'), row('stdT', 'xent32')) || overlap(row('std', 'xent32'), row('distill', 'xent32'))) {
      s += `Against M_std, ${NO_CONCLUSION} (too few samples, or too small a difference, to say whether high temperature resists it).`;
    } else if (t32 < s32 / 2 && d32 < s32 / 2) {
      s += 'As in the paper, both models trained at T = ' + r.profile.temperature + ' resist it far better than M_std, ';
      s += overlap(row('stdT', 'xent32'), row('distill', 'xent32'))
        ? `and between M_std-T and M_distill ${NO_CONCLUSION}: distillation adds nothing the intervals can see.`
        : d32 <= t32
          ? 'and the distilled model resists it better than M_std-T.'
          : 'and here the distilled model resists it less well than M_std-T.';
    } else {
      s += 'Unlike the paper, the models trained at high temperature do not resist it clearly better than M_std.';
    }
    out.push(s);
    const zeroCount = (m: ModelId) => find(r, m, 'alg2', 'xent32')?.allZeroSaliency ?? 0;
    const attacked = (m: ModelId) => find(r, m, 'alg2', 'xent32')?.attacked ?? 0;
    if (zeroCount('stdT') + zeroCount('distill') > 0) {
      out.push(
        `**Why.** Under that loss the saliency map was exactly zero everywhere for ${zero('stdT', 'alg2', 'xent32')} of M_std-T's samples and ` +
          `${zero('distill', 'alg2', 'xent32')} of M_distill's (M_std: ${zero('std', 'alg2', 'xent32')}): their logits are so far apart that the float32 ` +
          'cross-entropy rounds to the same value whatever pixel changes, and the attack degenerates to the tie-break order (top-left pixels first).',
      );
    } else if (attacked('stdT') + attacked('distill') > 0) {
      out.push(
        '**Why.** No saliency map of the high-temperature models was all zero under the float32 cross-entropy here, so their resistance ' +
          'does not come from a loss that rounds to a constant; compare the other losses below.',
      );
    }
  }
  const t64 = rate('stdT', 'alg2', 'xent64');
  const d64 = rate('distill', 'alg2', 'xent64');
  const tm = rate('stdT', 'alg2', 'margin');
  const dm = rate('distill', 'alg2', 'margin');
  const sm = rate('std', 'alg2', 'margin');
  if (t64 !== undefined && d64 !== undefined) {
    out.push(
      `**The same loss in float64** (log1p form) gives Algorithm 2 ${pct(t64)} on M_std-T and ${pct(d64)} on M_distill ` +
        `(all-zero maps: ${zero('stdT', 'alg2', 'xent64')} and ${zero('distill', 'alg2', 'xent64')}).`,
    );
  }
  if (tm !== undefined && dm !== undefined && sm !== undefined) {
    const gone = tm >= 0.8 * sm && dm >= 0.8 * sm;
    const undecided = overlap(row('std', 'margin'), row('stdT', 'margin')) || overlap(row('std', 'margin'), row('distill', 'margin'));
    out.push(
      `**Following the logit margin** (max_{j≠y} z_j − z_y, which never saturates), Algorithm 2 succeeds on ${pct(sm)} of M_std's samples, ` +
        `${pct(tm)} of M_std-T's and ${pct(dm)} of M_distill's. ` +
        (undecided && !gone
          ? `Against M_std, ${NO_CONCLUSION}: this run cannot tell whether the high-temperature models resist this loss better.`
          : gone
            ? 'The robustness disappears: the high-temperature models are about as easy to fool as M_std once the attack does not depend on a saturated float32 softmax. ' +
              'What the paper measured is gradient masking, a numerical effect, as Carlini and Wagner found for distillation.'
            : 'The high-temperature models stay harder to fool than M_std under this loss too, so not all of their robustness is numerical in this run.'),
    );
  }
  const g = (m: ModelId, t: number, p: string) =>
    r.gradients.find((x) => x.model === m)?.rows.find((row) => row.temperature === t && row.precision === p);
  const gs = g('std', 1, 'float32');
  const gt = g('stdT', 1, 'float32');
  const gt64 = g('stdT', 1, 'float64');
  const gtT = g('stdT', r.profile.temperature, 'float32');
  if (gs && gt && gt64) {
    out.push(
      `**Gradients.** At evaluation temperature 1 the mean |dL/dx| is ${sci(gs.meanAbs)} for M_std and ${sci(gt.meanAbs)} for M_std-T in float32 ` +
        `(${sci(gt64.meanAbs)} in float64); ${gt.zeroSamples} of M_std-T's ${gt.samples} samples have an exactly zero float32 gradient ` +
        `(M_std: ${gs.zeroSamples}), ${gt64.zeroSamples} in float64.` +
        (gtT
          ? ` At T = ${r.profile.temperature}, M_std-T's float32 gradients average ${sci(gtT.meanAbs)} (the paper: ~1e-40 to 1e-38) with ${gtT.zeroSamples} exactly zero.`
          : ''),
    );
  }
  return out;
}

const commitText = (c: PieceCommit | null | undefined) => (c ? shortCommit(c) : 'not recorded');

export function reproduceDocument(r: ExperimentResults): ReportDocument {
  const B: Block[] = [];
  const p = r.profile;
  const h2 = (text: string) => B.push({ kind: 'heading', level: 2, text });
  const h3 = (text: string) => B.push({ kind: 'heading', level: 3, text });
  const para = (text: string) => B.push({ kind: 'paragraph', text });
  const table = (t: Table) => B.push({ kind: 'table', table: t });
  const figure = (id: string) => {
    const f = r.figures.find((x) => x.id === id);
    if (f) B.push({ kind: 'figure', figure: f });
  };
  const numeric = (n: number) => ['l' as const, ...new Array<'r'>(n).fill('r')];

  para(
    `${r.tool}, ${r.createdAt}; commit ${shortCommit(r.code)}; seed ${r.seed}; ${String(r.machine.device)} (backend ${String(r.machine.backend)}` +
      `${r.machine.threads ? `, ${String(r.machine.threads)} threads, ${String(r.machine.isa)} kernels` : ''}); ` +
      `data ${r.data.description}, ${r.data.split} split, SHA-256 ${r.data.fingerprint.slice(0, 16)}…; ` +
      `this run took ${(r.seconds / 60).toFixed(1)} min (pieces found done in the folder were reused; see the stage times).`,
  );
  para(
    `Settings: ${p.epochs} epoch${p.epochs === 1 ? '' : 's'} per model${p.trainLimit ? ` on the first ${p.trainLimit} training images` : ''}; M_std at T = 1, ` +
      `M_std-T at T = ${p.temperature} on hard labels (the teacher), M_distill at T = ${p.temperature} on M_std-T's soft labels ` +
      `(learning rates ${p.learningRate}, ${p.hotLearningRate}, ${p.studentLearningRate}). ` +
      (p.hotLossScale !== 1
        ? `Both T = ${p.temperature} trainings scale the loss gradient by ${p.hotLossScale} and use learning rate ${p.hotLearningRate}: with the paper's ` +
          `settings a T = 20 network can sit at chance for many epochs (11 in the original code's log; with this engine and seed 0: ${hotStartSentence()} ` +
          `validation accuracy after epochs 1-3), and the gradient scaled by ${p.hotLossScale} at learning rate 0.1 collapses to a constant prediction. `
        : "All hyper-parameters are the paper's. ") +
      `Attacks: ${r.samples.indices.length} test samples drawn with the seed (Algorithm 4: ${r.samples.alg4Indices.length} of them), ` +
      `budget ${p.budget} pixels, evaluation temperature 1 (as the original code and Papernot et al.); only samples a model classifies correctly are attacked ` +
      `(${r.samples.correctByAll} are classified correctly by all three).`,
  );

  h2('What the numbers show');
  for (const text of reading(r)) para(text);

  h2('Models');
  table({
    id: 'models',
    columns: ['model', 'training T', 'epochs', 'loss scale', 'learning rate', 'test accuracy', 'paper', 'trained by commit'],
    align: [...numeric(6), 'l'],
    rows: r.models.map((m) => [
      m.name,
      String(m.trainingTemperature),
      String(m.epochs),
      String(m.lossScale),
      String(m.learningRate),
      pct(m.testAccuracy, 2),
      pct(m.paperAccuracy, 2),
      commitText(m.trainedBy),
    ]),
  });
  figure('training-curves');

  h2('Attack success rates');
  para(
    'Each cell: success rate [95% Wilson interval] of the samples attacked; mean and median pixels among successes; ' +
      'how many saliency maps were exactly zero everywhere (the attack then follows the tie-break order).',
  );
  for (const alg of ALGORITHMS) {
    if (!r.attacks.some((a) => a.algorithm === alg)) continue;
    h3(alg.replace('alg', 'Algorithm '));
    const rows = ATTACK_SETTINGS.map((s) => [s.label, ...r.models.map((m) => cell(find(r, m.id, alg, s.id)))]);
    const paper = PAPER_RATES[alg];
    if (paper) rows.push(['*the paper (float32 cross-entropy)*', ...r.models.map((m) => paper[m.id] ?? '–')]);
    table({
      id: `attacks-${alg}`,
      columns: ['loss', ...r.models.map((m) => m.name)],
      align: r.models.map(() => 'l' as const).concat('l'),
      rows,
    });
    figure(`success-by-budget-${alg}`);
    if (alg === 'alg3' && r.attacks.some((a) => a.algorithm === 'alg1')) {
      const here = (a: string, s: string) => pct(find(r, 'std', a, s)?.successRate);
      para(
        `**Algorithms 1 and 3 beside the paper.** This run: M_std ${here('alg1', 'xent32')} and ${here('alg3', 'xent32')} under the float32 cross-entropy, ` +
          `${here('alg1', 'xent64')} and ${here('alg3', 'xent64')} under the same loss in float64 (the paper: 66%, logs 60.5%, and "> 95%"). ` +
          paperGapSentence(),
      );
    }
  }
  h3("Relative success (the paper's Table 2: rate of M_std / rate of the model, Algorithm 2)");
  const ratio = (s: string, m: ModelId) => {
    const a = find(r, 'std', 'alg2', s)?.successRate;
    const b = find(r, m, 'alg2', s)?.successRate;
    return a === undefined || b === undefined ? '–' : b === 0 ? '∞ (no success)' : (a / b).toFixed(2);
  };
  table({
    id: 'relative-success',
    columns: ['loss', 'M_distill', 'M_std-T'],
    align: numeric(2),
    rows: [...ATTACK_SETTINGS.map((s) => [s.label, ratio(s.id, 'distill'), ratio(s.id, 'stdT')]), ['*the paper*', '29.77', '44.3']],
  });
  h3(`On the ${r.samples.correctByAll} samples every model classifies correctly`);
  const commonRows: string[][] = [];
  for (const alg of ALGORITHMS)
    for (const s of ATTACK_SETTINGS) {
      const rows = r.models.map((m) => find(r, m.id, alg, s.id));
      if (rows.every((x) => !x)) continue;
      commonRows.push([`${alg}, ${s.label}`, ...rows.map((x) => (x ? `${pct(x.commonSuccessRate)} of ${x.commonAttacked}` : '–'))]);
    }
  table({
    id: 'attacks-common-samples',
    columns: ['algorithm, loss', ...r.models.map((m) => m.name)],
    align: numeric(r.models.length),
    rows: commonRows,
  });
  h3('Success rate against the pixel budget (Algorithm 2)');
  const budgets = [1, 5, 10, 20, 50, p.budget].filter((b, i, a) => b <= p.budget && a.indexOf(b) === i);
  const budgetRows: string[][] = [];
  for (const m of r.models)
    for (const s of ATTACK_SETTINGS) {
      const a = find(r, m.id, 'alg2', s.id) as AttackSummary | undefined;
      if (a) budgetRows.push([`${m.name}, ${s.label}`, ...budgets.map((b) => pct(a.successRateByBudget[b - 1]))]);
    }
  table({
    id: 'alg2-by-budget',
    columns: ['model, loss', ...budgets.map((b) => `≤ ${b} px`)],
    align: numeric(budgets.length),
    rows: budgetRows,
  });

  h2('Input gradients');
  para(
    `dL/dx of the cross-entropy on the ${r.samples.correctByAll} samples every model classifies correctly. ` +
      'The paper reports ~1e-5 to 1e-4 for M_std (its Appendix A: max 9.8e-5) and ~1e-40 to 1e-38 at T = 20 (Appendix B: mean -4.6e-40, max 8.7e-38), ' +
      'a gradient "smaller by a factor of 1e10", and that only ~30% of the samples could be analysed because of underflow.',
  );
  const gradientRows: string[][] = [];
  for (const g of r.gradients) {
    const name = r.models.find((m) => m.id === g.model)?.name ?? g.model;
    for (const row of g.rows)
      gradientRows.push([
        name,
        String(row.temperature),
        row.precision,
        sci(row.meanAbs),
        sci(row.maxAbs),
        sci(row.medianSampleMax),
        `${row.zeroSamples} (${pct(row.zeroFraction)})`,
        row.precision === 'float32' ? String(row.subnormalSamples) : '–',
        sci(row.meanLoss),
      ]);
  }
  table({
    id: 'gradients',
    columns: [
      'model',
      'eval T',
      'precision',
      'mean |g|',
      'max |g|',
      'median of per-sample max',
      'all-zero samples',
      'samples with subnormals',
      'mean loss',
    ],
    align: ['l', 'r', 'l', 'r', 'r', 'r', 'r', 'r', 'r'],
    rows: gradientRows,
  });

  const diagnoses = r.diagnoses ?? [];
  if (diagnoses.length) {
    h2('Masking diagnosis');
    const d0 = diagnoses[0].diagnosis;
    para(
      `\`tempered diagnose\` on each model (docs/diagnose.md): a fixed battery of L-infinity attacks at ε = ${d0.settings.epsilon} on the first ` +
        `${d0.settings.samples} of the samples, the rules of Athalye, Carlini & Wagner (2018) and Carlini et al. (2019), and a verdict with the rule that produced it. ` +
        "The transfer is crafted on M_std (M_std's own on a surrogate the diagnosis trains). The paper's attacks above stay as they are.",
    );
    table({
      id: 'diagnoses',
      columns: ['model', 'verdict', 'by', 'float32 all-zero gradients', 'worst-case robust accuracy [95% CI]', 'commit'],
      align: ['l', 'l', 'l', 'r', 'r', 'l'],
      rows: diagnoses.map((x) => {
        const d = x.diagnosis;
        const g = d.gradients.find((y) => y.temperature === d.settings.temperature && y.precision === 'float32');
        return [
          r.models.find((m) => m.id === x.model)?.name ?? x.model,
          d.verdict === 'robustness is gradient masking' ? `**${d.verdict}**` : d.verdict,
          d.rule,
          g ? `${g.zeroSamples}/${g.samples}` : '–',
          `${pct(d.worstCase.robustAccuracy)} [${pct(d.worstCase.interval.low)}, ${pct(d.worstCase.interval.high)}]`,
          commitText(x.producedBy),
        ];
      }),
    });
    for (const x of diagnoses) {
      const name = r.models.find((m) => m.id === x.model)?.name ?? x.model;
      h3(`${name}: the diagnosis`);
      B.push(...diagnosisBlocks(x.diagnosis, { prefix: `diagnosis-${x.model}`, name }));
    }
  }

  h2('Pictures');
  for (const grid of r.pictures) {
    const name = r.models.find((m) => m.id === grid.model)?.name ?? grid.model;
    h3(grid.kind === 'adversarial' ? `${name}: originals and adversarial images` : `${name}: Algorithm 2 saliency maps`);
    B.push({ kind: 'pictures', grid });
  }
  if (r.pictures.length === 0)
    para(
      'This results.json holds no pictures (it was written before they were stored in it, or with --pictures 0); the PNG files, if any, are in pictures/.',
    );

  h2('Stage times and the code that produced each piece');
  para(
    `Wall time of every stage. A reused piece was found done in the folder: its time is the one recorded when it was computed, by the commit shown. ` +
      `This run: commit ${shortCommit(r.code)}${r.reuseOtherCommits ? '; pieces of other commits were allowed (--reuse-other-commits)' : '; attacks, gradients and pictures of other commits were recomputed'}.`,
  );
  table({
    id: 'stages',
    columns: ['stage', 'what', 'seconds', 'reused', 'commit'],
    align: ['l', 'l', 'r', 'l', 'l'],
    rows: r.stages.map((s) => [
      s.stage,
      s.alongside?.length ? `${s.label} (side by side with ${s.alongside.join(', ')})` : s.label,
      s.seconds.toFixed(2),
      s.reused ? 'reused' : '',
      commitText(s.producedBy),
    ]),
  });
  // Stages that ran side by side count once: the longest of them.
  const total = (stage: string) => {
    const groups = new Map<string, number>();
    for (const s of r.stages.filter((x) => x.stage === stage)) {
      const key = [s.label, ...(s.alongside ?? [])].sort().join('\n');
      groups.set(key, Math.max(groups.get(key) ?? 0, s.seconds));
    }
    return [...groups.values()].reduce((a, b) => a + b, 0);
  };
  table({
    id: 'stage-totals',
    columns: ['stage', 'seconds (computed now or when first computed; side-by-side stages once)'],
    align: ['l', 'r'],
    rows: ['train', 'attack', 'gradients', ...(diagnoses.length ? ['diagnose'] : []), 'pictures', 'render'].map((s) => [
      s,
      total(s).toFixed(2),
    ]),
  });

  h2("Where the paper's text and its code differ (and what this run does)");
  B.push({
    kind: 'list',
    items: [
      "Algorithm 2's saliency: the paper takes |L(x') − L(x)| and sets pixels to 1 or 0; the original code used the signed increase and only set pixels to 1. This run follows the paper.",
      'Soft labels: the original code produced them with dropout still on; here they come from the deterministic teacher.',
      "Pixels: the code divided by 256; here by 255. Split: the paper 50,000/10,000, the code 59,000/1,000; here the paper's.",
      'Evaluation temperature: the paper speaks of T = 20 models; the code evaluated every model at T = 1, as this run does (a parameter, recorded above).',
      'Tie-break (not specified by the paper): candidates ordered S1 then S2, raster order; the first maximum wins; a modified pixel is never chosen again.',
      'Success: the prediction differs from the true label after at most the budget of pixels; only correctly classified samples are attacked.',
    ],
  });
  para(
    'Reproduce with `npx tempered reproduce --profile ' +
      p.name.split(' ')[0] +
      ` --seed ${r.seed}\`; every number here is in results.json, ` +
      'each figure with its Vega-Lite spec and data; `npx tempered report <folder>` renders this page again from results.json alone.',
  );
  return { title: `Song (2017) reproduced: profile \`${p.name}\``, blocks: B };
}
