// tempered info: the build, the backends and why one is unavailable, the CPU kernels.
import { Command } from 'commander';
import { backends, cpuIsa, getThreads } from '../../backends';
import { native } from '../../native';
import { output } from '../common';

export function infoCommand(): Command {
  return new Command('info')
    .description('show the build, the available backends and the CPU kernels in use')
    .option('--json', 'machine-readable output')
    .option('--verbose', 'list every folder searched for the GPU libraries')
    .action((o: { json?: boolean; verbose?: boolean }) => {
      const list = backends();
      output(o, { version: native.version(), build: native.buildInfo(), backends: list, threads: getThreads(), cpuIsa: cpuIsa() }, [
        `tempered ${native.version()}`,
        ...list.flatMap((b) => wrap(`${b.name}: ${b.available ? `available (${b.device})` : `unavailable: ${b.reason}`}`, '    ')),
        ...list.filter((b) => b.libraries).flatMap((b) => [`${b.name} libraries:`, ...foldLibraries(b.libraries!, !!o.verbose)]),
        `CPU kernels: ${cpuIsa()}, ${getThreads()} threads`,
      ]);
    });
}

const WIDTH = 100;

/**
 * The backend's library report ("cuDNN: ... (searched a, b, ...; then ...); cuBLAS: ...") as
 * short lines, one library each: the searched folders counted, or listed and wrapped with --verbose.
 */
export function foldLibraries(text: string, verbose: boolean): string[] {
  const lines: string[] = [];
  for (const entry of text.split(/; (?=[\w.-]+: )/)) {
    const searched = /\(searched ([^;)]*)(; then ([^)]*))?\)/.exec(entry);
    if (!searched) {
      lines.push(...wrap('  ' + entry, '    '));
      continue;
    }
    const folders = searched[1].split(', ');
    const then = searched[3] ? ` and ${searched[3].replace(/^the system linker's paths$/, "the linker's paths")}` : '';
    if (!verbose) {
      lines.push(...wrap(`  ${entry.replace(searched[0], `(searched ${folders.length} folders${then}; --verbose lists them)`)}`, '    '));
      continue;
    }
    lines.push(...wrap(`  ${entry.replace(searched[0], `(searched ${folders.length} folders${then}):`)}`, '    '));
    for (const f of folders) lines.push(`    ${f}`);
  }
  return lines;
}

/** Breaks a line at spaces so that no piece is longer than WIDTH (a single longer word stays whole). */
function wrap(line: string, indent: string): string[] {
  const out: string[] = [];
  const lead = /^ */.exec(line)![0];
  let current = lead;
  for (const word of line.slice(lead.length).split(' ')) {
    const next = current.trim() === '' ? current + word : `${current} ${word}`;
    if (next.length > WIDTH && current.trim() !== '') {
      out.push(current);
      current = indent + word;
    } else current = next;
  }
  if (current.trim() !== '') out.push(current);
  return out;
}
