// The safetensors file format (https://github.com/huggingface/safetensors): an 8-byte
// little-endian u64 header length N, N bytes of UTF-8 JSON header, then the data section.
// The header maps each tensor name to {dtype, shape, data_offsets: [begin, end]} (byte
// offsets relative to the data section) and may hold "__metadata__": {string: string}.
//
// We write F32 only and read F32/F64/F16/BF16 (converted to Float32Array), so weights can
// travel to and from PyTorch without the `safetensors` package. Decoding treats the buffer
// as untrusted: every problem is a TemperedError('TEMPERED_BAD_FILE') naming the file,
// never an out-of-bounds read. Unlike the reference implementation we accept gaps between
// tensors and unused bytes at the end of the data section (nothing reads them); overlaps
// are refused.
import * as os from 'os';
import { TextDecoder, types } from 'util';
import { TemperedError, rangeError, typeError } from './errors';
import { readRegularFile, writeFileAtomic } from './fsutil';

/** A float32 tensor to write: `data.length` must equal the product of `shape`. */
export interface Tensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** The element types decodeSafetensors() accepts. */
export type SafetensorsDtype = 'F32' | 'F64' | 'F16' | 'BF16';

/** A decoded tensor: `dtype` is the type stored in the file, `data` its values as float32. */
export interface DecodedTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array;
}

export interface SafetensorsContents {
  /** In data-section order (for files we write, the order given to encodeSafetensors). */
  tensors: Map<string, DecodedTensor>;
  metadata: Record<string, string>;
}

/** Headers above this are refused before anything is decoded (the reference caps at 100 MB). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** Files above this are refused unread: the paper's network is 13 MB in float32, so 2 GiB leaves
 * room for any float64 export while keeping the read inside one Node Buffer. */
export const MAX_FILE_BYTES = 2 * 1024 * 1024 * 1024;

const METADATA_KEY = '__metadata__';
const DTYPE_BYTES: Record<SafetensorsDtype, number> = { F32: 4, F64: 8, F16: 2, BF16: 2 };
const ENTRY_KEYS = ['dtype', 'shape', 'data_offsets'];
const LITTLE_ENDIAN_HOST = os.endianness() === 'LE';

// ---------------------------------------------------------------------------------------
// Encoding

function checkShape(shape: unknown, what: string): number {
  if (!Array.isArray(shape)) throw typeError(`${what}: shape must be an array of integers`);
  let count = 1;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0)
      throw rangeError(`${what}: shape must hold non-negative integers (got ${show(shape)})`);
    count *= d;
  }
  if (!Number.isSafeInteger(count)) throw rangeError(`${what}: shape ${show(shape)} is too large`);
  return count;
}

/** Serialises float32 tensors, in the given order, as a safetensors file. */
export function encodeSafetensors(tensors: Tensor[], metadata?: Record<string, string>): Buffer {
  if (!Array.isArray(tensors)) throw typeError('tensors must be an array');
  // The header is assembled by hand rather than with JSON.stringify(object) so that keys keep
  // their order (objects put integer-like keys first) and "__proto__" is an ordinary key.
  const entries: string[] = [];
  if (metadata !== undefined) {
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata))
      throw typeError('metadata must be an object of strings');
    const fields = Object.entries(metadata).map(([k, v]) => {
      if (typeof v !== 'string') throw typeError(`metadata "${k}" must be a string (got ${typeof v})`);
      return `${JSON.stringify(k)}:${JSON.stringify(v)}`;
    });
    entries.push(`${JSON.stringify(METADATA_KEY)}:{${fields.join(',')}}`);
  }
  const seen = new Set<string>();
  let offset = 0;
  for (const t of tensors) {
    if (typeof t?.name !== 'string' || t.name === '') throw typeError('each tensor needs a non-empty string name');
    if (t.name === METADATA_KEY) throw rangeError(`a tensor cannot be named ${METADATA_KEY}`);
    if (seen.has(t.name)) throw rangeError(`duplicate tensor name "${t.name}"`);
    seen.add(t.name);
    // types.isFloat32Array, not instanceof: arrays made by the addon or in another realm (jest) count too.
    if (!types.isFloat32Array(t.data)) throw typeError(`tensor "${t.name}": data must be a Float32Array`);
    const count = checkShape(t.shape, `tensor "${t.name}"`);
    if (t.data.length !== count)
      throw rangeError(
        `tensor "${t.name}": shape ${show(t.shape)} needs ${count} values, data has ${t.data.length}`,
        'TEMPERED_INVALID_LENGTH',
      );
    const end = offset + 4 * count;
    entries.push(`${JSON.stringify(t.name)}:{"dtype":"F32","shape":${JSON.stringify(t.shape)},"data_offsets":[${offset},${end}]}`);
    offset = end;
  }
  const json = `{${entries.join(',')}}`;
  // Pad with spaces to a multiple of 8 bytes, as the reference does, so the data section is aligned.
  const jsonBytes = Buffer.byteLength(json, 'utf8');
  const headerBytes = jsonBytes + ((8 - (jsonBytes % 8)) % 8);
  const out = Buffer.alloc(8 + headerBytes + offset, 0x20);
  out.writeBigUInt64LE(BigInt(headerBytes), 0);
  out.write(json, 8, 'utf8');
  let pos = 8 + headerBytes;
  for (const t of tensors) {
    if (LITTLE_ENDIAN_HOST) {
      out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    } else {
      for (let i = 0; i < t.data.length; i++) out.writeFloatLE(t.data[i], pos + 4 * i);
    }
    pos += t.data.byteLength;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Decoding

/** Scans a JSON string that JSON.parse accepted for a key repeated within one object (JSON.parse
 * silently keeps the last one, so a file could mean two different things), and lists the
 * top-level keys in the order they are written (JSON.parse puts integer-like keys first). */
function scanKeys(json: string): { duplicate: string | null; topLevel: string[] } {
  const stack: { keys: Set<string> | null; expectKey: boolean }[] = [];
  const topLevel: string[] = [];
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (c === 0x7b /* { */) stack.push({ keys: new Set(), expectKey: true });
    else if (c === 0x5b /* [ */) stack.push({ keys: null, expectKey: false });
    else if (c === 0x7d /* } */ || c === 0x5d /* ] */) stack.pop();
    else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top?.keys) top.expectKey = true;
    } else if (c === 0x3a /* : */) stack[stack.length - 1].expectKey = false;
    else if (c === 0x22 /* " */) {
      const start = i;
      for (i++; json.charCodeAt(i) !== 0x22; i++) if (json.charCodeAt(i) === 0x5c /* \ */) i++;
      const top = stack[stack.length - 1];
      if (top?.keys && top.expectKey) {
        const key = JSON.parse(json.slice(start, i + 1)) as string; // so "a" and "\u0061" match
        if (top.keys.has(key)) return { duplicate: key, topLevel };
        top.keys.add(key);
        if (stack.length === 1) topLevel.push(key);
      }
    }
  }
  return { duplicate: null, topLevel };
}

/** A value from the file, for an error message: short, and safe even for values JSON.stringify
 * cannot handle (it recurses, so a deeply nested array would overflow the stack). */
function show(v: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(v) ?? String(v);
  } catch {
    text = Array.isArray(v) ? '[...]' : '{...}';
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const HALF_TABLE = (() => {
  // Every float16 bit pattern as float32: 64k entries, exact (float16 is a subset of float32).
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) t[h] = sign * mant * 2 ** -24;
    else if (exp === 31) t[h] = mant ? NaN : sign * Infinity;
    else t[h] = sign * (1024 + mant) * 2 ** (exp - 25);
  }
  return t;
})();

function convert(buf: Buffer, start: number, count: number, dtype: SafetensorsDtype): Float32Array {
  const out = new Float32Array(count);
  switch (dtype) {
    case 'F32':
      if (LITTLE_ENDIAN_HOST) new Uint8Array(out.buffer).set(buf.subarray(start, start + 4 * count));
      else for (let i = 0; i < count; i++) out[i] = buf.readFloatLE(start + 4 * i);
      break;
    case 'F64':
      for (let i = 0; i < count; i++) out[i] = buf.readDoubleLE(start + 8 * i); // rounds to nearest
      break;
    case 'F16':
      for (let i = 0; i < count; i++) out[i] = HALF_TABLE[buf.readUInt16LE(start + 2 * i)];
      break;
    case 'BF16': {
      // bfloat16 is the top half of a float32: shift it back into place.
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = buf.readUInt16LE(start + 2 * i) << 16;
      break;
    }
  }
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Parses a safetensors file held in memory; `fileName` is only used in error messages. */
export function decodeSafetensors(buf: Buffer, fileName?: string): SafetensorsContents {
  const where = fileName ?? 'safetensors data';
  function bad(problem: string): never {
    throw new TemperedError('TEMPERED_BAD_FILE', `${where}: ${problem}`);
  }
  if (!Buffer.isBuffer(buf)) throw typeError('decodeSafetensors needs a Buffer');
  if (buf.length < 8) bad(`not a safetensors file: ${buf.length} bytes, shorter than the 8-byte header length`);
  const n64 = buf.readBigUInt64LE(0);
  if (n64 === 0n) bad('not a safetensors file: header length is 0');
  if (n64 > BigInt(MAX_HEADER_BYTES)) bad(`header length ${n64} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const headerBytes = Number(n64);
  if (8 + headerBytes > buf.length) bad(`truncated: header length ${headerBytes} runs past the end of the ${buf.length}-byte file`);

  let json: string;
  let header: unknown;
  try {
    json = utf8.decode(buf.subarray(8, 8 + headerBytes));
  } catch {
    bad('header is not valid UTF-8');
  }
  try {
    header = JSON.parse(json);
  } catch (err) {
    bad(`header is not valid JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(header)) bad(`header must be a JSON object (got ${Array.isArray(header) ? 'an array' : typeof header})`);
  const { duplicate, topLevel } = scanKeys(json);
  if (duplicate !== null) bad(`header repeats the key ${show(duplicate)}`);

  const dataStart = 8 + headerBytes;
  const dataLength = buf.length - dataStart;
  let metadata: Record<string, string> = {};
  const found: { name: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number }[] = [];

  for (const [name, entry] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      if (!isPlainObject(entry)) bad(`${METADATA_KEY} must be an object of strings`);
      for (const [k, v] of Object.entries(entry))
        if (typeof v !== 'string') bad(`${METADATA_KEY} value for ${show(k)} must be a string (got ${show(v)})`);
      // fromEntries defines own properties, so a "__proto__" key stays data, not a prototype.
      metadata = Object.fromEntries(Object.entries(entry as Record<string, string>));
      continue;
    }
    const what = `tensor ${show(name)}`;
    if (name === '') bad('a tensor has an empty name');
    if (!isPlainObject(entry)) bad(`${what} must be an object {dtype, shape, data_offsets}`);
    const e = entry;
    for (const k of ENTRY_KEYS) if (!Object.hasOwn(e, k)) bad(`${what} has no "${k}"`);
    for (const k of Object.keys(e)) if (!ENTRY_KEYS.includes(k)) bad(`${what} has an unknown field ${show(k)}`);

    if (typeof e.dtype !== 'string') bad(`${what}: dtype must be a string`);
    const dtype = e.dtype as SafetensorsDtype;
    if (!Object.prototype.hasOwnProperty.call(DTYPE_BYTES, dtype))
      bad(`${what}: unsupported dtype ${show(dtype)} (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`);

    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0))
      bad(`${what}: shape must be an array of non-negative integers (got ${show(shape)})`);
    // A zero dimension makes the tensor empty however large the others are.
    let count = shape.includes(0) ? 0 : 1;
    for (const d of shape) {
      count *= d;
      if (count > Number.MAX_SAFE_INTEGER) bad(`${what}: shape ${show(shape)} is too large`);
    }

    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0))
      bad(`${what}: data_offsets must be two non-negative integers (got ${show(offs)})`);
    const [begin, end] = offs as [number, number];
    if (begin > end) bad(`${what}: data_offsets [${begin}, ${end}] end before they begin`);
    if (end > dataLength)
      bad(`${what}: data_offsets [${begin}, ${end}] run past the end of the ${dataLength}-byte data section (truncated file?)`);
    const size = DTYPE_BYTES[dtype];
    if (end - begin !== count * size)
      bad(`${what}: ${end - begin} bytes of data, but shape ${show(shape)} of ${dtype} needs ${count * size}`);
    found.push({ name, dtype, shape: [...shape], begin, end });
  }

  // Sorted by position, each non-empty tensor must start at or after every earlier one's end.
  // Ties (empty tensors share offsets) keep the order the header is written in.
  const written = new Map(topLevel.map((name, i) => [name, i]));
  found.sort((a, b) => a.begin - b.begin || a.end - b.end || written.get(a.name)! - written.get(b.name)!);
  let reach = 0;
  let reachName = '';
  for (const t of found) {
    if (t.begin === t.end) continue; // empty tensors read nothing, so cannot overlap
    if (t.begin < reach) bad(`tensors ${show(reachName)} and ${show(t.name)} overlap in the data section`);
    reach = t.end;
    reachName = t.name;
  }

  const tensors = new Map<string, DecodedTensor>();
  for (const t of found) {
    const count = (t.end - t.begin) / DTYPE_BYTES[t.dtype];
    tensors.set(t.name, { dtype: t.dtype, shape: t.shape, data: convert(buf, dataStart + t.begin, count, t.dtype) });
  }
  return { tensors, metadata };
}

// ---------------------------------------------------------------------------------------
// Files

/** Writes a safetensors file atomically: a temporary file in the same folder, fsync'd, then
 * renamed over `file`, so readers see the old file or the new one, never a partial one. */
export async function writeSafetensors(file: string, tensors: Tensor[], metadata?: Record<string, string>): Promise<void> {
  const bytes = encodeSafetensors(tensors, metadata); // argument errors before touching the disk
  await writeFileAtomic(file, bytes);
}

/** Reads and decodes a safetensors file (see decodeSafetensors). Only a regular file is read
 * (a FIFO or /dev/zero is refused, never waited on), and a header length larger than the file
 * is refused before the rest is read. */
export async function readSafetensors(file: string): Promise<SafetensorsContents> {
  const buf = await readRegularFile(file, {
    maxBytes: MAX_FILE_BYTES,
    head: {
      bytes: 8,
      check: (head, size) => {
        if (head.length < 8) return; // decodeSafetensors names the problem
        const n = head.readBigUInt64LE(0);
        if (n > BigInt(size - 8))
          throw new TemperedError('TEMPERED_BAD_FILE', `${file}: truncated: header length ${n} runs past the end of the ${size}-byte file`);
      },
    },
  });
  return decodeSafetensors(buf, file);
}
