// PNG pictures for the reproduce report: originals beside their adversarial versions, and
// Algorithm 2's saliency maps S1 (pixel set to 1) and S2 (pixel set to 0) in float32 and
// float64, so gradient masking is visible (an all-zero map is drawn as a dark red tile).
import * as path from 'path';
import { PNG } from 'pngjs';
import type { AttackSetting, ExperimentProfile, ModelId, ModelSpec, StoredAttack } from './experiment';
import { writeFileAtomic } from './fsutil';
import type { MnistData } from './mnist';
import type { Model } from './model';

const SCALE = 4;
const TILE = 28 * SCALE;
const GAP = 6;

export interface Picture {
  file: string; // relative to the output folder
  caption: string;
}

type Rgb = [number, number, number];

class Canvas {
  readonly png: PNG;
  constructor(readonly width: number, readonly height: number) {
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

function applyPath(original: Float32Array, pathIds: number[]): Float32Array {
  const img = Float32Array.from(original);
  for (const c of pathIds) img[c % 784] = c < 784 ? 1 : 0;
  return img;
}

export async function writePictures(
  out: string,
  data: MnistData,
  models: Map<ModelId, Model>,
  specs: ModelSpec[],
  stored: Map<string, StoredAttack>,
  profile: ExperimentProfile,
): Promise<Picture[]> {
  const pictures: Picture[] = [];
  if (profile.pictures === 0) return pictures;
  const columns: { alg: string; setting: AttackSetting['id'] }[] = [
    { alg: 'alg1', setting: 'xent32' },
    { alg: 'alg2', setting: 'xent32' },
    { alg: 'alg2', setting: 'margin' },
    { alg: 'alg3', setting: 'xent32' },
  ];
  // The first samples every model attacked, then (if too few) the others.
  const all = (stored.get(`${specs[0].id}-alg2-xent32`)?.records ?? []).map((r) => r.index);
  const attackedByAll = all.filter((idx) => specs.every((s) => stored.get(`${s.id}-alg2-xent32`)?.records.find((r) => r.index === idx)?.attacked));
  const shown = [...attackedByAll, ...all.filter((idx) => !attackedByAll.includes(idx))].slice(0, profile.pictures);
  if (shown.length === 0) return pictures;

  for (const spec of specs) {
    // Originals and adversarial images; green border: the attack succeeded, red: it failed.
    const adv = canvas(1 + columns.length, shown.length);
    shown.forEach((idx, row) => {
      const original = data.test.images.slice(idx * 784, (idx + 1) * 784);
      adv.tile(0, row, original, grey);
      columns.forEach((col, k) => {
        const rec = stored.get(`${spec.id}-${col.alg}-${col.setting}`)?.records.find((r) => r.index === idx);
        if (!rec) return;
        // Grey border: misclassified to begin with, so not attacked.
        const border: Rgb = !rec.attacked ? [150, 150, 150] : rec.success ? [0, 170, 60] : [210, 30, 30];
        adv.tile(1 + k, row, applyPath(original, rec.path), grey, border);
      });
    });
    const advFile = path.join('pictures', `adversarial-${spec.id}.png`);
    await writeFileAtomic(path.join(out, advFile), adv.encode());
    pictures.push({
      file: advFile,
      caption:
        `${spec.name}: test images ${shown.join(', ')}; columns: original, ` +
        columns.map((c) => `${c.alg} (${c.setting})`).join(', ') +
        '; green border: misclassified within the budget, red: the attack failed, grey: misclassified to begin with (not attacked).',
    });

    // Saliency maps of Algorithm 2: S1 and S2, float32 and float64 cross-entropy.
    const model = models.get(spec.id)!;
    const images = new Float32Array(shown.length * 784);
    shown.forEach((idx, k) => images.set(data.test.images.subarray(idx * 784, (idx + 1) * 784), k * 784));
    const labels = Int32Array.from(shown, (idx) => data.test.labels[idx]);
    const sal = canvas(4, shown.length);
    let k = 0;
    for (const precision of ['float32', 'float64'] as const) {
      const sw = await model.nativeModel.sweep(images, labels, { loss: 'xent', precision, temperature: 1 }, null);
      shown.forEach((_, row) => {
        for (const half of [0, 1]) {
          const s = new Float64Array(784);
          for (let p = 0; p < 784; p++) {
            const loss = sw.losses[row * 1568 + half * 784 + p];
            s[p] = precision === 'float32' ? Math.abs(Math.fround(Math.fround(loss) - Math.fround(sw.base[row]))) : Math.abs(loss - sw.base[row]);
          }
          sal.tile(k + half, row, s, heat(s));
        }
      });
      k += 2;
    }
    const salFile = path.join('pictures', `saliency-${spec.id}.png`);
    await writeFileAtomic(path.join(out, salFile), sal.encode());
    pictures.push({
      file: salFile,
      caption:
        `${spec.name}: Algorithm 2 saliency |L(x with p := 1) - L(x)| and |L(x with p := 0) - L(x)| for the same images; ` +
        'columns: S1, S2 with the float32 cross-entropy, S1, S2 with the float64 one; log colour scale per map; ' +
        'a dark red tile is a map that is zero everywhere (masked).',
    });
  }
  return pictures;
}
