// The `tempered` command line.
import { Command, CommanderError } from 'commander';
import { exitStatus } from '../errors';
import { native } from '../native';
import { attackCommand } from './commands/attack';
import { distillCommand } from './commands/distill';
import { evalCommand } from './commands/eval';
import { gradientsCommand } from './commands/gradients';
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
  program.addCommand(reproduceCommand());
  program.addCommand(studyCommand());
  program.addCommand(reportCommand());
  program.addCommand(runPieceCommand());
  program.addCommand(slurmCommand());
  program.addCommand(k8sCommand());
  program.addCommand(infoCommand());
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  program.exitOverride();
  program.configureOutput({ writeErr: (s) => process.stderr.write(s) });
  for (const c of program.commands) c.exitOverride();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here too, with exit code 0.
      return err.exitCode === 0 ? 0 : 2;
    }
    const e = err as Error & { code?: string };
    process.stderr.write(`tempered: error${e.code ? ` [${e.code}]` : ''}: ${e.message}\n`);
    return exitStatus(e);
  }
}
