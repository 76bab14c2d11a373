// Report rendering from a fixed results object (fast: no training, no attack): tables equal
// the numbers, the Wilson band per budget equals an independent computation, the page is
// self-contained, version-1 files migrate, damaged or unknown files are refused and
// `tempered report` then overwrites nothing.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { budgetCurve, parseResults, renderReport, RESULTS_FORMAT_VERSION } from '../lib/experiment';
import { fixture } from './reproduce-fixture';

const cli = path.join(__dirname, '..', 'bin', 'tempered.js');
/** The 95% Wilson score interval, written out independently of lib/stats. */
function wilson(k: number, n: number): [number, number] {
  const z = 1.959963984540054;
  const p = k / n;
  const d = 1 + (z * z) / n;
  const c = (p + (z * z) / (2 * n)) / d;
  const h = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / d;
  return [Math.max(0, c - h), Math.min(1, c + h)];
}

test('the budget curve holds the exact successes and a Wilson interval per budget', () => {
  const a = fixture().attacks[0];
  const curve = budgetCurve(a, 'M_std', 'x');
  expect(curve.map((p) => p.successes)).toEqual([1, 3, 3, 4]);
  curve.forEach((p) => {
    const [lo, hi] = wilson(p.successes, 9);
    expect(p.low).toBeCloseTo(lo, 12);
    expect(p.high).toBeCloseTo(hi, 12);
  });
});

test('results.md, report.html and the CSVs hold the numbers of the results object', async () => {
  const r = fixture();
  const out = await renderReport(r);
  expect(out.markdown).toContain('| M_std | 1 | 2 | 1 | 0.1 | 95.12% | 99.00% | bbbbbbbbbb+dirty |');
  expect(out.markdown).toContain('| float32 cross-entropy (the paper) | 44.4% [');
  expect(out.markdown).toContain('| attack | alg2 xent32 on M_std | 1.25 |  | aaaaaaaaaa |');
  expect(out.markdown).toContain('| train | train M_std | 12.50 | reused | bbbbbbbbbb+dirty |');
  expect(out.markdown).toMatch(/21%, 14%, 95% validation accuracy/);
  expect(out.files.get('tables/models.csv')).toBe(
    'model,training T,epochs,loss scale,learning rate,test accuracy,paper,trained by commit\n' +
      'M_std,1,2,1,0.1,95.12%,99.00%,bbbbbbbbbb+dirty\nM_std-T,20,2,20,0.02,94.33%,99.00%,bbbbbbbbbb+dirty\nM_distill,20,2,20,0.02,93.01%,99.00%,bbbbbbbbbb+dirty\n',
  );
  // Every figure: an SVG file with a size, inline in the page with its text alternative.
  expect(r.figures.map((f) => f.id)).toEqual(['success-by-budget-alg2', 'training-curves']);
  for (const f of r.figures) {
    const svg = out.files.get(`figures/${f.id}.svg`)!;
    const [, w, h] = /<svg[^>]* width="(\d+)" height="(\d+)"/.exec(svg)!;
    expect(Number(w) * Number(h)).toBeGreaterThan(10000);
    expect(out.html).toContain(`id="figure-${f.id}"`);
  }
  expect(r.figures[0].alt).toContain('M_std 44.4% [');
  expect(r.figures[1].alt).toContain(
    'M_std: training loss 0.900 after epoch 1, 0.400 after epoch 2; validation accuracy 91.0% then 95.0%.',
  );
  // Self-contained: no script, nothing fetched from elsewhere; the masked map is marked.
  expect(out.html).not.toMatch(/<script/i);
  expect(out.html).not.toMatch(/(src|href)="(?!data:)/);
  expect(out.html).toContain('class="tile masked"');
  expect(out.html).toContain('<th scope="row" class="row">test image 3 (label 1)</th>');
});

test('a file without formatVersion is migrated; an unknown version or a damaged file is refused with a code', () => {
  const r = fixture();
  const { formatVersion: _v, kind: _k, code: _c, reuseOtherCommits: _u, stages: _s, figures: _f, pictures: _p, ...v1 } = r;
  const migrated = parseResults(JSON.stringify(v1));
  expect(migrated.formatVersion).toBe(RESULTS_FORMAT_VERSION);
  expect(migrated.figures.map((f) => f.id)).toEqual(['success-by-budget-alg2', 'training-curves']);
  expect(migrated.stages.filter((s) => s.stage === 'attack')).toHaveLength(9);
  expect(migrated.pictures).toEqual([]);
  const code = (text: string) => {
    try {
      parseResults(text);
    } catch (e) {
      return (e as { code?: string }).code;
    }
    return 'accepted';
  };
  expect(code(JSON.stringify({ ...r, formatVersion: 99 }))).toBe('TEMPERED_INCOMPATIBLE');
  expect(code('{"formatVersion": 2, "models": [')).toBe('TEMPERED_BAD_FILE');
  expect(code(JSON.stringify({ ...r, attacks: [{ model: 'std' }] }))).toBe('TEMPERED_BAD_FILE');
  expect(code(JSON.stringify({ ...r, figures: [{ id: '../../escape', spec: {} }] }))).toBe('TEMPERED_BAD_FILE');
  expect(code('[]')).toBe('TEMPERED_BAD_FILE');
});

test('tempered report DIR renders from results.json alone, and refuses a damaged one without writing', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tempered-report-'));
  try {
    fs.writeFileSync(path.join(dir, 'results.json'), JSON.stringify(fixture()));
    const ok = spawnSync(process.execPath, [cli, 'report', dir], { encoding: 'utf8' });
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain(`file://${path.join(dir, 'report.html')}`);
    for (const f of ['report.html', 'results.md', 'figures/training-curves.svg', 'tables/stages.csv'])
      expect(fs.existsSync(path.join(dir, f))).toBe(true);
    const before = fs.readFileSync(path.join(dir, 'report.html'), 'utf8');
    fs.writeFileSync(path.join(dir, 'results.json'), JSON.stringify({ ...fixture(), formatVersion: 7 }));
    const refused = spawnSync(process.execPath, [cli, 'report', dir], { encoding: 'utf8' });
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/TEMPERED_INCOMPATIBLE/);
    fs.writeFileSync(path.join(dir, 'results.json'), '{"formatVersion": 2');
    const damaged = spawnSync(process.execPath, [cli, 'report', dir], { encoding: 'utf8' });
    expect(damaged.status).toBe(2);
    expect(damaged.stderr).toMatch(/TEMPERED_BAD_FILE/);
    expect(fs.readFileSync(path.join(dir, 'report.html'), 'utf8')).toBe(before);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
