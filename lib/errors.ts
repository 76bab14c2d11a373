// Errors raised by the TypeScript layer. Native errors arrive as TypeError / RangeError /
// Error with a `code` (see native/napi/errors.h); these use the same style so callers can
// switch on `code` whatever layer refused the input.
export type TemperedErrorCode =
  | 'TEMPERED_INVALID_TYPE'
  | 'TEMPERED_INVALID_LENGTH'
  | 'TEMPERED_OUT_OF_RANGE'
  | 'TEMPERED_NOT_FINITE'
  | 'TEMPERED_BAD_FILE'
  | 'TEMPERED_BAD_DATA'
  | 'TEMPERED_BACKEND_UNAVAILABLE'
  | 'TEMPERED_INCOMPATIBLE'
  | 'TEMPERED_IO';

export class TemperedError extends Error {
  readonly code: TemperedErrorCode;
  constructor(code: TemperedErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TemperedError';
    this.code = code;
  }
}

function coded<E extends Error>(error: E, code: TemperedErrorCode): E & { code: TemperedErrorCode } {
  return Object.assign(error, { code });
}

export function typeError(message: string): TypeError & { code: TemperedErrorCode } {
  return coded(new TypeError(message), 'TEMPERED_INVALID_TYPE');
}

export function rangeError(message: string, code: TemperedErrorCode = 'TEMPERED_OUT_OF_RANGE') {
  return coded(new RangeError(message), code);
}

/** A finite number in [min, max] (exclusive ends when asked). */
export function checkNumber(
  value: unknown,
  name: string,
  opts: { min?: number; max?: number; minExclusive?: boolean; maxExclusive?: boolean; integer?: boolean } = {},
): number {
  if (typeof value !== 'number') throw typeError(`${name} must be a number (got ${typeof value})`);
  if (!Number.isFinite(value)) throw rangeError(`${name} must be finite (got ${value})`, 'TEMPERED_NOT_FINITE');
  if (opts.integer && !Number.isInteger(value)) throw rangeError(`${name} must be an integer (got ${value})`);
  const { min, max } = opts;
  if (min !== undefined && (opts.minExclusive ? value <= min : value < min))
    throw rangeError(`${name} must be ${opts.minExclusive ? '>' : '>='} ${min} (got ${value})`);
  if (max !== undefined && (opts.maxExclusive ? value >= max : value > max))
    throw rangeError(`${name} must be ${opts.maxExclusive ? '<' : '<='} ${max} (got ${value})`);
  return value;
}
