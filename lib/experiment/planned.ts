// run-piece and the merge for any plan: the plan's kind says whose enumeration it lists.
import { PieceOutcomeSummary, readPlan } from './plan';
import { mergeReproduce, PlannedRunOptions, runReproducePiece } from './run';
import { AnyResults } from './results';
import { mergeStudy, runStudyPiece } from './study/run';

export async function runPlannedPiece(
  dir: string,
  selector: { id?: string; stage?: string; index?: number },
  opts: PlannedRunOptions = {},
): Promise<PieceOutcomeSummary> {
  const plan = await readPlan(dir);
  return plan.kind === 'reproduce' ? runReproducePiece(dir, selector, opts) : runStudyPiece(dir, selector, opts);
}

export async function mergePlanned(dir: string, opts: PlannedRunOptions = {}): Promise<AnyResults> {
  const plan = await readPlan(dir);
  return plan.kind === 'reproduce' ? mergeReproduce(dir, opts) : mergeStudy(dir, opts);
}
