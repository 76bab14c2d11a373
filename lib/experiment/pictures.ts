// The pictures of a reproduce run, drawn from what the attacks returned (no attack runs
// again): originals beside their adversarial versions, and Algorithm 2's saliency maps S1
// (pixel set to 1) and S2 (pixel set to 0) under the float32 and float64 cross-entropy, so
// gradient masking is visible (an all-zero map is drawn as a dark red tile, marked "all zero").
// Each grid is kept tile by tile (for the HTML page, which labels rows and columns) and as one
// PNG that stands alone: its title, column and row labels, the notes under the tiles, the
// legend and (saliency) the colour bar are drawn into it with the bitmap font.
import * as path from 'path';
import { PNG } from 'pngjs';
import type { AttackAlgorithm, AttackRecord } from '../attack';
import { drawText, LINE_HEIGHT, textWidth, wrapText } from './render/bitmap-font';
import { writeFileAtomic } from '../fsutil';
import type { MnistSplit } from '../mnist';
import type { AttackSettingId, ModelSpec } from './profiles';
import type { PictureCell, PictureGrid } from './results';

/** The box of a tile: 28 x 28 MNIST pixels at 4 screen pixels each; other sizes scale to fit. */
const TILE = 112;
/** Font scale of the labels: 10 x 14 pixel capitals. */
const TEXT = 2;
const LINE = LINE_HEIGHT * TEXT;
/** Column pitch: a tile and room for its notes. */
const CELL = TILE + 20;
const MARGIN = 10;
const INK: Rgb = [25, 25, 25];
const WHITE: Rgb = [255, 255, 255];

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
  rect(x: number, y: number, w: number, h: number, c: Rgb): void {
    for (let dy = 0; dy < h; dy++) for (let dx = 0; dx < w; dx++) this.set(x + dx, y + dy, c);
  }
  text(x: number, y: number, s: string, c: Rgb = INK, scale = TEXT): void {
    drawText((px, py) => this.set(px, py, c), x, y, s, scale);
  }
  /** An h x w picture with its top-left corner at (x0, y0), position p drawn as at(p), scaled
   * to fit the tile's box. */
  tile(x0: number, y0: number, side: TileShape, at: (p: number) => Rgb, border?: Rgb): void {
    const scale = Math.max(1, Math.floor(TILE / Math.max(side.height, side.width)));
    for (let p = 0; p < side.height * side.width; p++)
      this.rect(x0 + (p % side.width) * scale, y0 + Math.floor(p / side.width) * scale, scale, scale, at(p));
    if (border) {
      for (let k = -3; k < TILE + 3; k++) {
        for (const t of [-3, -2, -1]) {
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

/** The size of a picture in positions (pixels). */
interface TileShape {
  height: number;
  width: number;
}

/** One tile of a grid picture: the colour of each position, and the words under it (and over it). */
interface TileDrawing {
  at: (p: number) => Rgb;
  border?: Rgb;
  /** Lines under the tile. */
  notes: string[];
  /** Lines written across the tile (the "all zero" mark), in white unless markColour says otherwise. */
  mark?: string[];
  markColour?: Rgb;
}

/** A colour swatch and its meaning, in the legend under the grid. */
interface LegendEntry {
  colour: Rgb;
  text: string;
}

interface GridDrawing {
  title: string;
  columns: string[];
  rows: { label: string[]; tiles: (TileDrawing | null)[] }[];
  legend: LegendEntry[];
  /** Saliency: the colour ramp, with what it means. */
  colourBar?: { low: string; high: string; note: string };
  footer: string[];
}

/** Draws a labelled grid of tiles, its legend and notes, as one PNG that needs no page around it. */
function drawGrid(g: GridDrawing, side: TileShape): Buffer {
  const labelWidth = Math.max(...g.rows.flatMap((r) => r.label.map((l) => textWidth(l, TEXT)))) + 14;
  const width = MARGIN * 2 + labelWidth + g.columns.length * CELL;
  const inner = width - 2 * MARGIN;
  const titleLines = wrapText(g.title, inner, TEXT);
  const headers = g.columns.map((c) => wrapText(c, CELL - 8, TEXT));
  const headerLines = Math.max(...headers.map((h) => h.length));
  const noteLines = Math.max(1, ...g.rows.flatMap((r) => r.tiles.map((t) => t?.notes.length ?? 0)));
  const rowHeight = TILE + 8 + noteLines * LINE + 8;
  const legendLines = g.legend.map((e) => wrapText(e.text, inner - 24, TEXT));
  const footerLines = g.footer.flatMap((f) => wrapText(f, inner, TEXT));
  const top = MARGIN + titleLines.length * LINE + 6;
  const gridTop = top + headerLines * LINE + 6;
  const legendTop = gridTop + g.rows.length * rowHeight + 4;
  const barNote = g.colourBar ? wrapText(g.colourBar.note, inner, TEXT) : [];
  const barHeight = g.colourBar ? 18 + barNote.length * LINE + 8 : 0;
  const legendHeight = legendLines.reduce((n, l) => n + l.length * LINE + 4, 0);
  const height = legendTop + barHeight + legendHeight + footerLines.length * LINE + MARGIN;
  const c = new Canvas(width, height);
  titleLines.forEach((l, k) => c.text(MARGIN, MARGIN + k * LINE, l));
  const colX = (col: number) => MARGIN + labelWidth + col * CELL + 4;
  headers.forEach((lines, col) => lines.forEach((l, k) => c.text(colX(col), top + k * LINE, l)));
  g.rows.forEach((row, r) => {
    const y0 = gridTop + r * rowHeight;
    row.label.forEach((l, k) => c.text(MARGIN, y0 + 4 + k * LINE, l));
    row.tiles.forEach((t, col) => {
      if (!t) return;
      c.tile(colX(col), y0 + 4, side, t.at, t.border);
      t.mark?.forEach((l, k) =>
        c.text(colX(col) + Math.floor((TILE - textWidth(l, TEXT)) / 2), y0 + 4 + 36 + k * LINE, l, t.markColour ?? WHITE),
      );
      t.notes.forEach((l, k) => c.text(colX(col), y0 + 4 + TILE + 6 + k * LINE, l));
    });
  });
  let y = legendTop;
  if (g.colourBar) {
    const barX = MARGIN + textWidth(g.colourBar.low, TEXT) + 8;
    const barWidth = 256;
    c.text(MARGIN, y, g.colourBar.low);
    for (let k = 0; k < barWidth; k++) c.rect(barX + k, y, 1, 14, ramp(0.15 + (0.85 * k) / (barWidth - 1)));
    c.text(barX + barWidth + 8, y, g.colourBar.high);
    y += 18;
    barNote.forEach((l, k) => c.text(MARGIN, y + k * LINE, l));
    y += barNote.length * LINE + 8;
  }
  g.legend.forEach((e, k) => {
    c.rect(MARGIN, y + 2, 16, 16, e.colour);
    legendLines[k].forEach((l, j) => c.text(MARGIN + 24, y + j * LINE, l));
    y += legendLines[k].length * LINE + 4;
  });
  footerLines.forEach((l, k) => c.text(MARGIN, y + k * LINE, l));
  return c.encode();
}

const grey = (v: number): Rgb => {
  const g = Math.round(255 * Math.min(1, Math.max(0, v)));
  return [g, g, g];
};
const byte = (v: number) => Math.round(255 * Math.min(1, Math.max(0, v)));

/** An image's colour at each position: grey for one channel, RGB for three (NHWC values). */
function imageColours(values: ArrayLike<number>, channels: number): (p: number) => Rgb {
  if (channels === 1) return (p) => grey(values[p]);
  return (p) => [byte(values[p * channels]), byte(values[p * channels + 1]), byte(values[p * channels + 2])];
}

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

/** The tile of a sample that was not attacked (no saliency map). */
const NOT_ATTACKED: Rgb = [225, 225, 225];

/** The colour of a map that is zero everywhere (masked). */
const MASKED: Rgb = [90, 0, 0];

/** Colours |v| on a log scale spanning this map's non-zero values (low .. high); 0 is black. */
function heat(values: ArrayLike<number>): { colour: (v: number) => Rgb; low?: number; high?: number } {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const a = Math.abs(values[i]);
    if (a > 0 && Number.isFinite(a)) {
      lo = Math.min(lo, Math.log10(a));
      hi = Math.max(hi, Math.log10(a));
    }
  }
  if (!Number.isFinite(lo)) return { colour: () => MASKED };
  const span = Math.max(hi - lo, 1e-12);
  return {
    colour: (v) => {
      const a = Math.abs(v);
      return a > 0 && Number.isFinite(a) ? ramp(0.15 + (0.85 * (Math.log10(a) - lo)) / span) : [0, 0, 0];
    },
    low: 10 ** lo,
    high: 10 ** hi,
  };
}

/** What an attack piece keeps of a picture sample beyond its record: the images, base64. */
export interface PictureExtras {
  /** The image when the attack ended: the model's input size in float32 values (784 for MNIST). */
  adversarial: string;
  /** Algorithm 2's first saliency map: 2 x positions float64 values (S1 then S2; 1,568 for MNIST). */
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

/** An h x w tile as a PNG (base64), one pixel per image pixel. */
function tilePng(side: TileShape, at: (p: number) => Rgb): string {
  const c = new Canvas(side.width, side.height);
  for (let p = 0; p < side.height * side.width; p++) c.set(p % side.width, Math.floor(p / side.width), at(p));
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
  const rowLines = (idx: number) => [`test ${idx}`, `label ${test.labels[idx]}`];
  // Images of any shape: colour for three channels; Algorithm 2's maps have one value per position.
  const shape = test.shape ?? { height: 28, width: 28, channels: 1 };
  const side: TileShape = { height: shape.height, width: shape.width };
  const size = shape.height * shape.width * shape.channels;
  const positions = shape.height * shape.width;
  for (const spec of specs) {
    // Originals and adversarial images; border: green the attack succeeded, red it failed, grey not attacked.
    const advTiles: (TileDrawing | null)[][] = [];
    const advRows: PictureGrid['rows'] = shown.map((idx) => {
      const original = imageColours(test.images.slice(idx * size, (idx + 1) * size), shape.channels);
      const tiles: (TileDrawing | null)[] = [{ at: original, notes: ['original'] }];
      const cells: (PictureCell | null)[] = [{ png: tilePng(side, original), note: `original, label ${test.labels[idx]}` }];
      ADVERSARIAL_COLUMNS.forEach((col) => {
        const rec = lookup(spec.id, col.alg, col.setting, idx);
        if (!rec?.picture) {
          cells.push(null);
          tiles.push(null);
          return;
        }
        const image = imageColours(
          fromBase64(rec.picture.adversarial, (b) => new Float32Array(b)),
          shape.channels,
        );
        const outcome: PictureCell['outcome'] = !rec.attacked ? 'not-attacked' : rec.success ? 'success' : 'failure';
        const note = !rec.attacked
          ? `misclassified to begin with (as ${rec.initialPrediction}): not attacked`
          : rec.success
            ? `classified as ${rec.finalPrediction} after ${rec.pixels} pixels`
            : `still ${rec.finalPrediction} after ${rec.pixels} pixels`;
        const notes = !rec.attacked
          ? ['not', 'attacked']
          : rec.success
            ? [`now ${rec.finalPrediction}`, `${rec.pixels} px`]
            : [`still ${rec.finalPrediction}`, `${rec.pixels} px`];
        tiles.push({ at: image, border: BORDER[outcome], notes });
        cells.push({ png: tilePng(side, image), note, outcome });
      });
      advTiles.push(tiles);
      return { label: rowLabel(idx), cells };
    });
    const advColumns = ['original', ...ADVERSARIAL_COLUMNS.map((c) => `${c.alg.replace('alg', 'Algorithm ')}, ${c.setting}`)];
    const advFile = path.join('pictures', `adversarial-${spec.id}.png`);
    await writeFileAtomic(
      path.join(out, advFile),
      drawGrid(
        {
          title: `${spec.name}: adversarial images`,
          columns: advColumns,
          rows: shown.map((idx, r) => ({ label: rowLines(idx), tiles: advTiles[r] })),
          legend: [
            { colour: BORDER.success, text: 'misclassified within the budget (under the tile: the new class, the pixels changed)' },
            { colour: BORDER.failure, text: 'the attack failed (the class it still has)' },
            { colour: BORDER['not-attacked'], text: 'misclassified to begin with: not attacked' },
          ],
          footer: [],
        },
        side,
      ),
    );
    grids.push({
      id: `adversarial-${spec.id}`,
      model: spec.id,
      kind: 'adversarial',
      file: advFile,
      columns: advColumns,
      rows: advRows,
      caption:
        `${spec.name}: test images ${shown.join(', ')}; columns: original, ` +
        ADVERSARIAL_COLUMNS.map((c) => `${c.alg} (${c.setting})`).join(', ') +
        '; green border: misclassified within the budget, red: the attack failed, grey: misclassified to begin with (not attacked).',
    });

    // Saliency maps of Algorithm 2 as the attack computed them: S1, S2 per loss precision.
    const salTiles: (TileDrawing | null)[][] = [];
    const salRows: PictureGrid['rows'] = shown.map((idx) => {
      const cells: (PictureCell | null)[] = [];
      const tiles: (TileDrawing | null)[] = [];
      SALIENCY_SETTINGS.forEach((setting) => {
        const rec = lookup(spec.id, SALIENCY_ALGORITHM, setting, idx);
        if (!rec?.picture?.saliency || !rec.attacked) {
          cells.push(null, null);
          // A sample the model misclassifies to begin with has no map: say so rather than leave a hole.
          const skipped: TileDrawing | null = rec
            ? {
                at: () => NOT_ATTACKED,
                notes: ['misclass.', `as ${rec.initialPrediction}`],
                mark: ['not', 'attacked'],
                markColour: INK,
              }
            : null;
          tiles.push(skipped, skipped);
          return;
        }
        const s = fromBase64(rec.picture.saliency, (b) => new Float64Array(b));
        for (const half of [0, 1]) {
          const map = s.subarray(half * positions, (half + 1) * positions);
          const { colour, low, high } = heat(map);
          const at = (p: number) => colour(map[p]);
          const allZero = map.every((v) => v === 0);
          let max = 0;
          for (const v of map) if (Number.isFinite(v)) max = Math.max(max, Math.abs(v));
          cells.push({ png: tilePng(side, at), note: allZero ? 'zero everywhere (masked)' : `max ${max.toExponential(2)}`, allZero });
          tiles.push(
            allZero
              ? { at, notes: ['zero', 'everywhere'], mark: ['all zero', '(masked)'] }
              : { at, notes: [`lo ${low!.toExponential(1)}`, `hi ${high!.toExponential(1)}`] },
          );
        }
      });
      salTiles.push(tiles);
      return { label: rowLabel(idx), cells };
    });
    const salColumns = SALIENCY_SETTINGS.flatMap((s) => [`S1 (pixel := 1), ${s}`, `S2 (pixel := 0), ${s}`]);
    const salFile = path.join('pictures', `saliency-${spec.id}.png`);
    await writeFileAtomic(
      path.join(out, salFile),
      drawGrid(
        {
          title: `${spec.name}: Algorithm 2 saliency maps`,
          columns: salColumns,
          rows: shown.map((idx, r) => ({ label: rowLines(idx), tiles: salTiles[r] })),
          colourBar: {
            low: 'lo',
            high: 'hi',
            note: 'log scale of |L(x with p := 1 or 0) - L(x)|, per map: each map runs from its own lo to its own hi (under the tile)',
          },
          legend: [
            { colour: [0, 0, 0], text: 'exactly 0' },
            { colour: MASKED, text: 'all zero: the whole map is 0 (masked), the attack had nothing to follow' },
            { colour: NOT_ATTACKED, text: 'not attacked: misclassified to begin with, so no map' },
          ],
          footer: [],
        },
        side,
      ),
    );
    grids.push({
      id: `saliency-${spec.id}`,
      model: spec.id,
      kind: 'saliency',
      file: salFile,
      columns: salColumns,
      rows: salRows,
      caption:
        `${spec.name}: Algorithm 2 saliency |L(x with p := 1) - L(x)| (S1) and |L(x with p := 0) - L(x)| (S2) for the same images, ` +
        'as the attack computed them under the float32 and the float64 cross-entropy; log colour scale per map; ' +
        'a dark red tile is a map that is zero everywhere (masked).',
    });
  }
  return grids;
}
