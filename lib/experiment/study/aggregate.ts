// The study's numbers per (attack, model kind, T), pooled over the seeds: successes and
// attacked samples summed, with the 95% Wilson interval of the pooled rate, and the spread of
// the per-seed rates (mean, min, max). Used by the figures and the report alike.
import { wilsonInterval } from '../../stats';
import type { StudyAttackRow, StudyModelKind, StudyResults } from './results';

export interface PooledRate {
  successes: number;
  attacked: number;
  rate: number;
  interval: { low: number; high: number };
  /** The per-seed rates (seeds where something was attacked). */
  seedRates: number[];
  mean: number;
  min: number;
  max: number;
}

export const KIND_NAMES: Record<StudyModelKind, string> = { stdT: 'M_std-T (trained at T)', distill: 'M_distill(T)' };

export function pool(parts: { successes: number; attacked: number }[]): PooledRate | undefined {
  const counted = parts.filter((p) => p.attacked > 0);
  if (counted.length === 0) return undefined;
  const successes = counted.reduce((a, p) => a + p.successes, 0);
  const attacked = counted.reduce((a, p) => a + p.attacked, 0);
  const seedRates = counted.map((p) => p.successes / p.attacked);
  return {
    successes,
    attacked,
    rate: successes / attacked,
    interval: wilsonInterval(successes, attacked),
    seedRates,
    mean: seedRates.reduce((a, x) => a + x, 0) / seedRates.length,
    min: Math.min(...seedRates),
    max: Math.max(...seedRates),
  };
}

export function rowsOf(r: Pick<StudyResults, 'attacks'>, attack: string, kind: StudyModelKind, temperature: number): StudyAttackRow[] {
  return r.attacks.filter((a) => a.attack === attack && a.kind === kind && a.temperature === temperature);
}

/** The pooled rate of `attack` on the models of `kind` trained at `temperature` (at the common pixel budget when asked). */
export function pooledRate(
  r: Pick<StudyResults, 'attacks'>,
  attack: string,
  kind: StudyModelKind,
  temperature: number,
  atCommonBudget = false,
): PooledRate | undefined {
  const rows = rowsOf(r, attack, kind, temperature);
  if (atCommonBudget)
    return rows.every((x) => x.common) ? pool(rows.map((x) => ({ successes: x.common!.successes, attacked: x.attacked }))) : undefined;
  return pool(rows);
}

/** Mean over seeds of a number per model (undefined when no model has it). */
export function meanOf(values: (number | undefined)[]): number | undefined {
  const xs = values.filter((v): v is number => v !== undefined && Number.isFinite(v));
  return xs.length ? xs.reduce((a, x) => a + x, 0) / xs.length : undefined;
}
