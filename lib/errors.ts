// Errors raised by the TypeScript layer. Native errors arrive as TypeError / RangeError /
// Error with a `code` (see native/napi/errors.h); these use the same style so callers can
// switch on `code` whatever layer refused the input.

/** Every code an error of this package carries, native or TypeScript (test/native-codes.test.ts
 * checks the list against the native sources and lib/), with the CLI's exit status for it:
 * 2 for a caller's mistake (bad input, a missing or unusable file, a backend that cannot run
 * here), 1 for a failure of the run itself. */
export const TEMPERED_ERRORS = {
  // arguments (native/napi/errors.h and lib/errors.ts)
  TEMPERED_INVALID_TYPE: 2,
  TEMPERED_INVALID_LENGTH: 2,
  TEMPERED_OUT_OF_RANGE: 2,
  TEMPERED_NOT_FINITE: 2,
  // the state of an object (native/napi/errors.h)
  TEMPERED_BUSY: 1,
  TEMPERED_DISPOSED: 1,
  TEMPERED_BACKEND_MISMATCH: 2,
  // engine statuses (native/include/tempered/status.h)
  TEMPERED_INVALID_ARGUMENT: 2,
  TEMPERED_OUT_OF_MEMORY: 1,
  TEMPERED_BACKEND_UNAVAILABLE: 2,
  TEMPERED_DEVICE_ERROR: 1,
  TEMPERED_INTERNAL: 1,
  TEMPERED_BAD_ARCH: 2,
  TEMPERED_UNSUPPORTED: 1,
  // files and data (lib/)
  TEMPERED_BAD_FILE: 2,
  TEMPERED_BAD_DATA: 2,
  TEMPERED_INCOMPATIBLE: 2,
  TEMPERED_UNSUPPORTED_MODEL: 2,
  TEMPERED_IO: 1,
  // plans and their pieces (lib/experiment/plan.ts): a missing or mismatched dependency, an unknown piece
  TEMPERED_PLAN: 2,
  // loading the addon (lib/native.ts)
  TEMPERED_ADDON_MISSING: 1,
} as const;

export type TemperedErrorCode = keyof typeof TEMPERED_ERRORS;
export const TEMPERED_ERROR_CODES = Object.keys(TEMPERED_ERRORS) as TemperedErrorCode[];

/** The CLI's exit status for an error: 2 for a caller's mistake, else 1. A TEMPERED_IO error
 * whose cause is a path that does not exist or is not a file (ENOENT, ENOTDIR, EISDIR; ENOTREG:
 * lib/fsutil.ts's mark for a FIFO, device or socket) is
 * the caller's mistake too. */
export function exitStatus(error: unknown): 1 | 2 {
  const e = error as { code?: unknown; cause?: { code?: unknown } } | null;
  const code = typeof e?.code === 'string' ? e.code : undefined;
  if (code === 'TEMPERED_IO' && ['ENOENT', 'ENOTDIR', 'EISDIR', 'ENOTREG'].includes(String(e?.cause?.code))) return 2;
  return code !== undefined && code in TEMPERED_ERRORS ? TEMPERED_ERRORS[code as TemperedErrorCode] : 1;
}

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
