// Type test, checked by `npm run typecheck` (tsconfig.test.json) and never run: each
// `@ts-expect-error` line is something checkAttackOptions refuses at run time, and must not
// compile either; the other lines must. An unused `@ts-expect-error` fails the type-check.
import type { AttackAlgorithm, AttackOptions, AttackOptionsOf, ClassIndex, Model } from '../../lib';
import { runAttack, runTransfer } from '../../lib';

export function typedOptions(model: Model, other: Model, anyAlg: AttackAlgorithm, loose: AttackOptions, n: number): void {
  // What each attack takes compiles.
  void runAttack(model, 'alg2', { samples: 100, budget: 100, loss: 'margin', precision: 'float64', temperature: 1, keepSaliency: true });
  void runAttack(model, 'alg4', { samples: [0, 1, 2], budget: 50 });
  void runAttack(model, 'pgd', { epsilon: 0.3, steps: 40, stepSize: 0.01, randomStart: false, loss: 'margin' });
  void runAttack(model, 'pgd', { epsilons: [0.05, 0.1, 0.2, 0.3] });
  void runAttack(model, 'fgsm', { epsilons: [0.1, 0.3], loss: 'xent' });
  void runAttack(model, 'jsma', { target: 3, budget: 20 });
  void runAttack(model, 'jsma-z', { target: 'all' });
  void runAttack(model, 'jsma', { target: n as ClassIndex });
  void runTransfer(model, other, 'fgsm', { epsilon: 0.3 });
  void runAttack(model, 'apgd-ce', { epsilon: 0.3, steps: 100, restarts: 2, temperature: 20, precision: 'float32' });
  void runAttack(model, 'apgd-dlr', { epsilons: [0.1, 0.3], restarts: 3 });
  void runAttack(model, 'apgd-t', { targetClasses: 3 });
  // An attack chosen at run time takes any attack's options (checked at run time then).
  void runAttack(model, anyAlg, loose);
  void runAttack(model, anyAlg, { budget: 10 });

  // @ts-expect-error -- alg2 takes no epsilon
  void runAttack(model, 'alg2', { epsilon: 0.3 });
  // @ts-expect-error -- pgd counts steps, not a pixel budget
  void runAttack(model, 'pgd', { budget: 100 });
  // @ts-expect-error -- JSMA follows the softmax or the logits: no loss option
  void runAttack(model, 'jsma', { loss: 'margin' });
  // A target is any number to the types: the model's class count bounds it, checked at run time.
  void runAttack(model, 'jsma', { target: 11 });
  // @ts-expect-error -- but not a word other than 'random' or 'all'
  void runAttack(model, 'jsma-z', { target: 'some' });
  // @ts-expect-error -- fgsm is one step: no steps option
  void runAttack(model, 'fgsm', { steps: 10 });
  // @ts-expect-error -- keepSaliency is for Algorithms 1-4
  void runAttack(model, 'pgd', { keepSaliency: true });
  // @ts-expect-error -- epsilon or epsilons, not both
  void runAttack(model, 'pgd', { epsilon: 0.3, epsilons: [0.1, 0.2] });
  // @ts-expect-error -- DLR is scale-invariant: no temperature
  void runAttack(model, 'apgd-dlr', { temperature: 2 });
  // @ts-expect-error -- targets are apgd-t's
  void runAttack(model, 'apgd-ce', { targetClasses: 3 });
  // @ts-expect-error -- APGD's step size follows its own schedule
  void runAttack(model, 'apgd-dlr', { stepSize: 0.01 });
  // @ts-expect-error -- an unknown algorithm
  void runAttack(model, 'cw', {});
  // @ts-expect-error -- an unknown option
  void runAttack(model, 'alg1', { pixels: 10 });
  // @ts-expect-error -- a loss that does not exist
  void runAttack(model, 'alg3', { loss: 'hinge' });
  // @ts-expect-error -- the transfer's options are the attack's
  void runTransfer(model, other, 'alg1', { epsilon: 0.3 });
}

// The derived type itself, beside the registry.
export const pgdOptions: AttackOptionsOf<'pgd'> = { epsilon: 0.1, steps: 100 };
// @ts-expect-error -- target is JSMA's
export const alg1Options: AttackOptionsOf<'alg1'> = { target: 3 };
