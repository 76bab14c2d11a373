// What the data readers (lib/mnist.ts for IDX, lib/datasets/cifar10.ts) share: the coded
// errors, the options that choose the validation split, the folder check, and the byte to
// float conversion.
import { promises as fsp } from 'fs';
import { TemperedError, checkNumber, rangeError, typeError } from '../errors';
import type { MnistSplitName } from '../mnist';

export function badData(message: string, cause?: unknown): TemperedError {
  return new TemperedError('TEMPERED_BAD_DATA', message, cause === undefined ? undefined : { cause });
}

/** 0..255 -> [0, 1] as float32; a table keeps the conversion of millions of pixels a plain lookup. */
export const PIXEL_SCALE = (() => {
  const table = new Float32Array(256);
  for (let v = 0; v < 256; v++) table[v] = v / 255;
  return table;
})();

/** How the training file(s) are divided: a named split, or the last `validation` images held
 * out and all the others trained on. */
export interface SplitOptions {
  split?: MnistSplitName;
  validation?: number;
}

/** The split options, checked before anything touches the disk. */
export function checkSplitOptions(opts: SplitOptions): { split: MnistSplitName; validation?: number } {
  const { split = 'paper', validation } = opts;
  if (split !== 'paper' && split !== 'original') throw rangeError(`split must be 'paper' or 'original' (got '${String(split)}')`);
  if (validation !== undefined) checkNumber(validation, 'validation', { integer: true, min: 1 });
  return { split, validation };
}

export function checkDirOption(dir: unknown): string | undefined {
  if (dir !== undefined && typeof dir !== 'string') throw typeError(`dir must be a string (got ${typeof dir})`);
  return dir;
}

/** Train and validation sizes of one format's named splits. */
export type SplitTable = Record<MnistSplitName, { train: number; validation: number }>;

/**
 * The sizes of train and validation out of `available` training images: the named split of
 * `table`, or with `validation` the last that many and every other image for training.
 * `where` names the training file(s) in the refusal when there are too few.
 */
export function splitSizes(
  table: SplitTable,
  opts: { split: MnistSplitName; validation?: number },
  available: number,
  where: string,
): { train: number; validation: number; name: MnistSplitName | 'custom' } {
  if (opts.validation !== undefined) {
    if (opts.validation >= available)
      throw badData(`${where}: only ${available} training images; holding out ${opts.validation} for validation leaves none to train on`);
    return { train: available - opts.validation, validation: opts.validation, name: 'custom' };
  }
  const sizes = table[opts.split];
  const needed = sizes.train + sizes.validation;
  if (available < needed)
    throw badData(
      `${where}: only ${available} training images; the '${opts.split}' split needs ${needed} ` +
        `(${sizes.train} train + ${sizes.validation} validation)`,
    );
  return { ...sizes, name: opts.split };
}

/** Refuses a `dir` that does not exist or is not a folder; `what` starts the message ('MNIST folder'). */
export async function checkFolder(dir: string, what: string): Promise<void> {
  let stat;
  try {
    stat = await fsp.stat(dir);
  } catch (err) {
    throw new TemperedError('TEMPERED_IO', `${what} ${dir} cannot be opened (${(err as Error).message})`, { cause: err });
  }
  if (!stat.isDirectory()) throw new TemperedError('TEMPERED_IO', `${what} ${dir} is not a folder`);
}

/** Whether `file` exists (as anything: a file the reader then refuses still counts). */
export async function exists(file: string): Promise<boolean> {
  try {
    await fsp.lstat(file);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

/** The values of reads run in parallel, or the first failure in their order: the same broken
 * folder always gives the same message, whichever read finished first. */
export async function allInOrder<T>(reads: Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(reads);
  return settled.map((result) => {
    if (result.status === 'rejected') throw result.reason;
    return result.value;
  });
}
