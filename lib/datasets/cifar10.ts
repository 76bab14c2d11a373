// CIFAR-10 in its binary version (Krizhevsky's cifar-10-binary.tar.gz, which unpacks into
// cifar-10-batches-bin/): data_batch_1.bin ... data_batch_5.bin and test_batch.bin, each a
// sequence of 3,073-byte records: one label byte (0..9), then the 32x32 image channels first
// (1,024 red bytes, 1,024 green, 1,024 blue, each plane row-major). The networks take NHWC,
// so the planes are interleaved here. Every file is checked before use, as the IDX reader's.
import { createHash } from 'crypto';
import * as path from 'path';
import { TemperedError } from '../errors';
import { readRegularFile } from '../fsutil';
import type { ImageShape, MnistData, MnistSplit } from '../mnist';
import { PIXEL_SCALE, allInOrder, badData, exists, splitSizes, type SplitTable, checkSplitOptions } from './common';

export const CIFAR10_SHAPE: Readonly<ImageShape> = Object.freeze({ height: 32, width: 32, channels: 3 });
const CLASSES = 10;
const PLANE = 32 * 32;
const IMAGE_BYTES = 3 * PLANE;
export const CIFAR10_RECORD_BYTES = 1 + IMAGE_BYTES;

/** The training batches in order (their records, read one after another, are the training
 * set), then the test batch: also the order of the fingerprint. */
export const CIFAR10_TRAIN_FILES = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'];
export const CIFAR10_TEST_FILE = 'test_batch.bin';
export const CIFAR10_FILES = [...CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE];

/** A real batch holds 10,000 records (30,730,000 bytes); a file ten times that is not one,
 * and is refused before it is read. */
export const MAX_CIFAR10_BATCH_BYTES = 100_000 * CIFAR10_RECORD_BYTES;

/** 'paper': Carlini & Wagner's 5,000 validation images (they took them from the front; here,
 * as for MNIST, the last 5,000 of the training records: data_batch_5's second half). */
const SPLITS: SplitTable = {
  paper: { train: 45_000, validation: 5_000 },
  original: { train: 49_000, validation: 1_000 },
};

interface Batch {
  file: string;
  bytes: Buffer;
  count: number;
}

/** Checks one batch file's bytes: whole records, at least one, labels 0..9. */
export function parseCifar10Batch(bytes: Buffer, file: string): Batch {
  if (bytes.length === 0) throw badData(`${file}: empty file; a CIFAR-10 batch holds records of ${CIFAR10_RECORD_BYTES} bytes`);
  const extra = bytes.length % CIFAR10_RECORD_BYTES;
  if (extra !== 0)
    throw badData(
      `${file}: ${bytes.length} bytes is not a whole number of ${CIFAR10_RECORD_BYTES}-byte records ` +
        `(1 label byte + ${IMAGE_BYTES} pixel bytes): ${extra} bytes past the last whole record`,
    );
  const count = bytes.length / CIFAR10_RECORD_BYTES;
  for (let r = 0; r < count; r++) {
    const label = bytes[r * CIFAR10_RECORD_BYTES];
    if (label >= CLASSES) throw badData(`${file}: record ${r} has label ${label}, outside 0..${CLASSES - 1}`);
  }
  return { file, bytes, count };
}

async function readBatch(dir: string, name: string): Promise<Batch> {
  const file = path.join(dir, name);
  if (!(await exists(file)))
    throw new TemperedError(
      'TEMPERED_IO',
      `${dir}: no ${name} in this CIFAR-10 folder (the binary version has ${CIFAR10_FILES.join(', ')})`,
    );
  // Only a regular file is read (a FIFO or a device is refused, never waited on).
  const bytes = await readRegularFile(file, { maxBytes: MAX_CIFAR10_BATCH_BYTES });
  return parseCifar10Batch(bytes, file);
}

/**
 * Records `firstIndex` .. `firstIndex + count - 1` of `batches` read one after another, as a
 * split: the channel planes of each record interleaved into NHWC, scaled to [0, 1].
 */
function makeSplit(batches: Batch[], firstIndex: number, count: number, source: 'train' | 'test'): MnistSplit {
  const images = new Float32Array(count * IMAGE_BYTES);
  const labels = new Int32Array(count);
  let batch = 0;
  let batchStart = 0; // index of batches[batch]'s first record
  for (let k = 0; k < count; k++) {
    const index = firstIndex + k;
    while (index >= batchStart + batches[batch].count) batchStart += batches[batch++].count;
    const { bytes } = batches[batch];
    const record = (index - batchStart) * CIFAR10_RECORD_BYTES;
    labels[k] = bytes[record];
    const out = k * IMAGE_BYTES;
    // Plane by plane: reading each plane in order is several times faster than gathering
    // three planes per pixel.
    for (let c = 0; c < 3; c++) {
      const plane = record + 1 + c * PLANE;
      for (let p = 0; p < PLANE; p++) images[out + p * 3 + c] = PIXEL_SCALE[bytes[plane + p]];
    }
  }
  return { images, labels, count, shape: { ...CIFAR10_SHAPE }, classes: CLASSES, firstIndex, source };
}

/**
 * Loads the CIFAR-10 binary batches of `dir` (a folder that exists) and splits them: train =
 * the first records of data batches 1-5, validation = the last ones ('paper': 45,000 /
 * 5,000; 'original': 49,000 / 1,000; or `validation: N`), test = test_batch.bin.
 */
export async function loadCifar10Folder(dir: string, splitOpts: ReturnType<typeof checkSplitOptions>): Promise<MnistData> {
  const batches = await allInOrder(CIFAR10_FILES.map((name) => readBatch(dir, name)));
  const training = batches.slice(0, CIFAR10_TRAIN_FILES.length);
  const test = batches[CIFAR10_TRAIN_FILES.length];
  const available = training.reduce((n, b) => n + b.count, 0);
  const sizes = splitSizes(SPLITS, splitOpts, available, `${dir}: ${CIFAR10_TRAIN_FILES[0]} ... ${CIFAR10_TRAIN_FILES.at(-1)}`);

  const hash = createHash('sha256');
  for (const b of batches) hash.update(b.bytes);

  return {
    train: makeSplit(training, 0, sizes.train, 'train'),
    validation: makeSplit(training, available - sizes.validation, sizes.validation, 'train'),
    test: makeSplit([test], 0, test.count, 'test'),
    dir,
    split: sizes.name,
    fingerprint: hash.digest('hex'),
    description: `CIFAR-10 binary (${dir})`,
  };
}
