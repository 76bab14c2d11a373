// The ranges of the numeric options, read from the addon (native/napi/limits.h) so that the
// TypeScript layer refuses exactly what the engine refuses, with the same message.
import type { NativeLimit } from '../binding';
import { rangeError, typeError } from './errors';
import { native } from './native';

export type LimitName =
  'temperature' | 'learningRate' | 'momentum' | 'lossScale' | 'l2' | 'dropoutRate' | 'lossTemperature' | 'epsilon' | 'stepSize';

let table: Record<LimitName, NativeLimit> | undefined;
export function limits(): Record<LimitName, NativeLimit> {
  if (!table) table = native.limits();
  return table;
}

/** "(0, 1000000]": the limit as the messages write it. */
export function describeLimit(l: NativeLimit): string {
  return `${l.minExclusive ? '(' : '['}${l.min}, ${l.max}${l.maxExclusive ? ')' : ']'}`;
}

/** `value` if it is a finite number within the limit `key`, else the engine's coded error. */
export function checkLimit(value: unknown, name: string, key: LimitName): number {
  const l = limits()[key];
  if (typeof value !== 'number') throw typeError(`${name} must be a number`);
  if (!Number.isFinite(value)) throw rangeError(`${name} must be finite (got ${value})`, 'TEMPERED_NOT_FINITE');
  const ok = (l.minExclusive ? value > l.min : value >= l.min) && (l.maxExclusive ? value < l.max : value <= l.max);
  if (!ok) throw rangeError(`${name} must be in ${describeLimit(l)} (got ${value})`);
  return value;
}
