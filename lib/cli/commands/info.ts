// tempered info: the build, the backends and why one is unavailable, the CPU kernels.
import { Command } from 'commander';
import { backends, cpuIsa, getThreads } from '../../backends';
import { native } from '../../native';
import { output } from '../common';

export function infoCommand(): Command {
  return new Command('info')
    .description('show the build, the available backends and the CPU kernels in use')
    .option('--json', 'machine-readable output')
    .action((o: { json?: boolean }) => {
      const list = backends();
      output(o, { version: native.version(), build: native.buildInfo(), backends: list, threads: getThreads(), cpuIsa: cpuIsa() }, [
        `tempered ${native.version()}`,
        ...list.map((b) => `${b.name}: ${b.available ? `available (${b.device})` : `unavailable: ${b.reason}`}`),
        ...list.filter((b) => b.libraries).map((b) => `${b.name} libraries: ${b.libraries}`),
        `CPU kernels: ${cpuIsa()}, ${getThreads()} threads`,
      ]);
    });
}
