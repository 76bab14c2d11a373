// The plain-words reading of a reproduce run on fabricated results: on a tiny run (models near
// chance, two samples attacked) it warns and says the intervals overlap instead of drawing a
// conclusion; on a run whose intervals are apart it draws one. Through `tempered report DIR`.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { ExperimentResults } from '../lib/experiment';
import { wilsonInterval } from '../lib/stats';
import { fixture } from './reproduce-fixture';

const cli = path.join(__dirname, '..', 'bin', 'tempered.js');

/** The fixture with each model's accuracy and, per (model, setting), successes of attacked. */
function results(accuracy: number[], outcomes: Record<string, [number, number]>): ExperimentResults {
  const r = fixture();
  r.models.forEach((m, k) => (m.testAccuracy = accuracy[k]));
  r.attacks = r.attacks.map((a) => {
    const [successes, attacked] = outcomes[`${a.model} ${a.setting}`];
    const pixels = successes > 0 ? { meanPixels: 2, medianPixels: 2 } : { meanPixels: undefined, medianPixels: undefined };
    return { ...a, ...pixels, attacked, successes, successRate: successes / attacked, interval: wilsonInterval(successes, attacked) };
  });
  return r;
}

function report(r: ExperimentResults): { md: string; stderr: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tempered-reading-'));
  try {
    fs.writeFileSync(path.join(dir, 'results.json'), JSON.stringify(r));
    const run = spawnSync(process.execPath, [cli, 'report', dir], { encoding: 'utf8' });
    expect(run.stderr.replace(/^warning: .*\n/gm, '')).toBe('');
    expect(run.status).toBe(0);
    return { md: fs.readFileSync(path.join(dir, 'results.md'), 'utf8'), stderr: run.stderr };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('a 1-epoch run: near-chance models are warned about, overlapping intervals give no conclusion', () => {
  const tiny = results([0.25, 0.12, 0.03], {
    'std xent32': [2, 2],
    'stdT xent32': [0, 2],
    'distill xent32': [0, 1],
    'std xent64': [2, 2],
    'stdT xent64': [1, 2],
    'distill xent64': [1, 1],
    'std margin': [2, 2],
    'stdT margin': [1, 2],
    'distill margin': [0, 1],
  });
  const { md, stderr } = report(tiny);
  expect(stderr).toMatch(/warning: M_std \(25\.0%\), M_std-T \(12\.0%\), M_distill \(3\.0%\) are near chance/);
  expect(md).toMatch(/\*\*Warning\.\*\* M_std \(25\.0%\), M_std-T \(12\.0%\), M_distill \(3\.0%\) are near chance/);
  expect(md).toContain('the intervals overlap: no conclusion');
  expect(md).not.toMatch(/stay harder to fool|resist it far better/);
});

test('a run whose intervals are apart draws its conclusions, with no warning', () => {
  const clear = results([0.99, 0.99, 0.99], {
    'std xent32': [336, 1000],
    'stdT xent32': [18, 1000],
    'distill xent32': [19, 1000],
    'std xent64': [970, 1000],
    'stdT xent64': [989, 1000],
    'distill xent64': [987, 1000],
    'std margin': [937, 1000],
    'stdT margin': [500, 1000],
    'distill margin': [480, 1000],
  });
  clear.attacks = [
    ...clear.attacks,
    ...(['alg1', 'alg3'] as const).flatMap((algorithm) => clear.attacks.map((a) => ({ ...a, algorithm }))),
  ];
  const { md, stderr } = report(clear);
  expect(stderr).toBe('');
  // Algorithms 1 and 3 beside the paper: this run's rates, then the measurement that explains the gap.
  expect(md).toMatch(
    /\*\*Algorithms 1 and 3 beside the paper\.\*\* This run: M_std 33\.6% and 33\.6% under the float32 cross-entropy, 97\.0% and 97\.0%/,
  );
  expect(md).toContain('684 of the 991 samples it classifies correctly');
  expect(md).not.toMatch(/near chance|Against M_std, the intervals overlap/);
  // M_std-T and M_distill (1.8% and 1.9% of 1,000) are not told apart, and the reading says so.
  expect(md).toContain('between M_std-T and M_distill the intervals overlap: no conclusion');
  expect(md).toMatch(/resist it far better than M_std/);
  expect(md).toMatch(/stay harder to fool than M_std/);
});
