// tempered report DIR: renders results.md, report.html, the figures' SVGs and the tables'
// CSVs again from DIR/results.json alone. A damaged file or an unknown format version is
// refused with a coded error before anything is written.
import * as path from 'path';
import { pathToFileURL } from 'url';
import { Command } from 'commander';
import { readResults, renderReport, writeRendered } from '../../experiment';
import { nearChanceWarning } from '../../experiment/profiles';
import { output } from '../common';

export function reportCommand(): Command {
  return new Command('report')
    .description('render report.html, results.md, figures/*.svg and tables/*.csv again from DIR/results.json alone')
    .argument('<dir>', 'a results folder (written by reproduce)')
    .option('--json', 'machine-readable output')
    .action(async (dir: string, o: { json?: boolean }) => {
      const folder = path.resolve(dir);
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
