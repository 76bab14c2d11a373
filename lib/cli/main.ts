// The `tempered` command line.
import { Command, CommanderError } from 'commander';
import { exitStatus } from '../errors';
import { native } from '../native';
import { attackCommand } from './commands/attack';
import { diagnoseCommand } from './commands/diagnose';
import { distillCommand } from './commands/distill';
import { evalCommand } from './commands/eval';
import { gradientsCommand } from './commands/gradients';
import { importCommand } from './commands/import';
import { infoCommand } from './commands/info';
import { reportCommand } from './commands/report';
import { reproduceCommand } from './commands/reproduce';
import { runPieceCommand } from './commands/run-piece';
import { slurmCommand } from './commands/slurm';
import { k8sCommand } from './commands/k8s';
import { studyCommand } from './commands/study';
import { trainCommand } from './commands/train';

export function buildProgram(): Command {
  const program = new Command('tempered')
    .description('Train the MNIST CNN of Song (2017) at any softmax temperature, distil it, attack it, measure its robustness.')
    .version(native.version());
  program.addCommand(trainCommand());
  program.addCommand(evalCommand());
  program.addCommand(distillCommand());
  program.addCommand(attackCommand());
  program.addCommand(gradientsCommand());
  program.addCommand(diagnoseCommand());
  program.addCommand(reproduceCommand());
  program.addCommand(studyCommand());
  program.addCommand(reportCommand());
  program.addCommand(importCommand());
  program.addCommand(runPieceCommand());
  program.addCommand(slurmCommand());
  program.addCommand(k8sCommand());
  program.addCommand(infoCommand());
  return program;
}

export async function main(argv: string[]): Promise<number> {
  // With --json a script reads stdout: an error goes there too, as one JSON object (and to stderr in words).
  const json = argv.slice(2).includes('--json');
  try {
    const program = buildProgram(); // reads the addon's version: an addon never built is refused here, with its code
    program.exitOverride();
    program.configureOutput({ writeErr: (s) => process.stderr.write(s) });
    for (const c of program.commands) c.exitOverride();
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here too, with exit code 0; commander has already said what was wrong.
      if (err.exitCode === 0) return 0;
      if (json) writeJsonError('TEMPERED_INVALID_ARGUMENT', err.message.replace(/^error: /, ''));
      return 2;
    }
    const e = err as Error & { code?: string };
    process.stderr.write(`tempered: error${e.code ? ` [${e.code}]` : ''}: ${e.message}\n`);
    if (json) writeJsonError(e.code ?? 'TEMPERED_INTERNAL', e.message);
    return exitStatus(e);
  }
}

function writeJsonError(code: string, message: string): void {
  process.stdout.write(JSON.stringify({ error: { code, message } }, null, 2) + '\n');
}
