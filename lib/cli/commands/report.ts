// tempered report DIR: renders results.md, report.html, the figures' SVGs and the tables'
// CSVs again from DIR/results.json alone. A damaged file or an unknown format version is
// refused with a coded error before anything is written. A folder with plan.json (a study
// run piece by piece, on a cluster) gets its results.json built from the pieces first.
import * as fs from 'fs';
import * as path from 'path';
import { pathToFileURL } from 'url';
import { Command } from 'commander';
import { mergePlanned, planFile, readResults, renderReport, writeRendered } from '../../experiment';
import { nearChanceWarning } from '../../experiment/profiles';
import { output } from '../common';

export function reportCommand(): Command {
  return new Command('report')
    .description(
      'render report.html, results.md, figures/*.svg and tables/*.csv again from DIR/results.json alone; with DIR/plan.json, build results.json from its pieces first',
    )
    .argument('<dir>', 'a results folder (written by reproduce or study, or the pieces of a plan)')
    .option('--json', 'machine-readable output')
    .option('--no-merge', "with plan.json: render the results.json that is there instead of building it from the plan's pieces")
    .action(async (dir: string, o: { json?: boolean; merge: boolean }) => {
      const folder = path.resolve(dir);
      if (o.merge && fs.existsSync(planFile(folder)))
        await mergePlanned(folder, {
          onEvent: (e) => (e.done === undefined && !o.json ? process.stderr.write(`[${e.stage}] ${e.message}\n`) : undefined),
        });
      const results = await readResults(path.join(folder, 'results.json'));
      if (results.kind === 'reproduce') {
        const warning = nearChanceWarning(results.models);
        if (warning) process.stderr.write(`warning: ${warning}\n`);
      }
      const rendered = await renderReport(results);
      await writeRendered(folder, rendered);
      const url = pathToFileURL(path.join(folder, 'report.html')).href;
      output(o, { report: url, markdown: path.join(folder, 'results.md'), files: [...rendered.files.keys()] }, [
        `wrote ${path.join(folder, 'results.md')}, ${rendered.files.size} figure and table files`,
        url,
      ]);
    });
}
