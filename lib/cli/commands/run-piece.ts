// tempered run-piece DIR [ID]: one piece of DIR/plan.json, as a Slurm array task or a
// Kubernetes Indexed Job pod runs it (--stage S --index I picks the I-th piece of stage S).
// The pieces it needs are read, never computed: a missing one is refused with TEMPERED_PLAN.
import { Command } from 'commander';
import { BackendChoice, setThreads } from '../../backends';
import { runPlannedPiece } from '../../experiment';
import { TemperedError } from '../../errors';
import { output, parseChoice, parseInteger } from '../common';

interface RunPieceCliOptions {
  stage?: string;
  index?: number;
  indexEnv?: string;
  backend: BackendChoice;
  threads?: number;
  json?: boolean;
  quiet?: boolean;
}

export function runPieceCommand(): Command {
  return new Command('run-piece')
    .description(
      "run one piece of DIR/plan.json (written by 'study --plan' or 'reproduce --plan'), reading the pieces it needs; locked, atomic, reused when done",
    )
    .argument('<dir>', 'the folder holding plan.json')
    .argument('[id]', "the piece's id, e.g. train/T1-s0-stdT (or give --stage and --index)")
    .option('--stage <name>', "with --index: the stage's piece at that index (an array task's index)")
    .option(
      '--index <k>',
      "with --stage: 0-based index in the stage's pieces (SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX)",
      parseInteger('--index', 0),
    )
    .option('--index-env <name>', 'with --stage: read the index from this environment variable (e.g. JOB_COMPLETION_INDEX)')
    .option('--backend <name>', 'compute backend: auto, cpu or cuda', parseChoice('--backend', ['auto', 'cpu', 'cuda'] as const), 'auto')
    .option('--threads <n>', 'CPU threads (default: all cores)', parseInteger('--threads', 1))
    .option('--json', 'print a machine-readable result on stdout')
    .option('--quiet', 'no progress output')
    .action(async (dir: string, id: string | undefined, o: RunPieceCliOptions) => {
      if (o.indexEnv !== undefined) {
        const value = process.env[o.indexEnv] ?? '';
        if (!/^\d+$/.test(value))
          throw new TemperedError('TEMPERED_PLAN', `--index-env ${o.indexEnv}: the variable holds '${value}', not an index`);
        o.index = Number(value);
      }
      const byStage = o.stage !== undefined && o.index !== undefined;
      const partlyByStage = (o.stage !== undefined) !== (o.index !== undefined);
      if (partlyByStage || (id !== undefined) === byStage)
        throw new TemperedError('TEMPERED_PLAN', 'give either a piece id or both --stage and --index');
      if (o.threads !== undefined) setThreads(o.threads);
      const started = Date.now();
      const outcome = await runPlannedPiece(dir, id !== undefined ? { id } : { stage: o.stage, index: o.index }, {
        backend: o.backend,
        onEvent: (e) => {
          if (!o.quiet && e.done === undefined) process.stderr.write(`[${e.stage}] ${e.message}\n`);
        },
      });
      const seconds = (Date.now() - started) / 1000;
      output(o, { ...outcome, seconds }, [
        `${outcome.id}: ${outcome.status}${outcome.reason ? ` (${outcome.reason})` : ''}, ${outcome.file}, ${seconds.toFixed(1)} s`,
      ]);
    });
}
