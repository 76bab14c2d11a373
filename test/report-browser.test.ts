// report.html of a small real run, opened in a real browser (headless Chromium through
// playwright-core, no browser download): no console error, no request leaves the file,
// every figure and picture is drawn with a size, the table cells equal results.json, and
// a screenshot is saved under test-output/. Skipped, saying why, only without Chromium.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { pathToFileURL } from 'url';
import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const cli = path.join(__dirname, '..', 'bin', 'tempered.js');
const outputDir = path.join(__dirname, '..', 'test-output', 'report-browser');
const SMALL = [
  '--epochs',
  '1',
  '--train-limit',
  '1000',
  '--samples',
  '12',
  '--alg4-samples',
  '1',
  '--budget',
  '20',
  '--pictures',
  '2',
  '--seed',
  '1',
  '--quiet',
];
const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
];

const pct = (x: number, d: number) => `${(100 * x).toFixed(d)}%`;
const hasChromium = fs.existsSync(CHROMIUM);
if (!hasChromium) process.stderr.write(`report-browser.test: SKIPPED: ${CHROMIUM} is absent (apt-get install chromium)\n`);
const browserTest = hasChromium ? test : test.skip;

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tempered-report-browser-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

browserTest(
  `report.html of a small reproduce run in headless Chromium${hasChromium ? '' : ` (skipped: ${CHROMIUM} is absent)`}`,
  async () => {
    const out = path.join(tmp, 'run');
    const run = spawnSync(process.execPath, [cli, 'reproduce', ...SMALL, '--out', out], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    const page_ = path.join(out, 'report.html');
    const url = pathToFileURL(page_).href;
    expect(run.stdout).toContain(url);

    const profile = path.join(tmp, 'chromium-profile');
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      viewport: { width: 1280, height: 900 },
    });
    try {
      const page = await context.newPage();
      const errors: string[] = [];
      const outside: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('request', (r) => {
        if (r.url() !== url && !r.url().startsWith('data:')) outside.push(r.url());
      });
      await page.goto(url, { waitUntil: 'load' });

      // Every figure is an inline SVG with a size; every picture tile is decoded.
      const figures = await page.$$eval('figure.plot-figure .plot svg', (svgs) =>
        svgs.map((s) => s.getBoundingClientRect()).map((b) => [b.width, b.height]),
      );
      // results.figures, then one epsilon curve per diagnosis (rule 4's step) in the diagnosis section.
      const curves = (results.diagnoses ?? []).filter((x: { diagnosis: { steps: { byEpsilon?: unknown[] }[] } }) =>
        x.diagnosis.steps.some((st) => st.byEpsilon?.length),
      ).length;
      expect(curves).toBe((results.diagnoses ?? []).length);
      expect(figures).toHaveLength(results.figures.length + curves);
      expect(figures.length).toBeGreaterThan(0);
      for (const [w, h] of figures) expect(w * h).toBeGreaterThan(100);
      const tiles = await page.$$eval('table.pictures img', (imgs) =>
        imgs.map((i) => [(i as unknown as { naturalWidth: number }).naturalWidth, i.getBoundingClientRect().width]),
      );
      const cells = results.pictures.flatMap((g: { rows: { cells: unknown[] }[] }) =>
        g.rows.flatMap((r) => r.cells.filter((c) => c !== null)),
      );
      expect(tiles).toHaveLength(cells.length);
      expect(tiles.length).toBeGreaterThan(0);
      for (const [natural, shown] of tiles) expect([natural, shown > 0]).toEqual([28, true]);
      const masked = await page.$$eval('.tile.masked', (t) => t.length);
      expect(masked).toBe(cells.filter((c: { allZero?: boolean }) => c.allZero).length);

      // Table cells against results.json.
      const table = (id: string) =>
        page.$$eval(`table[data-table="${id}"] tbody tr`, (rows) =>
          rows.map((r) => [...r.children].map((c) => (c.textContent ?? '').trim())),
        );
      const models = await table('models');
      expect(models.map((r) => r.slice(0, 7))).toEqual(
        results.models.map((m: Record<string, number | string>) => [
          m.name,
          String(m.trainingTemperature),
          String(m.epochs),
          String(m.lossScale),
          String(m.learningRate),
          pct(m.testAccuracy as number, 2),
          pct(m.paperAccuracy as number, 2),
        ]),
      );
      const alg2 = await table('attacks-alg2');
      const settings = ['xent32', 'xent64', 'margin'];
      settings.forEach((s, row) =>
        results.models.forEach((m: { id: string }, k: number) => {
          const a = results.attacks.find((x: Record<string, string>) => x.algorithm === 'alg2' && x.setting === s && x.model === m.id);
          expect(alg2[row][1 + k].startsWith(`${pct(a.successRate, 1)} [`)).toBe(true);
          expect(alg2[row][1 + k]).toContain(` of ${a.attacked}`);
        }),
      );
      const stages = await table('stages');
      expect(stages.map((r) => [r[1], r[2]])).toEqual(
        results.stages.map((s: { label: string; seconds: number; alongside?: string[] }) => [
          s.alongside?.length ? `${s.label} (side by side with ${s.alongside.join(', ')})` : s.label,
          s.seconds.toFixed(2),
        ]),
      );
      const gradients = await table('gradients');
      const rows = results.gradients.flatMap((g: { rows: { meanAbs: number }[] }) => g.rows);
      expect(gradients.map((r) => r[3])).toEqual(
        rows.map((r: { meanAbs: number }) => (r.meanAbs === 0 ? '0' : r.meanAbs.toExponential(2))),
      );

      fs.mkdirSync(outputDir, { recursive: true });
      const shot = path.join(outputDir, 'report.png');
      await page.screenshot({ path: shot, fullPage: true });
      expect(fs.statSync(shot).size).toBeGreaterThan(10000);
      process.stdout.write(`report-browser.test: screenshot ${shot}\n`);
      expect(errors).toEqual([]);
      expect(outside).toEqual([]);
    } finally {
      await context.close();
    }
  },
  600000,
);
