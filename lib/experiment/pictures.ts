// The pictures of a reproduce run, drawn from what the attacks returned (no attack runs
// again): originals beside their adversarial versions, and Algorithm 2's saliency maps S1
// (pixel set to 1) and S2 (pixel set to 0) under the float32 and float64 cross-entropy, so
// gradient masking is visible (an all-zero map is drawn as a dark red tile). Each grid is
// kept tile by tile (for the HTML page, which labels rows and columns) and as one PNG.
import * as path from 'path';
import { PNG } from 'pngjs';
import type { AttackAlgorithm, AttackRecord } from '../attack';
import { writeFileAtomic } from '../fsutil';
import type { MnistSplit } from '../mnist';
import type { AttackSettingId, ModelSpec } from './profiles';
import type { PictureCell, PictureGrid } from './results';

const SCALE = 4;
const TILE = 28 * SCALE;
const GAP = 6;

type Rgb = [number, number, number];

class Canvas {
  readonly png: PNG;
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.png = new PNG({ width, height });
    this.png.data.fill(255);
  }
  set(x: number, y: number, [r, g, b]: Rgb): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const o = (y * this.width + x) * 4;
    this.png.data[o] = r;
    this.png.data[o + 1] = g;
    this.png.data[o + 2] = b;
    this.png.data[o + 3] = 255;
  }
  /** A 28 x 28 map at tile (col, row), each value drawn by colour(v). */
  tile(col: number, row: number, values: ArrayLike<number>, colour: (v: number, p: number) => Rgb, border?: Rgb): void {
    const x0 = GAP + col * (TILE + GAP);
    const y0 = GAP + row * (TILE + GAP);
    for (let p = 0; p < 784; p++) {
      const c = colour(values[p], p);
      const px = x0 + (p % 28) * SCALE;
      const py = y0 + Math.floor(p / 28) * SCALE;
      for (let dy = 0; dy < SCALE; dy++) for (let dx = 0; dx < SCALE; dx++) this.set(px + dx, py + dy, c);
    }
    if (border) {
      for (let k = -2; k < TILE + 2; k++) {
        for (const t of [-2, -1]) {
          this.set(x0 + k, y0 + t, border);
          this.set(x0 + k, y0 + TILE - 1 - t, border);
          this.set(x0 + t, y0 + k, border);
          this.set(x0 + TILE - 1 - t, y0 + k, border);
        }
      }
    }
  }
  encode(): Buffer {
    return PNG.sync.write(this.png);
  }
}

function canvas(cols: number, rows: number): Canvas {
  return new Canvas(GAP + cols * (TILE + GAP), GAP + rows * (TILE + GAP));
}

const grey = (v: number): Rgb => {
  const g = Math.round(255 * Math.min(1, Math.max(0, v)));
  return [g, g, g];
};

// A perceptually ordered black -> purple -> orange -> yellow ramp.
const STOPS: Rgb[] = [
  [0, 0, 4],
  [87, 16, 110],
  [188, 55, 84],
  [249, 142, 9],
  [252, 255, 164],
];
function ramp(t: number): Rgb {
  const x = Math.min(1, Math.max(0, t)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - i;
  return [0, 1, 2].map((k) => Math.round(STOPS[i][k] + f * (STOPS[i + 1][k] - STOPS[i][k]))) as Rgb;
}

/** Colours |v| on a log scale spanning this map's non-zero values; 0 is black. */
function heat(values: ArrayLike<number>): (v: number) => Rgb {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const a = Math.abs(values[i]);
    if (a > 0 && Number.isFinite(a)) {
      lo = Math.min(lo, Math.log10(a));
      hi = Math.max(hi, Math.log10(a));
    }
  }
  if (!Number.isFinite(lo)) return () => [90, 0, 0]; // all zero: masked
  const span = Math.max(hi - lo, 1e-12);
  return (v) => {
    const a = Math.abs(v);
    return a > 0 && Number.isFinite(a) ? ramp(0.15 + (0.85 * (Math.log10(a) - lo)) / span) : [0, 0, 0];
  };
}

/** What an attack piece keeps of a picture sample beyond its record: the images, base64. */
export interface PictureExtras {
  /** The image when the attack ended: 784 float32 values. */
  adversarial: string;
  /** Algorithm 2's first saliency map: 1,568 float64 values (S1 then S2). */
  saliency?: string;
}

export type StoredRecord = Omit<AttackRecord, 'adversarial' | 'saliency'> & { picture?: PictureExtras };

const toBase64 = (a: Float32Array | Float64Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
function fromBase64<T extends Float32Array | Float64Array>(s: string, make: (b: ArrayBuffer) => T): T {
  const b = Buffer.from(s, 'base64');
  return make(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/** The adversarial image a stored record keeps (undefined when it keeps none). */
export function storedAdversarial(rec: StoredRecord): Float32Array | undefined {
  return rec.picture ? fromBase64(rec.picture.adversarial, (b) => new Float32Array(b)) : undefined;
}

/** A record as stored: the images only for the picture samples. */
export function storedRecord({ adversarial, saliency, ...rest }: AttackRecord, keepPicture: boolean): StoredRecord {
  if (!keepPicture) return rest;
  return { ...rest, picture: { adversarial: toBase64(adversarial), ...(saliency ? { saliency: toBase64(saliency) } : {}) } };
}

/** The samples shown: the first ones every model classifies correctly, then (if too few) the others. */
export function pictureSamples(indices: number[], correctByAll: Set<number>, count: number): number[] {
  return [...indices.filter((i) => correctByAll.has(i)), ...indices.filter((i) => !correctByAll.has(i))].slice(0, count);
}

/** A 28 x 28 tile as a PNG (base64), one pixel per MNIST pixel. */
function tilePng(values: ArrayLike<number>, colour: (v: number) => Rgb): string {
  const c = new Canvas(28, 28);
  for (let p = 0; p < 784; p++) c.set(p % 28, Math.floor(p / 28), colour(values[p]));
  return c.encode().toString('base64');
}

export const ADVERSARIAL_COLUMNS: { alg: AttackAlgorithm; setting: AttackSettingId }[] = [
  { alg: 'alg1', setting: 'xent32' },
  { alg: 'alg2', setting: 'xent32' },
  { alg: 'alg2', setting: 'margin' },
  { alg: 'alg3', setting: 'xent32' },
];
export const SALIENCY_SETTINGS: AttackSettingId[] = ['xent32', 'xent64'];
/** The attack whose saliency maps are drawn (the attacks keep them for the picture samples only). */
export const SALIENCY_ALGORITHM: AttackAlgorithm = 'alg2';
export const SALIENCY_PICTURE_ALGORITHMS: readonly AttackAlgorithm[] = [SALIENCY_ALGORITHM];
/** Every attack a picture is drawn from: the pictures piece depends on these attacks only. */
export const PICTURED_ALGORITHMS: readonly AttackAlgorithm[] = [
  ...new Set([...ADVERSARIAL_COLUMNS.map((c) => c.alg), ...SALIENCY_PICTURE_ALGORITHMS]),
];

const BORDER: Record<NonNullable<PictureCell['outcome']>, Rgb> = {
  success: [0, 170, 60],
  failure: [210, 30, 30],
  'not-attacked': [150, 150, 150],
};

/** Looks up the stored record of (model, algorithm, setting, test index). */
export type RecordLookup = (model: string, alg: string, setting: AttackSettingId, index: number) => StoredRecord | undefined;

/**
 * The picture grids of every model from the stored attack records; writes each grid as a
 * PNG under out/pictures and returns the tiles with their labels.
 */
export async function drawPictures(
  out: string,
  test: MnistSplit,
  specs: ModelSpec[],
  shown: number[],
  lookup: RecordLookup,
): Promise<PictureGrid[]> {
  const grids: PictureGrid[] = [];
  if (shown.length === 0) return grids;
  const rowLabel = (idx: number) => `test image ${idx} (label ${test.labels[idx]})`;
  for (const spec of specs) {
    // Originals and adversarial images; border: green the attack succeeded, red it failed, grey not attacked.
    const adv = canvas(1 + ADVERSARIAL_COLUMNS.length, shown.length);
    const advRows: PictureGrid['rows'] = shown.map((idx, row) => {
      const original = test.images.slice(idx * 784, (idx + 1) * 784);
      adv.tile(0, row, original, grey);
      const cells: (PictureCell | null)[] = [{ png: tilePng(original, grey), note: `original, label ${test.labels[idx]}` }];
      ADVERSARIAL_COLUMNS.forEach((col, k) => {
        const rec = lookup(spec.id, col.alg, col.setting, idx);
        if (!rec?.picture) {
          cells.push(null);
          return;
        }
        const image = fromBase64(rec.picture.adversarial, (b) => new Float32Array(b));
        const outcome: PictureCell['outcome'] = !rec.attacked ? 'not-attacked' : rec.success ? 'success' : 'failure';
        adv.tile(1 + k, row, image, grey, BORDER[outcome]);
        const note = !rec.attacked
          ? `misclassified to begin with (as ${rec.initialPrediction}): not attacked`
          : rec.success
            ? `classified as ${rec.finalPrediction} after ${rec.pixels} pixels`
            : `still ${rec.finalPrediction} after ${rec.pixels} pixels`;
        cells.push({ png: tilePng(image, grey), note, outcome });
      });
      return { label: rowLabel(idx), cells };
    });
    const advFile = path.join('pictures', `adversarial-${spec.id}.png`);
    await writeFileAtomic(path.join(out, advFile), adv.encode());
    grids.push({
      id: `adversarial-${spec.id}`,
      model: spec.id,
      kind: 'adversarial',
      file: advFile,
      columns: ['original', ...ADVERSARIAL_COLUMNS.map((c) => `${c.alg.replace('alg', 'Algorithm ')}, ${c.setting}`)],
      rows: advRows,
      caption:
        `${spec.name}: test images ${shown.join(', ')}; columns: original, ` +
        ADVERSARIAL_COLUMNS.map((c) => `${c.alg} (${c.setting})`).join(', ') +
        '; green border: misclassified within the budget, red: the attack failed, grey: misclassified to begin with (not attacked).',
    });

    // Saliency maps of Algorithm 2 as the attack computed them: S1, S2 per loss precision.
    const sal = canvas(2 * SALIENCY_SETTINGS.length, shown.length);
    const salRows: PictureGrid['rows'] = shown.map((idx, row) => {
      const cells: (PictureCell | null)[] = [];
      SALIENCY_SETTINGS.forEach((setting, k) => {
        const rec = lookup(spec.id, SALIENCY_ALGORITHM, setting, idx);
        if (!rec?.picture?.saliency || !rec.attacked) {
          cells.push(null, null);
          return;
        }
        const s = fromBase64(rec.picture.saliency, (b) => new Float64Array(b));
        for (const half of [0, 1]) {
          const map = s.subarray(half * 784, (half + 1) * 784);
          const colour = heat(map);
          sal.tile(2 * k + half, row, map, colour);
          const allZero = map.every((v) => v === 0);
          let max = 0;
          for (const v of map) if (Number.isFinite(v)) max = Math.max(max, Math.abs(v));
          cells.push({ png: tilePng(map, colour), note: allZero ? 'zero everywhere (masked)' : `max ${max.toExponential(2)}`, allZero });
        }
      });
      return { label: rowLabel(idx), cells };
    });
    const salFile = path.join('pictures', `saliency-${spec.id}.png`);
    await writeFileAtomic(path.join(out, salFile), sal.encode());
    grids.push({
      id: `saliency-${spec.id}`,
      model: spec.id,
      kind: 'saliency',
      file: salFile,
      columns: SALIENCY_SETTINGS.flatMap((s) => [`S1 (pixel := 1), ${s}`, `S2 (pixel := 0), ${s}`]),
      rows: salRows,
      caption:
        `${spec.name}: Algorithm 2 saliency |L(x with p := 1) - L(x)| (S1) and |L(x with p := 0) - L(x)| (S2) for the same images, ` +
        'as the attack computed them under the float32 and the float64 cross-entropy; log colour scale per map; ' +
        'a dark red tile is a map that is zero everywhere (masked).',
    });
  }
  return grids;
}
