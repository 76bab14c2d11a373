// tempered slurm DIR: DIR/plan.json as Slurm job arrays chained with afterok (lib/cluster/slurm.ts).
import * as path from 'path';
import { Command } from 'commander';
import { submitSlurm, writeSlurmScripts } from '../../cluster/slurm';
import { readPlan } from '../../experiment';
import { output, parseChoice, parseInteger } from '../common';

interface SlurmCliOptions {
  partition?: string;
  gpusPerTask?: number;
  cpusPerTask?: number;
  maxParallel?: number;
  time?: string;
  tempered?: string;
  backend?: 'auto' | 'cpu' | 'cuda';
  submit?: boolean;
  sbatch: string;
  json?: boolean;
}

export function slurmCommand(): Command {
  return new Command('slurm')
    .description(
      'write one sbatch job array per stage of DIR/plan.json (task k runs piece k with run-piece), chained with afterok, and a last job that builds results.json and the report; DIR must be on storage every node sees',
    )
    .argument('<dir>', "the folder holding plan.json ('study --plan' or 'reproduce --plan')")
    .option('--partition <name>', 'Slurm partition of every job')
    .option('--gpus-per-task <n>', 'GPUs for each task (with --backend cuda or auto)', parseInteger('--gpus-per-task', 1))
    .option('--cpus-per-task <n>', 'CPUs for each task (also its --threads)', parseInteger('--cpus-per-task', 1))
    .option('--max-parallel <k>', 'at most k tasks of an array at once (--array=0-N%k)', parseInteger('--max-parallel', 1))
    .option('--time <HH:MM:SS>', "each task's time limit")
    .option(
      '--backend <name>',
      'backend each task asks for (default: its own auto)',
      parseChoice('--backend', ['auto', 'cpu', 'cuda'] as const),
    )
    .option('--tempered <command>', "how a task starts tempered (default: this node and this package's bin/tempered.js)")
    .option('--submit', 'submit the jobs with sbatch --parsable and print their ids')
    .option('--sbatch <path>', 'the sbatch command', 'sbatch')
    .option('--json', 'machine-readable output')
    .action(async (dir: string, o: SlurmCliOptions) => {
      const out = path.resolve(dir);
      const plan = await readPlan(out);
      const scripts = await writeSlurmScripts(plan, out, o);
      const submitted = o.submit ? submitSlurm(scripts, o.sbatch) : [];
      output(o, { ...scripts, submitted }, [
        `wrote ${scripts.jobs.length} sbatch scripts and submit.sh in ${scripts.folder}:`,
        ...scripts.jobs.map(
          (j) => `  ${j.script}: ${j.tasks} task${j.tasks === 1 ? '' : 's'}${j.after.length ? `, afterok ${j.after.join(', ')}` : ''}`,
        ),
        ...(o.submit
          ? submitted.map((s) => `submitted ${s.name}: job ${s.jobId}`)
          : [`submit with: bash ${scripts.submitScript} (or tempered slurm ${dir} --submit)`]),
      ]);
    });
}
