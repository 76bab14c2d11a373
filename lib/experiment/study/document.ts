// The report of `tempered study`, built from its results alone: the training settings per T,
// a plain-words reading generated from whatever the numbers are, success against T for every
// attack (M_std-T beside M_distill(T)), accuracy, gradients and all-zero saliency against T,
// the figures, the stage times and the commit of every piece.
import type { Block, ReportDocument, Table } from '../render/document';
import { PieceCommit, shortCommit } from '../results';
import { KIND_NAMES, meanOf, PooledRate, pooledRate, rowsOf } from './aggregate';
import { COMMON_PIXEL_BUDGET, studyAttack } from './profiles';
import type { StudyModelKind, StudyResults } from './results';

const KINDS: StudyModelKind[] = ['stdT', 'distill'];
const pct = (x: number | undefined, d = 1) => (x === undefined || Number.isNaN(x) ? '–' : `${(100 * x).toFixed(d)}%`);
const sci = (x: number | undefined) => (x === undefined ? '–' : x === 0 ? '0' : x.toExponential(2));
const commitText = (c: PieceCommit | null) => (c ? shortCommit(c) : 'not recorded');

/** A rate with its interval and, over several seeds, their spread. */
function cell(p: PooledRate | undefined): string {
  if (!p) return '–';
  const spread = p.seedRates.length > 1 ? `; seeds mean ${pct(p.mean)} (${pct(p.min)}–${pct(p.max)})` : '';
  return `${pct(p.rate)} [${pct(p.interval.low)}, ${pct(p.interval.high)}] of ${p.attacked}${spread}`;
}

const overlap = (a: PooledRate, b: PooledRate) => a.interval.low <= b.interval.high && b.interval.low <= a.interval.high;

function trend(first: PooledRate, last: PooledRate): string {
  if (overlap(first, last)) return 'about the same';
  return last.rate < first.rate ? 'lower' : 'higher';
}

function reading(r: StudyResults): string[] {
  const out: string[] = [];
  const ts = r.profile.temperatures;
  const lo = ts[0];
  const hi = ts[ts.length - 1];
  const trained = r.models.filter((m) => m.testAccuracy !== undefined);
  const failed = r.models.filter((m) => m.status !== 'ok');
  const accs = trained.filter((m) => m.status === 'ok').map((m) => m.testAccuracy!);
  const epochs = r.profile.epochs < 50 ? `, after ${r.profile.epochs} epoch${r.profile.epochs === 1 ? '' : 's'}` : '';
  out.push(
    `**Accuracy.** ${accs.length} of ${r.models.length} models learned` +
      (accs.length ? ` (test accuracy at T = 1 from ${pct(Math.min(...accs), 2)} to ${pct(Math.max(...accs), 2)}${epochs}). ` : '. ') +
      (failed.length
        ? `Near chance or not trained, left out of every rate: ${failed.map((m) => `${m.name} seed ${m.seed} (${m.status === 'near-chance' ? pct(m.testAccuracy, 1) : 'teacher near chance'})`).join(', ')}.`
        : 'None ended near chance.'),
  );
  if (ts.length < 2) return out;
  // Each attack: from the lowest to the highest T, for both kinds.
  const moves: string[] = [];
  for (const id of r.profile.attacks) {
    const parts: string[] = [];
    for (const kind of KINDS) {
      const first = pooledRate(r, id, kind, lo);
      const last = pooledRate(r, id, kind, hi);
      if (first && last)
        parts.push(`${kind === 'stdT' ? 'M_std-T' : 'M_distill'} ${pct(first.rate)} → ${pct(last.rate)} (${trend(first, last)})`);
    }
    if (parts.length) moves.push(`${studyAttack(id).label}: ${parts.join('; ')}`);
  }
  if (moves.length)
    out.push(
      `**Success from T = ${lo} to T = ${hi}** ("lower" or "higher" only where the 95% intervals do not overlap): ${moves.join('. ')}.`,
    );
  const paper = KINDS.map((k) => [pooledRate(r, 'alg2-xent32', k, lo), pooledRate(r, 'alg2-xent32', k, hi)] as const);
  const margin = KINDS.map((k) => [pooledRate(r, 'alg2-margin', k, lo), pooledRate(r, 'alg2-margin', k, hi)] as const);
  const pgd = KINDS.map((k) => [pooledRate(r, 'pgd-0.3', k, lo), pooledRate(r, 'pgd-0.3', k, hi)] as const);
  const falls = (x: readonly [PooledRate | undefined, PooledRate | undefined]) => !!x[0] && !!x[1] && trend(x[0], x[1]) === 'lower';
  if (paper.every((x) => x[0] && x[1])) {
    const paperFalls = paper.some(falls);
    const others = [...margin, ...pgd].filter((x) => x[0] && x[1]);
    const othersFall = others.some(falls);
    const lead = paperFalls
      ? `The paper's attack (float32 cross-entropy at T = 1) loses strength between T = ${lo} and T = ${hi}`
      : `The paper's attack (float32 cross-entropy at T = 1) does not clearly lose strength between T = ${lo} and T = ${hi} here`;
    const rest = !others.length
      ? '.'
      : paperFalls && !othersFall
        ? '; the attacks on the logit margin (Algorithm 2, PGD ε = 0.3) do not, so the robustness at high T belongs to the float32 loss the attack follows, not to the model.'
        : paperFalls
          ? '; some attacks on the logit margin lose strength too, so part of the effect survives a well-conditioned loss.'
          : othersFall
            ? ', while some attacks on the logit margin do.'
            : ', nor do the attacks on the logit margin (Algorithm 2, PGD ε = 0.3).';
    out.push(`**The temperature effect.** ${lead}${rest}`);
  }
  // Distillation against the temperature alone.
  let differ = 0;
  let compared = 0;
  const differences: string[] = [];
  for (const id of r.profile.attacks)
    for (const T of ts) {
      const a = pooledRate(r, id, 'stdT', T);
      const b = pooledRate(r, id, 'distill', T);
      if (!a || !b) continue;
      compared++;
      if (!overlap(a, b)) {
        differ++;
        differences.push(`${id} at T=${T} (M_std-T ${pct(a.rate)}, M_distill ${pct(b.rate)})`);
      }
    }
  if (compared)
    out.push(
      `**Distillation against the temperature alone.** In ${compared - differ} of ${compared} (attack, T) pairs the 95% intervals of M_std-T and M_distill(T) overlap` +
        (differ
          ? `; they do not in ${differences.slice(0, 8).join(', ')}${differences.length > 8 ? ', …' : ''}.`
          : ': distillation adds nothing the temperature does not.'),
    );
  // Masking: all-zero saliency maps of the paper's loss.
  const zeroAt = (id: string, kind: StudyModelKind, T: number) => rowsOf(r, id, kind, T).reduce((a, x) => a + (x.allZeroSaliency ?? 0), 0);
  const attackedAt = (id: string, kind: StudyModelKind, T: number) => rowsOf(r, id, kind, T).reduce((a, x) => a + x.attacked, 0);
  if (r.profile.attacks.includes('alg2-xent32')) {
    const worst = ts.map(
      (T) =>
        [
          T,
          KINDS.reduce((a, k) => a + zeroAt('alg2-xent32', k, T), 0),
          KINDS.reduce((a, k) => a + attackedAt('alg2-xent32', k, T), 0),
        ] as const,
    );
    const some = worst.filter(([, z]) => z > 0);
    out.push(
      some.length
        ? `**Masking.** Under the float32 cross-entropy at T = 1, Algorithm 2's saliency map was exactly zero everywhere for ${some.map(([T, z, n]) => `${z} of ${n} attacked samples at T=${T}`).join(', ')} ` +
            '(both kinds together): the loss rounds to a constant, and the attack then follows the tie-break order.'
        : '**Masking.** No saliency map of the float32 cross-entropy at T = 1 was all zero at any temperature here.',
    );
  }
  const g = (kind: StudyModelKind, T: number, precision: string) =>
    meanOf(
      r.gradients
        .filter((x) => x.kind === kind && x.temperature === T)
        .map((x) => x.rows.find((row) => row.temperature === 1 && row.precision === precision)?.meanAbs),
    );
  const g1 = g('stdT', lo, 'float64');
  const gh = g('stdT', hi, 'float64');
  if (g1 !== undefined && gh !== undefined && g1 > 0)
    out.push(
      `**Gradients.** The mean |dL/dx| of the cross-entropy at evaluation temperature 1 (float64) is ${sci(g1)} for M_std-T at T = ${lo} and ${sci(gh)} at T = ${hi}, ` +
        `a factor of ${sci(gh / g1)}; in float32 ${sci(g('stdT', lo, 'float32'))} and ${sci(g('stdT', hi, 'float32'))}.`,
    );
  return out;
}

export function studyDocument(r: StudyResults): ReportDocument {
  const B: Block[] = [];
  const p = r.profile;
  const ts = p.temperatures;
  const h2 = (text: string) => B.push({ kind: 'heading', level: 2, text });
  const h3 = (text: string) => B.push({ kind: 'heading', level: 3, text });
  const para = (text: string) => B.push({ kind: 'paragraph', text });
  const table = (t: Table) => B.push({ kind: 'table', table: t });
  const figure = (id: string) => {
    const f = r.figures.find((x) => x.id === id);
    if (f) B.push({ kind: 'figure', figure: f });
  };
  const right = (n: number) => ['l' as const, ...new Array<'r'>(n).fill('r')];

  para(
    `Profile \`${p.name}\`: for each training temperature T in ${ts.join(', ')} and each seed in ${r.seeds.join(', ')}, M_std-T is trained on hard labels at T ` +
      '(at T = 1 it is M_std) and M_distill(T) is trained at T on the soft labels of that M_std-T at T; ' +
      `${p.epochs} epoch${p.epochs === 1 ? '' : 's'} each${p.trainLimit ? ` on the first ${p.trainLimit} training images` : ''}. ` +
      `Every model is evaluated at T = 1 and attacked on the same ${r.samples.indices.length} test samples (drawn with seed ${r.samples.seed}); ` +
      'only samples a model classifies correctly count. Transfers craft the attack on M_std of the same seed and count the samples the target model classifies correctly. ' +
      `Tool ${r.tool}, commit ${shortCommit(r.code)}, ${String(r.machine.backend ?? r.machine.name ?? '')} backend.`,
  );

  h2('What the numbers show');
  for (const text of reading(r)) para(text);

  h2('Training settings per temperature');
  para(
    "At T the cross-entropy's gradient with respect to the logits is (p − y)/T, so the paper's settings learn T times more slowly and can stay at chance for several epochs. " +
      "At every T > 1 the loss gradient is therefore scaled by T (the loss scale), with a learning rate small enough not to diverge: at most the profile's rate, and at most 1/T, since the larger logits of high T need smaller steps; at T = 1 the paper's settings are kept. " +
      'Both model kinds at a temperature share its settings.',
  );
  table({
    id: 'training-settings',
    columns: ['T', 'loss scale', 'learning rate', 'momentum, batch, L2, dropout'],
    align: ['r', 'r', 'r', 'l'],
    rows: r.trainingSettings.map((s) => [
      String(s.temperature),
      String(s.lossScale),
      String(s.learningRate),
      "the paper's (0.5, 128, 0.01, 0.5)",
    ]),
  });
  if (r.probes.length) {
    para('The probes that chose them: seed 0, test accuracy at T = 1 after the epochs shown on the first training images shown.');
    table({
      id: 'training-probes',
      columns: ['T', 'loss scale', 'learning rate', 'epochs', 'training images', 'test accuracy'],
      align: ['r', 'r', 'r', 'r', 'r', 'r'],
      rows: r.probes.map((x) => [
        String(x.temperature),
        String(x.lossScale),
        String(x.learningRate),
        String(x.epochs),
        x.trainImages.toLocaleString('en-US'),
        pct(x.testAccuracy, 2),
      ]),
    });
  }

  h2('Models');
  table({
    id: 'models',
    columns: ['model', 'T', 'seed', 'loss scale', 'learning rate', 'epochs', 'test accuracy (T = 1)', 'status', 'trained by commit'],
    align: ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'l', 'l'],
    rows: r.models.map((m) => [
      m.name,
      String(m.temperature),
      String(m.seed),
      String(m.lossScale),
      String(m.learningRate),
      String(m.epochs),
      pct(m.testAccuracy, 2),
      m.status === 'ok'
        ? 'attacked'
        : m.status === 'near-chance'
          ? `**near chance** (below ${pct(p.nearChance, 0)}): not attacked`
          : '**not trained**: its teacher is near chance',
      commitText(m.trainedBy),
    ]),
  });
  h3('Accuracy against T');
  const accuracy = (kind: StudyModelKind, T: number) => {
    const xs = r.models.filter((m) => m.kind === kind && m.temperature === T && m.testAccuracy !== undefined).map((m) => m.testAccuracy!);
    if (!xs.length) return '–';
    return xs.length > 1 ? `${pct(meanOf(xs), 2)} (${pct(Math.min(...xs), 2)}–${pct(Math.max(...xs), 2)})` : pct(xs[0], 2);
  };
  table({
    id: 'accuracy-vs-temperature',
    columns: ['T', ...KINDS.map((k) => KIND_NAMES[k])],
    align: right(2),
    rows: ts.map((T) => [String(T), ...KINDS.map((k) => accuracy(k, T))]),
  });
  figure('accuracy-vs-temperature');

  h2('Attack success against T');
  para(
    'Each cell: the success rate pooled over the seeds [95% Wilson interval] of the samples attacked' +
      (r.seeds.length > 1 ? ', then the per-seed rates: mean (min–max)' : '') +
      '. Transfers: the share of samples (crafted on M_std, classified correctly by the model) the model misclassifies.',
  );
  h3('Headline: M_std-T / M_distill(T)');
  table({
    id: 'headline',
    columns: ['attack', ...ts.map((T) => `T = ${T}`)],
    align: right(ts.length),
    rows: p.attacks.map((id) => [
      studyAttack(id).label,
      ...ts.map((T) => KINDS.map((k) => pct(pooledRate(r, id, k, T)?.rate)).join(' / ')),
    ]),
  });
  figure('success-vs-temperature');
  figure('success-vs-epsilon'); // where attacks differ only in their radius
  for (const id of p.attacks) {
    h3(`${studyAttack(id).label} (\`${id}\`)`);
    const common = r.attacks.some((x) => x.attack === id && x.common);
    const rows = ts.map((T) => [
      String(T),
      ...KINDS.map((k) => cell(pooledRate(r, id, k, T))),
      ...(common ? KINDS.map((k) => cell(pooledRate(r, id, k, T, true))) : []),
    ]);
    const columns = ['T', ...KINDS.map((k) => KIND_NAMES[k])];
    if (common) columns.push(...KINDS.map((k) => `${KIND_NAMES[k]}, ≤ ${COMMON_PIXEL_BUDGET} px`));
    table({ id: `success-${id}`, columns, align: right(columns.length - 1), rows });
  }
  h3(`Algorithm 2 and JSMA at the common budget of ${COMMON_PIXEL_BUDGET} changed pixels`);
  const commonIds = p.attacks.filter((id) => r.attacks.some((x) => x.attack === id && x.common));
  table({
    id: 'success-common-budget',
    columns: ['attack', ...ts.map((T) => `T = ${T}`)],
    align: right(ts.length),
    rows: commonIds.map((id) => [
      studyAttack(id).label,
      ...ts.map((T) => KINDS.map((k) => pct(pooledRate(r, id, k, T, true)?.rate)).join(' / ')),
    ]),
  });

  h2('All-zero saliency against T');
  para(
    'Attacked samples whose first saliency map (JSMA: both maps; PGD and FGSM: the gradient) was exactly zero in every entry, of the samples attacked, M_std-T / M_distill(T), summed over the seeds.',
  );
  const zeroRows = p.attacks
    .filter((id) => !studyAttack(id).transferOf)
    .map((id) => [
      studyAttack(id).label,
      ...ts.map((T) =>
        KINDS.map((k) => {
          const rows = rowsOf(r, id, k, T);
          return rows.length
            ? `${rows.reduce((a, x) => a + (x.allZeroSaliency ?? 0), 0)}/${rows.reduce((a, x) => a + x.attacked, 0)}`
            : '–';
        }).join(' · '),
      ),
    ]);
  table({ id: 'all-zero-saliency', columns: ['attack', ...ts.map((T) => `T = ${T}`)], align: right(ts.length), rows: zeroRows });

  h2('Input gradients against T');
  para(
    'dL/dx of the cross-entropy on the samples every model of the seed that learned classifies correctly, at evaluation temperature 1 and at the training temperature, in float32 and float64.',
  );
  table({
    id: 'gradients',
    columns: ['model', 'T', 'seed', 'eval T', 'precision', 'samples', 'mean |g|', 'max |g|', 'all-zero samples', 'samples with subnormals'],
    align: ['l', 'r', 'r', 'r', 'l', 'r', 'r', 'r', 'r', 'r'],
    rows: r.gradients.flatMap((g) =>
      g.rows.map((row) => [
        KIND_NAMES[g.kind],
        String(g.temperature),
        String(g.seed),
        String(row.temperature),
        row.precision,
        String(row.samples),
        sci(row.meanAbs),
        sci(row.maxAbs),
        `${row.zeroSamples} (${pct(row.zeroFraction)})`,
        row.precision === 'float32' ? String(row.subnormalSamples) : '–',
      ]),
    ),
  });
  figure('gradient-vs-temperature');

  const worst = r.worstCase ?? [];
  if (worst.length) {
    h2('Worst-case robust accuracy');
    para(
      `A sample counts as robust only if the model classifies it correctly and every one of the study's L-infinity attacks at ε = ${worst[0].epsilon} ` +
        "failed on it (AutoAttack's rule), over all the study's samples, with its 95% Wilson interval. The attacks counted are those the study ran at that radius, transfers included; " +
        'the pixel attacks (Algorithm 2, JSMA) work in another threat model and do not count.',
    );
    table({
      id: 'worst-case',
      columns: ['model', 'T', 'seed', 'attacks counted', 'robust', 'robust accuracy [95% CI]'],
      align: ['l', 'r', 'r', 'l', 'r', 'r'],
      rows: worst.map((w) => [
        KIND_NAMES[w.kind],
        String(w.temperature),
        String(w.seed),
        w.attacks.map((a) => `\`${a}\``).join(', '),
        `${w.robust}/${w.samples}`,
        `${pct(w.robustAccuracy)} [${pct(w.interval.low)}, ${pct(w.interval.high)}]`,
      ]),
    });
  }
  const diagnoses = r.diagnoses ?? [];
  if (diagnoses.length) {
    h2('Masking diagnosis per model');
    const d0 = diagnoses[0].diagnosis;
    para(
      `\`tempered diagnose\` on every model (docs/diagnose.md): its fixed battery on the first ${d0.settings.samples} of the samples at ε = ${d0.settings.epsilon}, ` +
        'the transfer crafted on M_std of the same seed (M_std itself: on a surrogate the diagnosis trains), and the verdict with the rule that produced it.' +
        (d0.notEvaluated.length
          ? ` Not evaluated in this build: rule ${d0.notEvaluated.join(', ')}` +
            (d0.settings.missingAttacks.length ? ` (the registry lacks ${d0.settings.missingAttacks.join(', ')}).` : '.')
          : ''),
    );
    table({
      id: 'diagnoses',
      columns: ['model', 'T', 'seed', 'verdict', 'by', 'float32 all-zero gradients', 'worst case of the battery [95% CI]', 'commit'],
      align: ['l', 'r', 'r', 'l', 'l', 'r', 'r', 'l'],
      rows: diagnoses.map((x) => {
        const d = x.diagnosis;
        const g = d.gradients.find((y) => y.temperature === d.settings.temperature && y.precision === 'float32');
        return [
          KIND_NAMES[x.kind],
          String(x.temperature),
          String(x.seed),
          d.verdict === 'robustness is gradient masking' ? `**${d.verdict}**` : d.verdict,
          d.rule,
          g ? `${g.zeroSamples}/${g.samples}` : '–',
          `${pct(d.worstCase.robustAccuracy)} [${pct(d.worstCase.interval.low)}, ${pct(d.worstCase.interval.high)}]`,
          commitText(x.producedBy),
        ];
      }),
    });
  }

  h2('Stage times and the code that produced each piece');
  para(
    'Wall time of every stage; a reused piece shows the time recorded when it was computed, by the commit shown. ' +
      `This run: commit ${shortCommit(r.code)}; total ${r.seconds.toFixed(0)} s.`,
  );
  const total = (stage: string) => r.stages.filter((s) => s.stage === stage).reduce((a, s) => a + s.seconds, 0);
  table({
    id: 'stage-totals',
    columns: ['stage', 'seconds (computed now or when first computed)'],
    align: ['l', 'r'],
    rows: ['train', 'attack', 'gradients', ...(diagnoses.length ? ['diagnose'] : []), 'render'].map((s) => [s, total(s).toFixed(1)]),
  });
  table({
    id: 'stages',
    columns: ['stage', 'what', 'seconds', 'reused', 'commit'],
    align: ['l', 'l', 'r', 'l', 'l'],
    rows: r.stages.map((s) => [s.stage, s.label, s.seconds.toFixed(2), s.reused ? 'reused' : '', commitText(s.producedBy)]),
  });
  para(
    `Run again with \`npx tempered study --profile ${p.name.split(' ')[0]}\` (and the same overrides); every number here is in results.json, ` +
      'each figure with its Vega-Lite spec and data; `npx tempered report <folder>` renders this page again from results.json alone.',
  );
  return { title: `Robustness against the training temperature: profile \`${p.name}\``, blocks: B };
}
