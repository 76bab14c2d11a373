// runTransfer: adversarial images crafted on one model (the source) and classified by
// another (the target), the usual check that a defence does not merely hide its gradient
// (Papernot et al. 2017; Carlini & Wagner 2017).
import { AttackAlgorithm, AttackOptions, AttackOptionsOf, AttackResult, checkAttackOptions, runAttack } from '../attack';
import { typeError } from '../errors';
import { loadMnist, MnistSplit } from '../mnist';
import { Model, checkSplitFits } from '../model';
import { wilsonInterval } from '../stats';

export interface TransferRecord {
  index: number;
  label: number;
  /** JSMA: the source attack's target. */
  target?: number;
  /** The source model attacked the sample (it classified it correctly; JSMA: and the target was not the label). */
  crafted: boolean;
  /** The source attack succeeded on the source model. */
  sourceSuccess: boolean;
  /** The target model's prediction on the original image and on the crafted one. */
  targetInitialPrediction: number;
  targetFinalPrediction: number;
  /** Counted: crafted, and the target model classified the original correctly. */
  counted: boolean;
  /** Counted and the target model misclassifies the crafted image. */
  success: boolean;
}

export interface TransferSummary {
  algorithm: AttackAlgorithm;
  /** Records crafted on the source, counted on the target, and transferred. */
  samples: number;
  crafted: number;
  counted: number;
  successes: number;
  successRate: number;
  interval: { low: number; high: number };
  /** Among the counted: the source attack's own success, and transfer among those where it succeeded. */
  sourceSuccesses: number;
  successesWhereSourceSucceeded: number;
  /** The source attack's summary on the source model. */
  source: AttackResult['summary'];
  seconds: number;
}

export interface TransferResult {
  summary: TransferSummary;
  records: TransferRecord[];
}

/**
 * Crafts adversarial images with `alg` on `source` (opts as runAttack) and classifies them
 * with `target`. Every crafted image counts, whether or not it fooled the source; success
 * means the target model misclassifies it (prediction != label). Samples the target model
 * misclassifies to begin with, and samples the source did not attack, are not counted.
 */
export async function runTransfer<A extends AttackAlgorithm>(
  source: Model,
  target: Model,
  alg: A,
  options?: AttackOptionsOf<A>,
): Promise<TransferResult> {
  let opts = (options ?? {}) as AttackOptions;
  if (!(source instanceof Model)) throw typeError('source must be a Model');
  if (!(target instanceof Model)) throw typeError('target must be a Model');
  const started = Date.now();
  if (opts.split === undefined && opts.data === undefined) {
    checkAttackOptions(alg, opts); // nonsense is refused before loading
    opts = { ...opts, data: await loadMnist() };
  }
  const crafted = await runAttack(source, alg as AttackAlgorithm, opts);
  return classifyTransfer(crafted, target, (opts.split ?? opts.data?.test) as MnistSplit, started);
}

/**
 * The transfer of attack records already crafted on a source model (each with its
 * adversarial image) to `target`: counted and scored as runTransfer does.
 */
export async function classifyTransfer(
  crafted: AttackResult,
  target: Model,
  split: MnistSplit,
  started = Date.now(),
): Promise<TransferResult> {
  if (!(target instanceof Model)) throw typeError('target must be a Model');
  const alg = crafted.summary.algorithm;
  const n = crafted.records.length;
  checkSplitFits(split, target);
  const size = target.inputSize;
  const originals = new Float32Array(n * size);
  const adversarials = new Float32Array(n * size);
  crafted.records.forEach((r, k) => {
    adversarials.set(r.adversarial, k * size);
    originals.set(split.images.subarray(r.index * size, (r.index + 1) * size), k * size);
  });
  const before = await target.classify(originals);
  const after = await target.classify(adversarials);
  const records: TransferRecord[] = crafted.records.map((r, k) => {
    const counted = r.attacked && before[k] === r.label;
    return {
      index: r.index,
      label: r.label,
      ...(r.target !== undefined ? { target: r.target } : {}),
      crafted: r.attacked,
      sourceSuccess: r.success,
      targetInitialPrediction: before[k],
      targetFinalPrediction: after[k],
      counted,
      success: counted && after[k] !== r.label,
    };
  });
  const counted = records.filter((r) => r.counted);
  const wins = counted.filter((r) => r.success);
  return {
    summary: {
      algorithm: alg,
      samples: n,
      crafted: records.filter((r) => r.crafted).length,
      counted: counted.length,
      successes: wins.length,
      successRate: counted.length ? wins.length / counted.length : 0,
      interval: wilsonInterval(wins.length, counted.length),
      sourceSuccesses: counted.filter((r) => r.sourceSuccess).length,
      successesWhereSourceSucceeded: wins.filter((r) => r.sourceSuccess).length,
      source: crafted.summary,
      seconds: (Date.now() - started) / 1000,
    },
    records,
  };
}
