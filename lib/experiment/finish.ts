// The last stage of every experiment (reproduce, study): render the report once to time it,
// record that time as the 'render' stage, then render again so its own time is in it, and
// write results.json beside results.md, report.html, figures/ and tables/.
import * as path from 'path';
import { writeJsonAtomic } from '../fsutil';
import type { CodeVersion } from './pieces';
import { renderReport, writeRendered } from './render';
import type { AnyResults } from './results';

export async function finishExperiment(out: string, results: AnyResults, code: CodeVersion, started: number): Promise<void> {
  const t0 = Date.now();
  await renderReport(results);
  results.stages.push({
    stage: 'render',
    label: 'results.md, report.html, figures',
    seconds: (Date.now() - t0) / 1000,
    reused: false,
    producedBy: { commit: code.commit, dirty: code.dirty },
  });
  results.seconds = (Date.now() - started) / 1000;
  const rendered = await renderReport(results);
  await writeJsonAtomic(path.join(out, 'results.json'), results);
  await writeRendered(out, rendered);
}
