import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { TemperedError } from '../lib/errors';
import { ensureWritableDir } from '../lib/fsutil';
import { Random } from '../lib/rng';
import { MAX_HEADER_BYTES, Tensor, decodeSafetensors, encodeSafetensors, readSafetensors, writeSafetensors } from '../lib/safetensors';

/** A file with the given header (object or raw JSON text/bytes) and data section. */
function file(header: unknown, data: Buffer | number = 0): Buffer {
  const json = Buffer.isBuffer(header) ? header : Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const body = typeof data === 'number' ? Buffer.alloc(data) : data;
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, body]);
}

const f32 = (shape: number[], begin: number) => {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: 'F32', shape, data_offsets: [begin, begin + 4 * n] };
};

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

function expectBadFile(buf: Buffer, problem: RegExp): void {
  let caught: unknown;
  try {
    decodeSafetensors(buf, 'weights.safetensors');
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(TemperedError);
  const e = caught as TemperedError;
  expect(e.code).toBe('TEMPERED_BAD_FILE');
  expect(e.message).toMatch(/^weights\.safetensors: /);
  expect(e.message).toMatch(problem);
}

describe('encode/decode round trip', () => {
  const special = new Float32Array([0, -0, 1, -1.5, Math.PI, 3.4e38, -1e-45, Infinity, -Infinity, NaN]);
  bits(special)[9] = 0x7fc01234; // a NaN with a payload must survive bit for bit
  const tensors: Tensor[] = [
    { name: 'conv1.weight', shape: [2, 1, 3, 3], data: Float32Array.from({ length: 18 }, (_, i) => i / 7 - 1) },
    { name: 'special', shape: [10], data: special },
    { name: 'scalar', shape: [], data: new Float32Array([42.25]) },
    { name: 'empty', shape: [0, 3], data: new Float32Array(0) },
    { name: '10', shape: [1], data: new Float32Array([10]) }, // integer-like: objects would reorder it
    { name: 'ünï¢ødé ✓', shape: [2], data: new Float32Array([1, 2]) },
    { name: '__proto__', shape: [1], data: new Float32Array([7]) },
  ];
  const metadata = { format: 'pt', note: 'température ✓', __proto__x: 'y', '': 'empty key' };

  test('names, order, shapes, values (bit-exact) and metadata survive', () => {
    const out = decodeSafetensors(encodeSafetensors(tensors, metadata));
    expect([...out.tensors.keys()]).toEqual(tensors.map((t) => t.name));
    for (const t of tensors) {
      const d = out.tensors.get(t.name)!;
      expect(d.dtype).toBe('F32');
      expect(d.shape).toEqual(t.shape);
      expect(Array.from(bits(d.data))).toEqual(Array.from(bits(t.data)));
    }
    expect(out.metadata).toEqual(metadata);
  });

  test('a subarray view encodes only its own elements', () => {
    const big = Float32Array.from({ length: 10 }, (_, i) => i);
    const out = decodeSafetensors(encodeSafetensors([{ name: 'v', shape: [3], data: big.subarray(4, 7) }]));
    expect(Array.from(out.tensors.get('v')!.data)).toEqual([4, 5, 6]);
  });

  test('"__proto__" metadata key stays an ordinary key', () => {
    const meta = JSON.parse('{"__proto__":"x","a":"b"}') as Record<string, string>;
    const out = decodeSafetensors(encodeSafetensors([], meta));
    expect(Object.getPrototypeOf(out.metadata)).toBe(Object.prototype);
    expect(Object.keys(out.metadata)).toEqual(['__proto__', 'a']);
    expect(out.metadata['__proto__']).toBe('x');
  });

  test('no tensors, no metadata', () => {
    const buf = encodeSafetensors([]);
    expect(buf.length).toBe(16);
    const out = decodeSafetensors(buf);
    expect(out.tensors.size).toBe(0);
    expect(out.metadata).toEqual({});
  });

  test('matches the reference serialisation byte for byte', () => {
    const buf = encodeSafetensors([{ name: 'a', shape: [2], data: new Float32Array([1, -2]) }]);
    const json = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
    const padded = json + ' '.repeat((8 - (json.length % 8)) % 8);
    const expected = Buffer.concat([
      Buffer.from([padded.length, 0, 0, 0, 0, 0, 0, 0]),
      Buffer.from(padded),
      Buffer.from([0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0]),
    ]);
    expect(buf.equals(expected)).toBe(true);
  });

  test('header is space-padded to a multiple of 8 bytes, so data starts aligned', () => {
    for (let len = 1; len <= 24; len++) {
      for (const meta of [undefined, { k: 'v'.repeat(len) }]) {
        const buf = encodeSafetensors([{ name: 'x'.repeat(len), shape: [1], data: new Float32Array([1]) }], meta);
        const n = Number(buf.readBigUInt64LE(0));
        expect(n % 8).toBe(0);
        const header = buf.subarray(8, 8 + n).toString('utf8');
        expect(header.trimEnd().endsWith('}')).toBe(true);
        expect(header.length - header.trimEnd().length).toBeLessThan(8);
        expect(/^ *$/.test(header.slice(header.trimEnd().length))).toBe(true);
        expect(buf.length).toBe(8 + n + 4);
      }
    }
  });

  test('refuses bad arguments', () => {
    const one = new Float32Array(1);
    const cases: [unknown[], string, RegExp][] = [
      [[{ name: 'a', shape: [2], data: one }], 'TEMPERED_INVALID_LENGTH', /needs 2 values, data has 1/],
      [[{ name: 'a', shape: [1], data: [1] }], 'TEMPERED_INVALID_TYPE', /Float32Array/],
      [[{ name: 'a', shape: [1], data: new Float64Array(1) }], 'TEMPERED_INVALID_TYPE', /Float32Array/],
      [[{ name: '', shape: [1], data: one }], 'TEMPERED_INVALID_TYPE', /name/],
      [[{ name: '__metadata__', shape: [1], data: one }], 'TEMPERED_OUT_OF_RANGE', /__metadata__/],
      [
        [
          { name: 'a', shape: [1], data: one },
          { name: 'a', shape: [1], data: one },
        ],
        'TEMPERED_OUT_OF_RANGE',
        /duplicate/,
      ],
      [[{ name: 'a', shape: [-1], data: one }], 'TEMPERED_OUT_OF_RANGE', /non-negative/],
      [[{ name: 'a', shape: [0.5], data: one }], 'TEMPERED_OUT_OF_RANGE', /non-negative/],
      [[{ name: 'a', shape: 1, data: one }], 'TEMPERED_INVALID_TYPE', /shape/],
    ];
    for (const [ts, code, msg] of cases) {
      expect(() => encodeSafetensors(ts as Tensor[])).toThrow(msg);
      try {
        encodeSafetensors(ts as Tensor[]);
      } catch (err) {
        expect((err as { code?: string }).code).toBe(code);
      }
    }
    expect(() => encodeSafetensors([], { a: 1 } as unknown as Record<string, string>)).toThrow(/metadata "a" must be a string/);
  });
});

describe('tensor order', () => {
  // Found by test/fuzz-formats: JSON.parse lists integer-like keys first, and empty tensors
  // share their offsets, so the header's written order must break the tie.
  test('empty tensors keep the order they were written in, integer-like names included', () => {
    const empty = (name: string) => ({ name, shape: [0], data: new Float32Array(0) });
    const out = decodeSafetensors(
      encodeSafetensors([empty('w'), empty('0'), { name: '1', shape: [1], data: Float32Array.of(5) }, empty('b')]),
    );
    expect([...out.tensors.keys()]).toEqual(['w', '0', '1', 'b']);
  });
});

describe('other dtypes decode to float32', () => {
  test('F64 (rounded to nearest float32)', () => {
    const vals = [0.1, -2.5, 1e300, -1e-300, 1 / 3];
    const data = Buffer.alloc(8 * vals.length);
    vals.forEach((v, i) => data.writeDoubleLE(v, 8 * i));
    const t = decodeSafetensors(file({ x: { dtype: 'F64', shape: [5], data_offsets: [0, 40] } }, data)).tensors.get('x')!;
    expect(t.dtype).toBe('F64');
    expect(Array.from(t.data)).toEqual([Math.fround(0.1), -2.5, Infinity, -0, Math.fround(1 / 3)]);
  });

  test('F16 known values', () => {
    const cases: [number, number][] = [
      [0x3c00, 1],
      [0xc000, -2],
      [0x3555, 0.333251953125],
      [0x7bff, 65504],
      [0x0400, 2 ** -14], // smallest normal
      [0x0001, 2 ** -24], // smallest subnormal
      [0x03ff, 1023 * 2 ** -24], // largest subnormal
      [0x8000, -0],
      [0x7c00, Infinity],
      [0xfc00, -Infinity],
      [0x7e00, NaN],
    ];
    const data = Buffer.alloc(2 * cases.length);
    cases.forEach(([h], i) => data.writeUInt16LE(h, 2 * i));
    const t = decodeSafetensors(file({ h: { dtype: 'F16', shape: [cases.length], data_offsets: [0, data.length] } }, data)).tensors.get(
      'h',
    )!;
    expect(Array.from(t.data)).toEqual(cases.map(([, v]) => v)); // toEqual: NaN == NaN, -0 != 0
  });

  test('F16: all 65,536 bit patterns match a bit-level conversion', () => {
    const data = Buffer.alloc(2 * 65536);
    for (let h = 0; h < 65536; h++) data.writeUInt16LE(h, 2 * h);
    const got = bits(
      decodeSafetensors(file({ h: { dtype: 'F16', shape: [256, 256], data_offsets: [0, data.length] } }, data)).tensors.get('h')!.data,
    );
    for (let h = 0; h < 65536; h++) {
      const sign = (h & 0x8000) << 16;
      let exp = (h >> 10) & 0x1f;
      let mant = h & 0x3ff;
      let want: number;
      if (exp === 31) want = sign | 0x7f800000 | (mant << 13);
      else if (exp === 0 && mant === 0) want = sign;
      else {
        if (exp === 0) {
          // Normalise a subnormal: shift until the implicit bit appears.
          exp = 1;
          while (!(mant & 0x400)) {
            mant <<= 1;
            exp--;
          }
          mant &= 0x3ff;
        }
        want = sign | ((exp + 112) << 23) | (mant << 13);
      }
      want >>>= 0;
      if (exp === 31 && mant !== 0) expect(Number.isNaN(new Float32Array(got.buffer)[h])).toBe(true);
      else if (got[h] !== want) throw new Error(`F16 0x${h.toString(16)}: got 0x${got[h].toString(16)}, want 0x${want.toString(16)}`);
    }
  });

  test('BF16 known values', () => {
    const cases: [number, number][] = [
      [0x3f80, 1],
      [0xc040, -3],
      [0x4049, 3.140625],
      [0x0001, 2 ** -133], // float32 subnormal
      [0x8000, -0],
      [0x7f80, Infinity],
      [0xff80, -Infinity],
      [0x7fc0, NaN],
    ];
    const data = Buffer.alloc(2 * cases.length);
    cases.forEach(([h], i) => data.writeUInt16LE(h, 2 * i));
    const t = decodeSafetensors(file({ b: { dtype: 'BF16', shape: [2, 4], data_offsets: [0, data.length] } }, data)).tensors.get('b')!;
    expect(t.dtype).toBe('BF16');
    expect(t.shape).toEqual([2, 4]);
    expect(Array.from(t.data)).toEqual(cases.map(([, v]) => v));
  });

  test('unaligned data is read correctly', () => {
    // Header of odd length: the data section starts at an odd byte offset.
    const data = Buffer.alloc(9);
    data.writeFloatLE(1.25, 1);
    data.writeFloatLE(-7, 5);
    const buf = file(' {"a":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}}', data);
    expect(Array.from(decodeSafetensors(buf).tensors.get('a')!.data)).toEqual([1.25, -7]);
  });
});

describe('what decoding accepts', () => {
  test('gaps between tensors and unused trailing bytes (nothing reads them)', () => {
    const data = Buffer.alloc(32);
    data.writeFloatLE(3, 4);
    data.writeFloatLE(5, 16);
    const out = decodeSafetensors(file({ b: f32([1], 16), a: f32([1], 4) }, data));
    expect([...out.tensors.keys()]).toEqual(['a', 'b']); // data-section order
    expect(out.tensors.get('a')!.data[0]).toBe(3);
    expect(out.tensors.get('b')!.data[0]).toBe(5);
  });

  test("empty tensors anywhere, including inside another tensor's bytes", () => {
    const out = decodeSafetensors(file({ a: f32([2], 0), e: f32([0, 5], 4), s: f32([0], 8) }, 8));
    expect(out.tensors.get('e')!.shape).toEqual([0, 5]);
    expect(out.tensors.get('e')!.data.length).toBe(0);
  });

  test('a huge dimension times zero is an empty tensor', () => {
    const out = decodeSafetensors(file({ z: { dtype: 'F32', shape: [2 ** 52, 2 ** 52, 0], data_offsets: [0, 0] } }));
    expect(out.tensors.get('z')!.data.length).toBe(0);
  });
});

describe('malformed files are refused with TEMPERED_BAD_FILE', () => {
  const ok = { a: f32([2], 0) };

  test('file shorter than 8 bytes', () => {
    expectBadFile(Buffer.alloc(0), /0 bytes/);
    expectBadFile(Buffer.from([8, 0, 0, 0, 0, 0, 0]), /7 bytes/);
  });

  test('header length 0, too large, or past the end of the file', () => {
    expectBadFile(Buffer.alloc(8), /header length is 0/);
    expectBadFile(Buffer.alloc(64), /header length is 0/);
    const huge = Buffer.alloc(16);
    huge.writeBigUInt64LE(BigInt(MAX_HEADER_BYTES) + 1n);
    expectBadFile(huge, /exceeds/);
    huge.writeBigUInt64LE(2n ** 64n - 1n);
    expectBadFile(huge, /18446744073709551615.*exceeds/);
    const short = file(ok, 8).subarray(0, 30);
    expectBadFile(short, /header length \d+ runs past the end of the 30-byte file/);
  });

  test('header not valid UTF-8', () => {
    expectBadFile(file(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])), /not valid UTF-8/);
    expectBadFile(file(Buffer.from([0x7b, 0xed, 0xa0, 0x80, 0x7d])), /not valid UTF-8/); // encoded surrogate
  });

  test('header not JSON, or not an object', () => {
    expectBadFile(file('{"a": '), /not valid JSON/);
    expectBadFile(file('\uFEFF{}'), /not valid JSON/); // a byte-order mark is not JSON
    expectBadFile(file('{} x'), /not valid JSON/);
    expectBadFile(file('[]'), /must be a JSON object \(got an array\)/);
    expectBadFile(file('null'), /must be a JSON object/);
    expectBadFile(file('42      '), /must be a JSON object \(got number\)/);
    expectBadFile(file('"{}"'), /must be a JSON object \(got string\)/);
  });

  test('repeated keys', () => {
    expectBadFile(
      file('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', 8),
      /repeats the key "a"/,
    );
    expectBadFile(
      file('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"\\u0061":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', 8),
      /repeats the key "a"/,
    );
    expectBadFile(file('{"a":{"dtype":"F16","dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 4), /repeats the key "dtype"/);
    expectBadFile(file('{"__metadata__":{"k":"1","k":"2"}}'), /repeats the key "k"/);
    // Same key in different objects, and key-like strings in values, are fine.
    expect(() =>
      decodeSafetensors(
        file('{"__metadata__":{"a":"a","x":"{\\"a\\":1,\\"a\\":2}"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 4),
      ),
    ).not.toThrow();
  });

  test('entry not {dtype, shape, data_offsets}', () => {
    expectBadFile(file({ a: 5 }), /tensor "a" must be an object/);
    expectBadFile(file({ a: null }), /tensor "a" must be an object/);
    expectBadFile(file({ a: [0, 4] }), /tensor "a" must be an object/);
    expectBadFile(file({ a: { shape: [1], data_offsets: [0, 4] } }, 4), /has no "dtype"/);
    expectBadFile(file({ a: { dtype: 'F32', data_offsets: [0, 4] } }, 4), /has no "shape"/);
    expectBadFile(file({ a: { dtype: 'F32', shape: [1] } }, 4), /has no "data_offsets"/);
    expectBadFile(file({ a: { ...f32([1], 0), extra: 1 } }, 4), /unknown field "extra"/);
    expectBadFile(file({ '': f32([1], 0) }, 4), /empty name/);
  });

  test('dtype not a string, or unsupported (named)', () => {
    expectBadFile(file({ a: { dtype: 4, shape: [1], data_offsets: [0, 4] } }, 4), /dtype must be a string/);
    for (const dtype of ['I64', 'U8', 'BOOL', 'F8_E4M3', 'f32', 'toString', '__proto__'])
      expectBadFile(
        file({ a: { dtype, shape: [1], data_offsets: [0, 4] } }, 4),
        new RegExp(`unsupported dtype "${dtype}" .*supported: F32, F64, F16, BF16`),
      );
  });

  test('shape not an array of non-negative safe integers', () => {
    for (const shape of [3, '3', null, [-1], [1.5], ['2'], [[2]], [null], [2 ** 53], [Infinity]])
      expectBadFile(file({ a: { dtype: 'F32', shape, data_offsets: [0, 4] } }, 4), /shape must be an array of non-negative integers/);
    expectBadFile(file({ a: { dtype: 'F32', shape: [2 ** 30, 2 ** 30, 2 ** 30], data_offsets: [0, 4] } }, 4), /too large/);
  });

  test('data_offsets not two ordered integers inside the data section', () => {
    for (const offs of [4, [4], [0, 4, 8], [-4, 0], [0.5, 4.5], ['0', '4'], null, [0, 2 ** 53]])
      expectBadFile(file({ a: { dtype: 'F32', shape: [1], data_offsets: offs } }, 8), /data_offsets must be two non-negative integers/);
    expectBadFile(file({ a: { dtype: 'F32', shape: [0], data_offsets: [4, 0] } }, 8), /end before they begin/);
    expectBadFile(file({ a: f32([2], 4) }, 8), /run past the end of the 8-byte data section/);
    expectBadFile(file({ a: f32([1], 2 ** 52) }, 8), /run past the end/);
  });

  test('byte length differs from shape x dtype size', () => {
    expectBadFile(file({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, 8), /4 bytes of data, but shape \[2\] of F32 needs 8/);
    expectBadFile(file({ a: { dtype: 'F16', shape: [3], data_offsets: [0, 8] } }, 8), /needs 6/);
    expectBadFile(file({ a: { dtype: 'F64', shape: [], data_offsets: [0, 4] } }, 8), /needs 8/);
  });

  test('overlapping tensors', () => {
    expectBadFile(file({ a: f32([2], 0), b: f32([2], 4) }, 12), /tensors "a" and "b" overlap/);
    expectBadFile(file({ a: f32([4], 0), b: f32([1], 4) }, 16), /overlap/); // b inside a
    expectBadFile(file({ a: f32([1], 0), b: f32([1], 0) }, 4), /overlap/); // identical ranges
  });

  test('__metadata__ not an object of strings', () => {
    expectBadFile(file({ __metadata__: 'x' }), /__metadata__ must be an object/);
    expectBadFile(file({ __metadata__: ['x'] }), /__metadata__ must be an object/);
    expectBadFile(file({ __metadata__: null }), /__metadata__ must be an object/);
    expectBadFile(file({ __metadata__: { a: 1 } }), /value for "a" must be a string \(got 1\)/);
    expectBadFile(file({ __metadata__: { a: { b: 'c' } } }), /value for "a" must be a string/);
    expectBadFile(file({ __metadata__: { a: null } }), /value for "a" must be a string/);
  });

  test('hostile values: deep nesting and huge strings give short messages, not crashes', () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    expectBadFile(file(`{"a":{"dtype":"F32","shape":${deep},"data_offsets":[0,4]}}`, 4), /shape must be .*\(got \[\.\.\.\]\)/);
    expectBadFile(file(`{"__metadata__":{"k":${deep}}}`), /value for "k" must be a string/);
    const longName = 'n'.repeat(1_000_000);
    try {
      decodeSafetensors(file({ [longName]: 5 }), 'weights.safetensors');
      throw new Error('accepted');
    } catch (err) {
      expect((err as TemperedError).code).toBe('TEMPERED_BAD_FILE');
      expect((err as Error).message.length).toBeLessThan(200);
    }
  });

  test('without a file name the message still says what failed', () => {
    expect(() => decodeSafetensors(Buffer.alloc(3))).toThrow(/^safetensors data: not a safetensors file/);
  });

  test('fuzz: 2,000 truncations and byte flips either decode or throw TemperedError', () => {
    const base = encodeSafetensors(
      [
        { name: 'w', shape: [3, 2], data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
        { name: 'b', shape: [2], data: Float32Array.from([-1, 1]) },
        { name: 's', shape: [], data: Float32Array.from([9]) },
      ],
      { format: 'pt', seed: '7' },
    );
    const headerEnd = 8 + Number(base.readBigUInt64LE(0));
    const rng = new Random(2024, 1);
    const outcomes = { decoded: 0, refused: 0 };
    for (let i = 0; i < 2000; i++) {
      let buf = Buffer.from(base);
      const kind = rng.int(4);
      if (kind === 0) buf = buf.subarray(0, rng.int(buf.length));
      else {
        // Mostly corrupt the header (the interesting part), sometimes anywhere.
        const flips = 1 + rng.int(4);
        for (let f = 0; f < flips; f++) {
          const at = kind === 3 ? rng.int(buf.length) : rng.int(headerEnd);
          buf[at] = kind === 1 ? buf[at] ^ (1 << rng.int(8)) : rng.int(256);
        }
      }
      try {
        const out = decodeSafetensors(buf, 'fuzz');
        for (const t of out.tensors.values()) expect(t.data.length).toBe(t.shape.reduce((a, b) => a * b, 1));
        outcomes.decoded++;
      } catch (err) {
        if (!(err instanceof TemperedError) || err.code !== 'TEMPERED_BAD_FILE') throw err;
        outcomes.refused++;
      }
    }
    expect(outcomes.decoded).toBeGreaterThan(20); // both paths exercised (most header damage is fatal)
    expect(outcomes.refused).toBeGreaterThan(100);
  });
});

describe('files', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tempered-safetensors-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const t1: Tensor[] = [{ name: 'a', shape: [2], data: new Float32Array([1, 2]) }];
  const t2: Tensor[] = [{ name: 'b', shape: [1, 3], data: new Float32Array([3, 4, 5]) }];

  test('atomic write creates the parent folder, replaces an existing file, leaves no temp file', async () => {
    const target = path.join(dir, 'deep', 'er', 'model.safetensors');
    await writeSafetensors(target, t1, { v: '1' });
    let back = await readSafetensors(target);
    expect(Array.from(back.tensors.get('a')!.data)).toEqual([1, 2]);
    expect(back.metadata).toEqual({ v: '1' });

    await writeSafetensors(target, t2, { v: '2' });
    back = await readSafetensors(target);
    expect([...back.tensors.keys()]).toEqual(['b']);
    expect(back.tensors.get('b')!.shape).toEqual([1, 3]);
    expect(back.metadata).toEqual({ v: '2' });
    expect(fs.readdirSync(path.dirname(target))).toEqual(['model.safetensors']);
  });

  test('a failed write reports TEMPERED_IO and cleans up its temp file', async () => {
    const sub = path.join(dir, 'fail');
    const target = path.join(sub, 'is-a-folder');
    fs.mkdirSync(path.join(target, 'child'), { recursive: true });
    await expect(writeSafetensors(target, t1)).rejects.toMatchObject({ code: 'TEMPERED_IO', message: expect.stringContaining(target) });
    expect(fs.readdirSync(sub)).toEqual(['is-a-folder']);
  });

  test('a temporary file left by a run killed before its rename is removed by the next write', async () => {
    const sub = path.join(dir, 'stale');
    fs.mkdirSync(sub);
    const target = path.join(sub, 'model.safetensors');
    // A process that has exited: its pid names the leftover, as a killed writer's would.
    const deadPid = spawnSync(process.execPath, ['-e', '0']).pid!;
    const stale = path.join(sub, `.model.safetensors.${deadPid}.0123456789ab.tmp`);
    const otherTarget = path.join(sub, `.other.safetensors.${deadPid}.0123456789ab.tmp`);
    const live = path.join(sub, `.model.safetensors.${process.pid}.ba9876543210.tmp`); // a write in flight
    const userFile = path.join(sub, '.model.safetensors.notes.tmp'); // not ours: a different shape
    for (const f of [stale, otherTarget, live, userFile]) fs.writeFileSync(f, 'partial');
    await writeSafetensors(target, t1);
    expect(fs.readdirSync(sub).sort()).toEqual(
      [path.basename(otherTarget), path.basename(live), path.basename(userFile), 'model.safetensors'].sort(),
    );
  });

  test('reading anything but a regular file is refused with TEMPERED_IO, never waited on', async () => {
    await expect(readSafetensors(dir)).rejects.toMatchObject({
      code: 'TEMPERED_IO',
      message: expect.stringMatching(/a folder, not a regular file/),
    });
    if (fs.existsSync('/dev/zero'))
      await expect(readSafetensors('/dev/zero')).rejects.toMatchObject({
        code: 'TEMPERED_IO',
        message: expect.stringMatching(/a character device, not a regular file/),
      });
    if (process.platform !== 'win32') {
      const fifo = path.join(dir, 'fifo.safetensors');
      execFileSync('mkfifo', [fifo]);
      // More than libuv's four pool threads: a blocking open or read would starve the rest.
      const results = await Promise.allSettled(Array.from({ length: 5 }, () => readSafetensors(fifo)));
      for (const r of results)
        expect(r).toMatchObject({ status: 'rejected', reason: { code: 'TEMPERED_IO', message: expect.stringMatching(/a FIFO/) } });
      fs.rmSync(fifo);
    }
  });

  test('a header length beyond the file is refused after reading 8 bytes', async () => {
    const huge = path.join(dir, 'huge-header.safetensors');
    const head = Buffer.alloc(16);
    head.writeBigUInt64LE(2n ** 40n, 0);
    fs.writeFileSync(huge, head);
    await expect(readSafetensors(huge)).rejects.toMatchObject({
      code: 'TEMPERED_BAD_FILE',
      message: expect.stringContaining('header length 1099511627776 runs past the end of the 16-byte file'),
    });
  });

  test('ensureWritableDir: a folder that cannot be written is a TEMPERED_IO error naming the option', async () => {
    const ok = path.join(dir, 'out', 'deeper');
    await ensureWritableDir(ok, '--out');
    expect(fs.readdirSync(ok)).toEqual([]); // the probe file is gone
    const blocker = path.join(dir, 'a-file');
    fs.writeFileSync(blocker, 'x');
    await expect(ensureWritableDir(path.join(blocker, 'sub'), '--out')).rejects.toMatchObject({
      code: 'TEMPERED_IO',
      message: expect.stringMatching(/^--out: cannot write in /),
    });
    if (process.getuid?.() !== 0) {
      // root writes anywhere, so a read-only folder only refuses other users
      const ro = path.join(dir, 'read-only');
      fs.mkdirSync(ro, { mode: 0o555 });
      await expect(ensureWritableDir(ro, '--out')).rejects.toMatchObject({ code: 'TEMPERED_IO' });
    }
  });

  test('argument errors are raised before anything touches the disk', async () => {
    const target = path.join(dir, 'never', 'x.safetensors');
    await expect(writeSafetensors(target, [{ name: 'a', shape: [3], data: new Float32Array(2) }])).rejects.toMatchObject({
      code: 'TEMPERED_INVALID_LENGTH',
    });
    expect(fs.existsSync(path.dirname(target))).toBe(false);
  });

  test('reading a missing file is TEMPERED_IO; a corrupt one TEMPERED_BAD_FILE naming it', async () => {
    await expect(readSafetensors(path.join(dir, 'missing.safetensors'))).rejects.toMatchObject({ code: 'TEMPERED_IO' });
    const bad = path.join(dir, 'bad.safetensors');
    fs.writeFileSync(bad, file({ a: f32([4], 0) }, 8));
    await expect(readSafetensors(bad)).rejects.toMatchObject({
      code: 'TEMPERED_BAD_FILE',
      message: expect.stringMatching(new RegExp(`^${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .*run past the end`)),
    });
  });
});
