// Property-based fuzzing of the file readers (fast-check): valid safetensors, IDX and CIFAR-10 files,
// then damaged ones (truncated, bytes overwritten, bytes inserted, headers rewritten, random
// bytes). Each case must give a coded error or a load that agrees with an independent reading
// of the bytes; anything else (another exception, a crash, a hang) fails the run. The seed is
// fixed, so a failure reproduces; TEMPERED_FUZZ_SEED and TEMPERED_FUZZ_RUNS explore further.
// The time limits are generous: the work is bounded by the case count, not by a clock.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import fc from 'fast-check';
import { TemperedError } from '../lib/errors';
import { loadImageData } from '../lib/datasets';
import { parseCifar10Batch } from '../lib/datasets/cifar10';
import { decodeIdx, loadMnist } from '../lib/mnist';
import { decodeSafetensors, encodeSafetensors, readSafetensors, type Tensor } from '../lib/safetensors';

const SEED = Number(process.env.TEMPERED_FUZZ_SEED ?? 20240917);
const RUNS = Number(process.env.TEMPERED_FUZZ_RUNS ?? 10_000);
const PIXELS = 28 * 28;

/** The error a case threw must be the reader's own coded one, nothing else. */
function expectCoded(err: unknown, code: string): void {
  if (!(err instanceof TemperedError) || err.code !== code)
    throw new Error(`expected a TemperedError ${code}, got ${String((err as Error)?.stack ?? err)}`);
}

// ---------------------------------------------------------------------------------------------
// Damage applied to a valid file

type Damage =
  | { kind: 'none' }
  | { kind: 'truncate'; at: number }
  | { kind: 'overwrite'; edits: { at: number; byte: number }[] }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'random'; bytes: Uint8Array };

const damage: fc.Arbitrary<Damage> = fc.oneof(
  { weight: 1, arbitrary: fc.constant({ kind: 'none' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('overwrite' as const),
      edits: fc.array(fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 6 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('random' as const), bytes: fc.uint8Array({ maxLength: 64 }) }) },
);

/** Overwrites land mostly in the first bytes (the headers), where damage is most interesting. */
function applyDamage(buf: Buffer, d: Damage, headerBytes: number): Buffer {
  switch (d.kind) {
    case 'none':
      return buf;
    case 'truncate':
      return buf.subarray(0, buf.length === 0 ? 0 : d.at % buf.length);
    case 'overwrite': {
      const out = Buffer.from(buf);
      if (out.length === 0) return out;
      for (const e of d.edits) {
        const span = e.at % 2 === 0 ? Math.min(headerBytes, out.length) : out.length;
        out[e.at % span] = e.byte;
      }
      return out;
    }
    case 'insert': {
      const at = d.at % (buf.length + 1);
      return Buffer.concat([buf.subarray(0, at), Buffer.from(d.bytes), buf.subarray(at)]);
    }
    case 'random':
      return Buffer.from(d.bytes);
  }
}

// ---------------------------------------------------------------------------------------------
// safetensors

const tensorName = fc.oneof(fc.string({ minLength: 1, maxLength: 8 }), fc.constantFrom('w', 'b', '__proto__', 'constructor', '0', 'é'));
const shape = fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 });
const tensors: fc.Arbitrary<Tensor[]> = fc
  .uniqueArray(fc.record({ name: tensorName, shape, seed: fc.nat() }), { selector: (t) => t.name, maxLength: 4 })
  .map((list) =>
    list.map(({ name, shape, seed }) => {
      const n = shape.reduce((a, b) => a * b, 1);
      return { name, shape, data: Float32Array.from({ length: n }, (_, i) => Math.fround(Math.sin(seed + i) * 1e3)) };
    }),
  );
const metadata = fc.option(fc.dictionary(fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 }), { maxKeys: 3 }), { nil: undefined });

/** A header entry as a damaged or hand-made file might hold it: some fields right, some not. */
const looseEntry = fc.record(
  {
    dtype: fc.oneof(fc.constantFrom('F32', 'F64', 'F16', 'BF16', 'I64', 'f32', ''), fc.jsonValue()),
    shape: fc.oneof(shape, fc.array(fc.oneof(fc.integer(), fc.double(), fc.string()), { maxLength: 3 }), fc.jsonValue()),
    data_offsets: fc.oneof(
      fc.tuple(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: 64 })),
      fc.array(fc.oneof(fc.integer(), fc.double()), { maxLength: 3 }),
      fc.jsonValue(),
    ),
    extra: fc.jsonValue(),
  },
  { requiredKeys: [] },
);
const looseHeader = fc.oneof(
  fc.dictionary(fc.oneof(tensorName, fc.constant('__metadata__')), fc.oneof(looseEntry, fc.jsonValue()), { maxKeys: 4 }),
  fc.jsonValue(),
);

/** Independent reading of a loaded file: each tensor's values are the bytes at its offsets. */
function expectConsistent(buf: Buffer, loaded: ReturnType<typeof decodeSafetensors>): void {
  const headerBytes = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerBytes).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  for (const [name, t] of loaded.tensors) {
    const entry = header[name];
    expect(t.shape).toEqual(entry.shape);
    expect(t.data.length).toBe(entry.shape.reduce((a, b) => a * b, 1));
    if (t.dtype === 'F32') {
      const [begin] = entry.data_offsets;
      for (let i = 0; i < t.data.length; i++) {
        const want = buf.readFloatLE(8 + headerBytes + begin + 4 * i);
        if (!Object.is(t.data[i], want) && !(Number.isNaN(t.data[i]) && Number.isNaN(want)))
          throw new Error(`${name}[${i}] differs from its bytes`);
      }
    }
  }
}

describe('fuzz: the safetensors reader', () => {
  test(`${RUNS} damaged copies of valid files: a coded error or a consistent load`, () => {
    fc.assert(
      fc.property(tensors, metadata, damage, (ts, meta, d) => {
        const valid = encodeSafetensors(ts, meta);
        const buf = applyDamage(valid, d, 8 + Number(valid.readBigUInt64LE(0)));
        let loaded;
        try {
          loaded = decodeSafetensors(buf, 'fuzz.safetensors');
        } catch (err) {
          expectCoded(err, 'TEMPERED_BAD_FILE');
          return;
        }
        expectConsistent(buf, loaded);
        if (d.kind === 'none') {
          expect([...loaded.tensors.keys()]).toEqual(ts.map((t) => t.name));
          for (const t of ts) expect(Buffer.from(loaded.tensors.get(t.name)!.data.buffer).equals(Buffer.from(t.data.buffer))).toBe(true);
          expect(loaded.metadata).toEqual(meta ?? {});
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
  }, 600_000);

  test(`${RUNS} hand-made headers over a data section: a coded error or a consistent load`, () => {
    fc.assert(
      fc.property(looseHeader, fc.integer({ min: 0, max: 96 }), fc.boolean(), (header, dataBytes, lieAboutLength) => {
        const json = Buffer.from(JSON.stringify(header) ?? 'null');
        const len = Buffer.alloc(8);
        len.writeBigUInt64LE(BigInt(lieAboutLength ? json.length + dataBytes + 1 : json.length));
        const data = Buffer.alloc(dataBytes);
        for (let i = 0; i < dataBytes; i++) data[i] = (i * 37) & 0xff;
        const buf = Buffer.concat([len, json, data]);
        let loaded;
        try {
          loaded = decodeSafetensors(buf);
        } catch (err) {
          expectCoded(err, 'TEMPERED_BAD_FILE');
          return;
        }
        expect(lieAboutLength).toBe(false);
        expectConsistent(buf, loaded);
      }),
      { seed: SEED + 1, numRuns: RUNS },
    );
  }, 600_000);

  test('through the file system: 200 damaged files read with readSafetensors', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tempered-fuzz-st-'));
    try {
      let i = 0;
      await fc.assert(
        fc.asyncProperty(tensors, damage, async (ts, d) => {
          const file = path.join(dir, `case-${i++}.safetensors`);
          const valid = encodeSafetensors(ts);
          fs.writeFileSync(file, applyDamage(valid, d, 8 + Number(valid.readBigUInt64LE(0))));
          try {
            await readSafetensors(file);
          } catch (err) {
            expectCoded(err, 'TEMPERED_BAD_FILE');
          } finally {
            fs.rmSync(file);
          }
        }),
        { seed: SEED + 2, numRuns: 200 },
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// IDX

interface IdxCase {
  kind: 'images' | 'labels';
  bytes: Buffer;
}

/** Images files of 3 dimensions (one channel) or 4 (1 or 3 channels, and sometimes another
 * count the reader must refuse), of small sides around the 1..64 limit. */
const idxFile: fc.Arbitrary<IdxCase> = fc.oneof(
  fc
    .record({
      count: fc.integer({ min: 0, max: 3 }),
      rows: fc.oneof(fc.constant(28), fc.integer({ min: 0, max: 66 })),
      cols: fc.oneof(fc.constant(28), fc.integer({ min: 0, max: 66 })),
      channels: fc.option(fc.constantFrom(1, 3, 1, 3, 0, 2), { nil: undefined }),
      seed: fc.nat(255),
    })
    .map(({ count, rows, cols, channels, seed }) => {
      const header = channels === undefined ? 16 : 20;
      const bytes = Buffer.alloc(header + count * rows * cols * (channels ?? 1));
      bytes.writeUInt32BE(channels === undefined ? 0x803 : 0x804, 0);
      bytes.writeUInt32BE(count, 4);
      bytes.writeUInt32BE(rows, 8);
      bytes.writeUInt32BE(cols, 12);
      if (channels !== undefined) bytes.writeUInt32BE(channels, 16);
      for (let i = header; i < bytes.length; i++) bytes[i] = (i * 31 + seed) & 0xff;
      return { kind: 'images' as const, bytes };
    }),
  fc.array(fc.oneof(fc.integer({ min: 0, max: 11 }), fc.integer({ min: 95, max: 255 })), { maxLength: 40 }).map((labels) => {
    const bytes = Buffer.alloc(8 + labels.length);
    bytes.writeUInt32BE(0x801, 0);
    bytes.writeUInt32BE(labels.length, 4);
    labels.forEach((l, i) => (bytes[8 + i] = l));
    return { kind: 'labels' as const, bytes };
  }),
);

/** Where the gzip layer sits: none, damage inside the compressed stream, or a valid stream of
 * damaged contents. */
const gzipMode = fc.constantFrom('raw', 'gzip-then-damage', 'damage-then-gzip');

function encodeIdxCase(c: IdxCase, d: Damage, mode: string): Buffer {
  const header = c.kind === 'images' ? 20 : 8;
  if (mode === 'raw') return applyDamage(c.bytes, d, header);
  if (mode === 'damage-then-gzip') return zlib.gzipSync(applyDamage(c.bytes, d, header));
  return applyDamage(zlib.gzipSync(c.bytes), d, 28);
}

/** Independent reading of a loaded IDX file: header fields (images: sides 1..64, 1 or 3
 * channels), exact length, labels in 0..99. */
function expectIdxConsistent(raw: Buffer, kind: 'images' | 'labels', loaded: { count: number; data: Uint8Array }): void {
  const magic = raw.readUInt32BE(0);
  let header = 8;
  let item = 1;
  if (kind === 'images') {
    expect([0x803, 0x804]).toContain(magic);
    header = magic === 0x804 ? 20 : 16;
    const [rows, cols] = [raw.readUInt32BE(8), raw.readUInt32BE(12)];
    const channels = magic === 0x804 ? raw.readUInt32BE(16) : 1;
    for (const side of [rows, cols]) expect(side >= 1 && side <= 64).toBe(true);
    expect([1, 3]).toContain(channels);
    item = rows * cols * channels;
  } else expect(magic).toBe(0x801);
  expect(loaded.count).toBe(raw.readUInt32BE(4));
  expect(loaded.count).toBeGreaterThan(0);
  expect(raw.length).toBe(header + loaded.count * item);
  expect(Buffer.from(loaded.data).equals(raw.subarray(header))).toBe(true);
  if (kind === 'labels') for (const l of loaded.data) expect(l).toBeLessThan(100);
}

describe('fuzz: the IDX reader', () => {
  test(`${RUNS} damaged IDX files, raw and gzip: a coded error or a consistent load`, async () => {
    await fc.assert(
      fc.asyncProperty(idxFile, damage, gzipMode, async (c, d, mode) => {
        const bytes = encodeIdxCase(c, d, mode);
        let loaded;
        try {
          loaded = await decodeIdx(bytes, 'fuzz-idx', c.kind);
        } catch (err) {
          expectCoded(err, 'TEMPERED_BAD_DATA');
          return;
        }
        expectIdxConsistent(loaded.raw, c.kind, loaded);
        if (d.kind === 'none') expect(loaded.raw.equals(c.bytes)).toBe(true);
      }),
      { seed: SEED + 3, numRuns: RUNS },
    );
  }, 600_000);

  test('through loadMnist: 200 folders with one damaged file, a coded error every time', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tempered-fuzz-idx-'));
    const names = ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'];
    try {
      let i = 0;
      await fc.assert(
        fc.asyncProperty(fc.nat(3), damage, gzipMode, async (which, d, mode) => {
          const dir = path.join(root, `case-${i++}`);
          fs.mkdirSync(dir);
          for (const [k, name] of names.entries()) {
            const kind = name.includes('images') ? 'images' : 'labels';
            const count = name.startsWith('train') ? 3 : 2;
            const bytes = kind === 'images' ? Buffer.alloc(16 + count * PIXELS) : Buffer.alloc(8 + count);
            bytes.writeUInt32BE(kind === 'images' ? 0x803 : 0x801, 0);
            bytes.writeUInt32BE(count, 4);
            if (kind === 'images') {
              bytes.writeUInt32BE(28, 8);
              bytes.writeUInt32BE(28, 12);
            }
            fs.writeFileSync(path.join(dir, name), k === which ? encodeIdxCase({ kind, bytes }, d, mode) : bytes);
          }
          // Three training images can never fill a split, so every folder is refused: with a code.
          const err = await loadMnist({ dir }).then(
            () => new Error('loadMnist accepted a 3-image folder'),
            (e: unknown) => e,
          );
          expect((err as { code?: string }).code).toMatch(/^TEMPERED_(BAD_DATA|IO)$/);
          fs.rmSync(dir, { recursive: true });
        }),
        { seed: SEED + 4, numRuns: 200 },
      );
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// CIFAR-10 binary batches

const CIFAR_RECORD = 3073;
const CIFAR_FILES = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin', 'test_batch.bin'];

/** A batch of 1-3 records, labels mostly 0..9 (now and then any byte), pixels from a seed. */
const cifarLabel = fc.oneof(
  { weight: 30, arbitrary: fc.integer({ min: 0, max: 9 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
);
const cifarBatch: fc.Arbitrary<Buffer> = fc
  .record({ labels: fc.array(cifarLabel, { minLength: 1, maxLength: 3 }), seed: fc.nat(255) })
  .map(({ labels, seed }) => {
    const bytes = Buffer.alloc(labels.length * CIFAR_RECORD);
    labels.forEach((label, r) => {
      bytes[r * CIFAR_RECORD] = label;
      for (let i = 1; i < CIFAR_RECORD; i++) bytes[r * CIFAR_RECORD + i] = (i * 29 + r * 11 + seed) & 0xff;
    });
    return bytes;
  });

/** Independent reading of what a load must give for a batch: whole records, labels 0..9, and
 * each record's planes (red, green, blue) interleaved as NHWC. */
function expectCifarConsistent(batches: Buffer[], data: Awaited<ReturnType<typeof loadImageData>>, validation: number): void {
  for (const b of batches) {
    expect(b.length % CIFAR_RECORD).toBe(0);
    expect(b.length).toBeGreaterThan(0);
    for (let r = 0; r < b.length / CIFAR_RECORD; r++) expect(b[r * CIFAR_RECORD]).toBeLessThan(10);
  }
  const records = (list: Buffer[]) =>
    list.flatMap((b) => Array.from({ length: b.length / CIFAR_RECORD }, (_, r) => b.subarray(r * CIFAR_RECORD, (r + 1) * CIFAR_RECORD)));
  const training = records(batches.slice(0, 5));
  const expected = [
    [data.train, training.slice(0, training.length - validation)],
    [data.validation, training.slice(training.length - validation)],
    [data.test, records(batches.slice(5))],
  ] as const;
  for (const [split, recs] of expected) {
    expect(split.count).toBe(recs.length);
    // Counted, not asserted one by one: a few million pixels over the run.
    let mismatches = 0;
    recs.forEach((rec, k) => {
      if (split.labels[k] !== rec[0]) mismatches++;
      for (let c = 0; c < 3; c++)
        for (let p = 0; p < 1024; p++) if (split.images[k * 3072 + p * 3 + c] !== Math.fround(rec[1 + c * 1024 + p] / 255)) mismatches++;
    });
    expect(mismatches).toBe(0);
  }
}

describe('fuzz: the CIFAR-10 reader', () => {
  test(`${RUNS} damaged batches: a coded error or whole records with labels 0..9`, () => {
    fc.assert(
      fc.property(cifarBatch, damage, (valid, d) => {
        const bytes = applyDamage(valid, d, CIFAR_RECORD);
        let batch;
        try {
          batch = parseCifar10Batch(bytes, 'fuzz.bin');
        } catch (err) {
          expectCoded(err, 'TEMPERED_BAD_DATA');
          return;
        }
        expect(batch.count * CIFAR_RECORD).toBe(bytes.length);
        for (let r = 0; r < batch.count; r++) expect(bytes[r * CIFAR_RECORD]).toBeLessThan(10);
      }),
      { seed: SEED + 5, numRuns: RUNS },
    );
  });

  test('through loadImageData: 2,000 folders with damaged or missing batches, a coded error or a load that matches the bytes', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tempered-fuzz-cifar-'));
    let loads = 0;
    try {
      let i = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.array(cifarBatch, { minLength: 6, maxLength: 6 }),
          fc.array(fc.tuple(fc.nat(5), damage), { maxLength: 2 }),
          // a batch left out, in one case of ten
          fc.oneof({ weight: 9, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.nat(5) }),
          fc.integer({ min: 1, max: 6 }),
          async (valid, damages, missing, validation) => {
            const dir = path.join(root, `case-${i++}`);
            fs.mkdirSync(dir);
            const batches: Buffer[] = valid.map((b) => Buffer.from(b));
            for (const [which, d] of damages) batches[which] = applyDamage(batches[which], d, CIFAR_RECORD);
            batches.forEach((b, k) => k !== missing && fs.writeFileSync(path.join(dir, CIFAR_FILES[k]), b));
            let data;
            try {
              data = await loadImageData({ dir, validation });
            } catch (err) {
              if (!(err instanceof TemperedError) || (err.code !== 'TEMPERED_BAD_DATA' && err.code !== 'TEMPERED_IO'))
                throw new Error(`expected a coded error, got ${String((err as Error)?.stack ?? err)}`);
              return;
            } finally {
              fs.rmSync(dir, { recursive: true });
            }
            expect(missing).toBeUndefined();
            expectCifarConsistent(batches, data, validation);
            loads++;
          },
        ),
        { seed: SEED + 6, numRuns: 2_000 },
      );
      // The comparison with the bytes must have run often, not only the refusals.
      expect(loads).toBeGreaterThan(200);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  }, 600_000);
});
