// `tempered slurm DIR`: DIR/plan.json as Slurm job arrays, one per stage (task k runs the
// stage's k-th piece with run-piece), chained with --dependency=afterok in the plan's stage
// order, and a last job that builds results.json and the report from the pieces. Slurm does
// all the scheduling; the scripts only say what to run. DIR must be on storage every node sees.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { TemperedError } from '../errors';
import { writeFileAtomic } from '../fsutil';
import type { Plan } from '../experiment/plan';
import { clusterFolder, shellQuote, temperedCommand } from './common';

export interface SlurmOptions {
  partition?: string;
  gpusPerTask?: number;
  cpusPerTask?: number;
  /** At most this many tasks of an array at once (`--array=0-N%K`). */
  maxParallel?: number;
  /** A task's time limit, HH:MM:SS (or anything sbatch's --time takes, D-HH:MM:SS). */
  time?: string;
  /** How each task starts tempered (default: this Node and this package's bin/tempered.js). */
  tempered?: string;
  backend?: 'auto' | 'cpu' | 'cuda';
  /** A task whose run-piece was killed by a signal requeues itself at most this many times (default 3). */
  maxRequeues?: number;
}

export interface SlurmJob {
  /** A stage of the plan, or 'report'. */
  name: string;
  script: string;
  tasks: number;
  /** The jobs this one waits for (afterok). */
  after: string[];
}

export interface SlurmScripts {
  folder: string;
  jobs: SlurmJob[];
  submitScript: string;
}

const TIME = /^(\d+-)?\d{1,3}(:\d{2}){0,2}$/;

export function checkSlurmOptions(o: SlurmOptions): void {
  for (const [name, value] of [
    ['--gpus-per-task', o.gpusPerTask],
    ['--cpus-per-task', o.cpusPerTask],
    ['--max-parallel', o.maxParallel],
  ] as const)
    if (value !== undefined && (!Number.isInteger(value) || value < 1))
      throw new TemperedError('TEMPERED_OUT_OF_RANGE', `${name} must be a positive integer (got ${value})`);
  if (o.time !== undefined && !TIME.test(o.time))
    throw new TemperedError('TEMPERED_OUT_OF_RANGE', `--time must be HH:MM:SS, MM:SS or D-HH:MM:SS (got '${o.time}')`);
  if (o.partition !== undefined && !/^[A-Za-z0-9_.,-]+$/.test(o.partition))
    throw new TemperedError('TEMPERED_OUT_OF_RANGE', `--partition must be a partition name (got '${o.partition}')`);
}

function header(name: string, outLog: string, o: SlurmOptions, array?: string): string[] {
  const lines = [`#SBATCH --job-name=tempered-${name}`, `#SBATCH --output=${outLog}`, '#SBATCH --open-mode=append'];
  if (array) lines.push(`#SBATCH --array=${array}`);
  // A task lost with its node (or preempted) goes back into the queue instead of failing the chain.
  lines.push('#SBATCH --requeue', '#SBATCH --ntasks=1');
  if (o.partition) lines.push(`#SBATCH --partition=${o.partition}`);
  if (o.cpusPerTask) lines.push(`#SBATCH --cpus-per-task=${o.cpusPerTask}`);
  if (o.gpusPerTask) lines.push(`#SBATCH --gpus-per-task=${o.gpusPerTask}`);
  if (o.time) lines.push(`#SBATCH --time=${o.time}`);
  return lines;
}

/** The scripts of every stage and of the report, as file name -> text, and the jobs they make. */
export function slurmScripts(plan: Plan, dir: string, o: SlurmOptions = {}): { files: Map<string, string>; jobs: SlurmJob[] } {
  checkSlurmOptions(o);
  const out = path.resolve(dir);
  const folder = clusterFolder(out, 'slurm');
  const tempered = o.tempered ?? temperedCommand();
  const runtime = [o.backend ? `--backend ${o.backend}` : '', o.cpusPerTask ? `--threads ${o.cpusPerTask}` : ''].filter(Boolean).join(' ');
  const files = new Map<string, string>();
  const jobs: SlurmJob[] = [];
  plan.stages.forEach((stage, k) => {
    if (stage.pieces.length === 0) return;
    const script = `${String(k + 1).padStart(2, '0')}-${stage.name}.sbatch`;
    const last = stage.pieces.length - 1;
    const array = `0-${last}${o.maxParallel ? `%${o.maxParallel}` : ''}`;
    const text = [
      '#!/bin/bash',
      `# Stage '${stage.name}' of ${path.join(out, 'plan.json')}: ${stage.pieces.length} pieces, array task k runs piece k:`,
      ...stage.pieces.map((id, i) => `#   ${i}: ${id}`),
      `# Written by 'tempered slurm'; submitted after: ${stage.after.join(', ') || 'nothing'} (afterok).`,
      ...header(stage.name, path.join(folder, 'logs', `${stage.name}-%A_%a.out`), o, array),
      'set -uo pipefail',
      `${tempered} run-piece ${shellQuote(out)} --stage ${shellQuote(stage.name)} --index "$SLURM_ARRAY_TASK_ID" ${runtime}`.trimEnd(),
      'status=$?',
      // A run-piece killed by a signal (kill -9, the OOM killer) would fail the array, and a
      // failed afterok dependency is never satisfied again: requeue the task instead. The lock
      // it left is stale (dead pid) and the requeued task removes it.
      `if [ "$status" -gt 128 ] && [ "\${SLURM_RESTART_COUNT:-0}" -lt ${o.maxRequeues ?? 3} ]; then`,
      '  echo "tempered: run-piece ended by signal $((status - 128)); requeueing ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}" >&2',
      '  scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}" && sleep 300',
      'fi',
      'exit "$status"',
      '',
    ].join('\n');
    files.set(script, text);
    jobs.push({ name: stage.name, script, tasks: stage.pieces.length, after: stage.after });
  });
  const report = `${String(plan.stages.length + 1).padStart(2, '0')}-report.sbatch`;
  files.set(
    report,
    [
      '#!/bin/bash',
      `# After every stage of ${path.join(out, 'plan.json')}: results.json, results.md and report.html from the pieces.`,
      ...header('report', path.join(folder, 'logs', 'report-%j.out'), { ...o, gpusPerTask: undefined }),
      'set -euo pipefail',
      `exec ${tempered} report ${shellQuote(out)}`,
      '',
    ].join('\n'),
  );
  jobs.push({ name: 'report', script: report, tasks: 1, after: jobs.map((j) => j.name) });
  files.set('submit.sh', submitScript(folder, jobs));
  return { files, jobs };
}

/** The same chain as `tempered slurm --submit`, for a login node without tempered's Node. */
function submitScript(folder: string, jobs: SlurmJob[]): string {
  const variable = (name: string) => `job_${name.replace(/[^A-Za-z0-9]/g, '_')}`;
  return [
    '#!/bin/bash',
    "# Submits the stages in order, each after the ones it needs (afterok). Written by 'tempered slurm'.",
    'set -euo pipefail',
    `cd ${shellQuote(folder)}`,
    ...jobs.map((j) => {
      const dependency = j.after.length ? ` --dependency=afterok:${j.after.map((a) => `$${variable(a)}`).join(':')}` : '';
      return `${variable(j.name)}=$(sbatch --parsable${dependency} ${j.script} | cut -d';' -f1)\necho "${j.name}: job $${variable(j.name)}"`;
    }),
    '',
  ].join('\n');
}

export async function writeSlurmScripts(plan: Plan, dir: string, o: SlurmOptions = {}): Promise<SlurmScripts> {
  const { files, jobs } = slurmScripts(plan, dir, o);
  const folder = clusterFolder(path.resolve(dir), 'slurm');
  fs.mkdirSync(path.join(folder, 'logs'), { recursive: true });
  for (const [name, text] of files) {
    await writeFileAtomic(path.join(folder, name), text);
    fs.chmodSync(path.join(folder, name), 0o755);
  }
  return { folder, jobs, submitScript: path.join(folder, 'submit.sh') };
}

export interface SubmittedJob {
  name: string;
  jobId: string;
}

/** sbatch each job in order with --parsable, its afterok dependencies named by the job ids just returned. */
export function submitSlurm(scripts: SlurmScripts, sbatch = 'sbatch'): SubmittedJob[] {
  const ids = new Map<string, string>();
  const submitted: SubmittedJob[] = [];
  for (const job of scripts.jobs) {
    const args = ['--parsable'];
    if (job.after.length) args.push(`--dependency=afterok:${job.after.map((a) => ids.get(a)!).join(':')}`);
    args.push(path.join(scripts.folder, job.script));
    let reply: string;
    try {
      reply = execFileSync(sbatch, args, { encoding: 'utf8', cwd: scripts.folder, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      const e = err as Error & { stderr?: string };
      throw new TemperedError(
        'TEMPERED_IO',
        `sbatch ${args.join(' ')} failed${submitted.length ? ` (already submitted: ${submitted.map((s) => `${s.name} ${s.jobId}`).join(', ')})` : ''}: ${(e.stderr || e.message).trim()}`,
        { cause: err },
      );
    }
    // --parsable prints "jobid" or "jobid;cluster".
    const jobId = reply.trim().split(';')[0];
    if (!/^\d+$/.test(jobId)) throw new TemperedError('TEMPERED_IO', `sbatch answered '${reply.trim()}', not a job id`);
    ids.set(job.name, jobId);
    submitted.push({ name: job.name, jobId });
  }
  return submitted;
}
