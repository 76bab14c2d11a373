// The PNG pictures stand alone: drawn from fabricated attack records, each grid carries its
// title, column and row labels, the notes under the tiles, the legend, the "all zero" mark
// on a masked saliency map and a colour bar that says the scale is logarithmic and per map.
// Checked in the pixels: each text, drawn with the same bitmap font, is found in the PNG.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PNG } from 'pngjs';
import type { AttackRecord } from '../lib/attack';
import { loadMnist, MnistData } from '../lib/mnist';
import { drawPictures, storedRecord, StoredRecord } from '../lib/experiment/pictures';
import { ADVANCE, drawText, glyph, GLYPH_HEIGHT, GLYPH_WIDTH, hasGlyph, textWidth, wrapText } from '../lib/experiment/render/bitmap-font';

let data: MnistData;
let dir: string;

beforeAll(async () => {
  data = await loadMnist();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tempered-pictures-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const masks = new WeakMap<PNG, Map<string, Uint8Array>>();
/** 1 where the pixel has the colour `ink` (computed once per picture and colour). */
function inkMask(png: PNG, ink: [number, number, number]): Uint8Array {
  const byInk = masks.get(png) ?? new Map<string, Uint8Array>();
  masks.set(png, byInk);
  const key = ink.join(',');
  let mask = byInk.get(key);
  if (!mask) {
    mask = new Uint8Array(png.width * png.height);
    for (let i = 0; i < mask.length; i++)
      mask[i] = png.data[4 * i] === ink[0] && png.data[4 * i + 1] === ink[1] && png.data[4 * i + 2] === ink[2] ? 1 : 0;
    byInk.set(key, mask);
  }
  return mask;
}

/** Whether `text` at font scale 2 appears in `png` in the colour `ink` (every ink pixel of the text there, no other). */
function findText(png: PNG, text: string, ink: [number, number, number]): boolean {
  const on: [number, number][] = [];
  const off: [number, number][] = [];
  drawText((x, y) => on.push([x, y]), 0, 0, text, 2);
  const inked = new Set(on.map(([x, y]) => `${x},${y}`));
  for (let y = 0; y < GLYPH_HEIGHT * 2; y++) for (let x = 0; x < textWidth(text, 2); x++) if (!inked.has(`${x},${y}`)) off.push([x, y]);
  const mask = inkMask(png, ink);
  const isInk = (x: number, y: number) => mask[y * png.width + x] === 1;
  const [fx, fy] = on[0];
  for (let y0 = 0; y0 + GLYPH_HEIGHT * 2 <= png.height; y0++)
    for (let x0 = 0; x0 + textWidth(text, 2) <= png.width; x0++) {
      if (!isInk(x0 + fx, y0 + fy)) continue;
      if (on.every(([x, y]) => isInk(x0 + x, y0 + y)) && off.every(([x, y]) => !isInk(x0 + x, y0 + y))) return true;
    }
  return false;
}

const INK: [number, number, number] = [25, 25, 25];
const WHITE: [number, number, number] = [255, 255, 255];

function record(index: number, alg: string, success: boolean, saliency?: Float64Array): StoredRecord {
  const adversarial = data.test.images.slice(index * 784, (index + 1) * 784);
  const rec: AttackRecord = {
    index,
    label: data.test.labels[index],
    attacked: true,
    success,
    pixels: success ? 7 : 100,
    l0: 7,
    initialPrediction: data.test.labels[index],
    finalPrediction: success ? (data.test.labels[index] + 1) % 10 : data.test.labels[index],
    saliencyAllZero: saliency ? saliency.every((v) => v === 0) : false,
    path: [],
    adversarial,
    ...(alg === 'alg2' && saliency ? { saliency } : {}),
  };
  return storedRecord(rec, true);
}

test('the bitmap font: every glyph is 5 x 9, text width and wrapping', () => {
  for (const ch of 'AZaz09.,:;()[]-+=/|%_<>!?*#^ε×') {
    expect(hasGlyph(ch)).toBe(true);
    const g = glyph(ch);
    expect(g).toHaveLength(GLYPH_HEIGHT);
    for (const row of g) expect(row).toHaveLength(GLYPH_WIDTH);
  }
  expect(glyph('☃')).toEqual(glyph('?'));
  expect(textWidth('abc', 2)).toBe((3 * ADVANCE - 1) * 2);
  expect(wrapText('S1 (pixel := 1), xent32', 9 * ADVANCE * 2, 2)).toEqual(['S1 (pixel', ':= 1),', 'xent32']);
});

test('adversarial and saliency PNGs carry their labels, legend, all-zero marks and colour bar', async () => {
  const shown = [3, 2, 1];
  const masked = new Float64Array(1568);
  const live = Float64Array.from({ length: 1568 }, (_, p) => (p % 7 === 0 ? 0 : 1e-9 * 10 ** (p % 6)));
  const lookup = (model: string, alg: string, setting: string, index: number) => {
    if (model !== 'stdT') return undefined;
    if (index === 1) return { ...record(index, alg, false), attacked: false, skipReason: 'misclassified' as const, initialPrediction: 4 };
    if (alg === 'alg2') return record(index, alg, index === 3, setting === 'xent32' ? masked : live);
    return record(index, alg, index === 3);
  };
  const specs = [{ id: 'stdT' as const, name: 'M_std-T', temperature: 20, paperAccuracy: 0.9934 }];
  const grids = await drawPictures(dir, data.test, specs, shown, lookup);
  expect(grids.map((g) => g.file)).toEqual([path.join('pictures', 'adversarial-stdT.png'), path.join('pictures', 'saliency-stdT.png')]);

  const adv = PNG.sync.read(fs.readFileSync(path.join(dir, grids[0].file)));
  for (const text of [
    'M_std-T: adversarial images',
    'original',
    'Algorithm',
    '1, xent32',
    '2, margin',
    'test 3',
    `label ${data.test.labels[3]}`,
  ])
    expect([text, findText(adv, text, INK)]).toEqual([text, true]);
  expect(findText(adv, `now ${(data.test.labels[3] + 1) % 10}`, INK)).toBe(true);
  expect(findText(adv, '7 px', INK)).toBe(true);
  expect(findText(adv, `still ${data.test.labels[2]}`, INK)).toBe(true);
  expect(findText(adv, 'misclassified within the budget (under the', INK)).toBe(true);
  expect(findText(adv, 'the attack failed (the class it still has)', INK)).toBe(true);
  expect(findText(adv, 'not a word of this picture', INK)).toBe(false);

  const sal = PNG.sync.read(fs.readFileSync(path.join(dir, grids[1].file)));
  expect(findText(sal, 'all zero', WHITE)).toBe(true); // written across the masked tiles
  expect(findText(sal, 'attacked', INK)).toBe(true); // across the tiles of the sample not attacked
  expect(findText(sal, 'as 4', INK)).toBe(true);
  expect(findText(sal, 'not attacked: misclassified', INK)).toBe(true);
  expect(findText(adv, 'misclassified to begin with: not attacked', INK)).toBe(true);
  expect(findText(sal, '(masked)', WHITE)).toBe(true);
  expect(findText(sal, 'S1 (pixel', INK)).toBe(true);
  expect(findText(sal, 'xent64', INK)).toBe(true);
  expect(findText(sal, 'lo 1.0e-9', INK)).toBe(true);
  expect(findText(sal, 'hi 1.0e-4', INK)).toBe(true);
  expect(findText(sal, 'log scale of', INK)).toBe(true);
  expect(findText(sal, 'map: each map runs from its own lo to its own hi', INK)).toBe(true);
  // The colour bar: a row of at least 200 pixels whose colours all differ from their left neighbour's... a ramp.
  let ramp = 0;
  for (let y = 0; y < sal.height && ramp < 200; y++) {
    let run = 0;
    for (let x = 1; x < sal.width; x++) {
      const o = (y * sal.width + x) * 4;
      const grey = sal.data[o] === sal.data[o + 1] && sal.data[o + 1] === sal.data[o + 2];
      run = !grey && sal.data[o] >= sal.data[o - 4] ? run + 1 : 0; // red rises along the ramp
      ramp = Math.max(ramp, run);
    }
  }
  expect(ramp).toBeGreaterThanOrEqual(200);
});

test('3-channel images are drawn in colour, at their own size, and their maps per position', async () => {
  // A 32 x 32 x 3 split: image 0 is pure red on the left half and pure blue on the right.
  const shape = { height: 32, width: 32, channels: 3 };
  const size = 32 * 32 * 3;
  const images = new Float32Array(2 * size);
  for (let p = 0; p < 1024; p++) images[p * 3 + (p % 32 < 16 ? 0 : 2)] = 1;
  images.fill(0.5, size);
  const test3 = { images, labels: Int32Array.from([1, 2]), count: 2, firstIndex: 0, source: 't10k' as const, shape, classes: 10 };
  const colourRecord = (index: number, alg: string): StoredRecord =>
    storedRecord(
      {
        index,
        label: test3.labels[index],
        attacked: true,
        success: false,
        pixels: 10,
        l0: 0,
        initialPrediction: test3.labels[index],
        finalPrediction: test3.labels[index],
        saliencyAllZero: false,
        path: [],
        adversarial: images.slice(index * size, (index + 1) * size),
        ...(alg === 'alg2' ? { saliency: Float64Array.from({ length: 2048 }, (_, p) => 1 + (p % 1024)) } : {}),
      },
      true,
    );
  const specs = [{ id: 'std' as const, name: 'M_std', temperature: 1, paperAccuracy: 0.9957 }];
  const grids = await drawPictures(dir, test3, specs, [0], (_m, alg, _s, index) => colourRecord(index, alg));
  const adv = PNG.sync.read(fs.readFileSync(path.join(dir, grids[0].file)));
  const count = (rgb: [number, number, number]) => {
    let n = 0;
    for (let i = 0; i < adv.data.length; i += 4)
      if (adv.data[i] === rgb[0] && adv.data[i + 1] === rgb[1] && adv.data[i + 2] === rgb[2]) n++;
    return n;
  };
  // 5 tiles (original + 4 attacks) of 512 red and 512 blue positions, 3 x 3 screen pixels each.
  expect(count([255, 0, 0])).toBe(5 * 512 * 9);
  expect(count([0, 0, 255])).toBe(5 * 512 * 9);
  // The tiles of the HTML page: one pixel per image pixel, 32 x 32, in colour.
  const tile = PNG.sync.read(Buffer.from(grids[0].rows[0].cells[0]!.png, 'base64'));
  expect([tile.width, tile.height]).toEqual([32, 32]);
  expect([...tile.data.subarray(0, 3)]).toEqual([255, 0, 0]);
  expect([...tile.data.subarray(31 * 4, 31 * 4 + 3)]).toEqual([0, 0, 255]);
  const map = PNG.sync.read(Buffer.from(grids[1].rows[0].cells[0]!.png, 'base64'));
  expect([map.width, map.height]).toEqual([32, 32]);
});
