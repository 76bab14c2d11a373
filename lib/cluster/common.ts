// What the Slurm and Kubernetes writers share: where their files go, and how a task starts tempered.
import * as path from 'path';
import { packageRoot } from '../native';

/** The scheduler's files live beside the plan, in DIR/<scheduler>/. */
export const clusterFolder = (dir: string, scheduler: 'slurm' | 'k8s') => path.join(path.resolve(dir), scheduler);

/** A word for bash: left alone when it is plainly safe, else single-quoted. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** This Node running this package's CLI: on a cluster whose nodes share the file system (and the software), the same command. */
export function temperedCommand(): string {
  return [process.execPath, path.join(packageRoot(), 'bin', 'tempered.js')].map(shellQuote).join(' ');
}
