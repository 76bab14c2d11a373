// APGD (Croce & Hein 2020) for one sample, written from the definition in docs/algorithms.md,
// not from the C++: the checkpoints from the recurrence of p_j in float64, the step-size
// decisions by counting over each window of stored losses, the DLR losses by sorting, and
// the run itself sample by sample with the float32 arithmetic of the steps emulated
// (Math.fround). The loss and its gradient come from an oracle (the float64 network of
// arch-network.ts in the tests), so float32 and float64 can disagree only where a decision is
// ill-conditioned: a gradient entry tiny beside the largest (its sign), two losses or two
// logits nearly equal (a comparison). The run records the first such decision it met.
import { counterBits, uniform24 } from './rng';

/** The checkpoints of `steps` steps: ceil(p_j N) for p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06); those in (0, N), distinct, ascending. */
export function referenceCheckpoints(steps: number): number[] {
  const p = [0, 0.22];
  while (p[p.length - 1] < 1) p.push(p[p.length - 1] + Math.max(p[p.length - 1] - p[p.length - 2] - 0.03, 0.06));
  const w = new Set<number>();
  // p_j N is a whole number of hundredths of N: 1e-9 absorbs the float64 error of p_j.
  for (const pj of p.slice(1)) {
    const v = Math.ceil(pj * steps - 1e-9);
    if (v > 0 && v < steps) w.add(v);
  }
  return [...w].sort((a, b) => a - b);
}

export interface ScheduleDecisions {
  checkpoints: number[];
  /** Per iterate j (0 = the start): whether it became x_max, whether eta halved there. */
  newMax: boolean[];
  halve: boolean[];
}

/** The decisions of one run whose iterates have `losses` (x^0 first). */
export function referenceSchedule(steps: number, losses: number[]): ScheduleDecisions {
  const checkpoints = referenceCheckpoints(steps);
  const newMax = [false];
  const halve = [false];
  // The loss of each iterate as it stands: an iterate replaced by x_max has f_max.
  const standing = [losses[0]];
  let fMax = losses[0];
  let lastW = 0;
  let fMaxAtLast = losses[0];
  let halvedAtLast: boolean = false;
  for (let j = 1; j < losses.length; j++) {
    const f = losses[j];
    newMax.push(f > fMax);
    if (f > fMax) fMax = f;
    standing.push(f);
    let h = false;
    if (checkpoints.includes(j)) {
      let raised = 0;
      for (let i = lastW; i < j; i++) if (standing[i + 1] > standing[i]) raised++;
      const condition1: boolean = raised < 0.75 * (j - lastW);
      const condition2: boolean = !halvedAtLast && fMax === fMaxAtLast;
      h = condition1 || condition2;
      halvedAtLast = h;
      fMaxAtLast = fMax;
      lastW = j;
      if (h) standing[j] = fMax;
    }
    halve.push(h);
  }
  return { checkpoints, newMax, halve };
}

/** The classes by logit, descending, ties to the lower class. */
function byLogit(z: ArrayLike<number>): number[] {
  return Array.from({ length: z.length }, (_, k) => k).sort((a, b) => z[b] - z[a] || a - b);
}

/** DLR (target undefined) or targeted DLR of one logit row, and its gradient w.r.t. the logits. */
export function referenceDlr(z: ArrayLike<number>, label: number, target?: number): { loss: number; dz: Float64Array } {
  const pi = byLogit(z);
  const other = target ?? pi.filter((k) => k !== label)[0];
  const num = z[label] - z[other];
  const dnum = new Float64Array(z.length);
  dnum[label] += 1;
  dnum[other] -= 1;
  const dden = new Float64Array(z.length);
  let den: number;
  if (target === undefined) {
    den = z[pi[0]] - z[pi[2]] + 1e-12;
    dden[pi[0]] += 1;
    dden[pi[2]] -= 1;
  } else {
    den = z[pi[0]] - (z[pi[2]] + z[pi[3]]) / 2 + 1e-12;
    dden[pi[0]] += 1;
    dden[pi[2]] -= 0.5;
    dden[pi[3]] -= 0.5;
  }
  // loss = -num / den
  const dz = Float64Array.from(dnum, (d, k) => -d / den + (num * dden[k]) / (den * den));
  return { loss: -num / den, dz };
}

/** The loss (to maximise), its input gradient and the logits at x, in float64. */
export type ApgdOracle = (x: Float32Array, target: number | undefined) => { loss: number; gradient: Float64Array; logits: Float64Array };

export interface ReferenceApgdOptions {
  epsilon: number;
  steps: number;
  restarts: number;
  seed: number;
  key: number;
  /** apgd-t: the number of targets; undefined for the untargeted losses. */
  targetClasses?: number;
  /** Relative size below which a gradient entry's sign, or a difference of losses or logits, counts as ill-conditioned. */
  tie?: number;
}

export interface ReferenceApgdOutcome {
  attacked: boolean;
  success: boolean;
  /** Steps over every run. */
  steps: number;
  adversarial: Float32Array;
  finalPrediction: number;
  saliencyAllZero: boolean;
  /** Steps taken when the first ill-conditioned decision was met (undefined: none). */
  illConditionedAt?: number;
}

const f32 = Math.fround;

export function referenceApgd(oracle: ApgdOracle, original: Float32Array, label: number, o: ReferenceApgdOptions): ReferenceApgdOutcome {
  const tie = o.tie ?? 1e-5;
  const P = original.length;
  const eps = f32(o.epsilon);
  const lo = Float32Array.from(original, (x) => Math.max(f32(x - eps), 0));
  const hi = Float32Array.from(original, (x) => Math.min(f32(x + eps), 1));
  const out: ReferenceApgdOutcome = {
    attacked: false,
    success: false,
    steps: 0,
    adversarial: Float32Array.from(original),
    finalPrediction: -1,
    saliencyAllZero: false,
  };
  let steps = 0;
  const flag = (bad: boolean) => {
    if (bad && out.illConditionedAt === undefined) out.illConditionedAt = steps;
  };
  const near = (a: number, b: number) => a !== b && Math.abs(a - b) <= tie * Math.max(Math.abs(a), Math.abs(b), 1e-30);
  const predict = (z: Float64Array) => {
    const pi = byLogit(z);
    const scale = Math.max(...Array.from(z, Math.abs), 1e-30);
    flag(Math.abs(z[pi[0]] - z[pi[1]]) <= tie * scale);
    return pi[0];
  };
  const clean = oracle(original, undefined).logits;
  out.finalPrediction = predict(clean);
  if (out.finalPrediction !== label) return out;
  out.attacked = true;
  const targets =
    o.targetClasses === undefined
      ? [undefined]
      : byLogit(clean)
          .filter((k) => k !== label)
          .slice(0, o.targetClasses);
  let run = 0;
  for (const target of targets)
    for (let restart = 0; restart < o.restarts; restart++, run++) {
      const runSeed = counterBits(o.seed, 42, run, 0);
      let x = Float32Array.from(original, (v, p) =>
        Math.min(Math.max(f32(v + f32((2 * uniform24(runSeed, 41, o.key, p) - 1) * eps)), 0), 1),
      );
      let previous = x;
      let eta = f32(2 * eps);
      const losses: number[] = [];
      let best = x;
      let bestGradient: Float64Array = new Float64Array(P);
      let fMax = -Infinity;
      for (let j = 0; j <= o.steps; j++) {
        const { loss, gradient, logits } = oracle(x, target);
        const prediction = predict(logits);
        if (prediction !== label) {
          out.success = true;
          out.steps = steps;
          out.adversarial = x;
          out.finalPrediction = prediction;
          return out;
        }
        if (j === 0 && run === 0) out.saliencyAllZero = gradient.every((g) => g === 0);
        losses.push(loss);
        // The comparisons the schedule makes: with the previous iterate's loss, with f_max.
        if (j > 0) flag(near(loss, losses[j - 1]) || near(loss, fMax));
        const decisions = referenceSchedule(o.steps, losses);
        let g: Float64Array = gradient;
        if (j === 0 || decisions.newMax[j]) {
          best = x;
          bestGradient = gradient;
          fMax = loss;
        }
        if (decisions.halve[j]) {
          eta = f32(eta / 2);
          x = best;
          g = bestGradient;
        }
        if (j === o.steps) break;
        const largest = g.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        flag(g.some((v) => v !== 0 && Math.abs(v) <= tie * largest));
        const z = Float32Array.from(x, (v, p) => Math.min(Math.max(f32(v + eta * Math.sign(g[p])), lo[p]), hi[p]));
        const next =
          j === 0
            ? z
            : Float32Array.from(x, (v, p) =>
                Math.min(Math.max(f32(f32(v + f32(0.75 * f32(z[p] - v))) + f32(0.25 * f32(v - previous[p]))), lo[p]), hi[p]),
              );
        previous = x;
        x = next;
        steps++;
      }
      out.adversarial = best;
    }
  out.steps = steps;
  out.finalPrediction = label;
  return out;
}
