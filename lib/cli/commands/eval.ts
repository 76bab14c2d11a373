// tempered eval: test accuracy and mean loss of a saved model at an evaluation temperature.
import { Command } from 'commander';
import { Model } from '../../model';
import { describeBackend } from '../../backends';
import { addRuntimeOptions, loadData, output, parseNumber, percent, RuntimeOptions, setUpRuntime } from '../common';

interface EvalCliOptions extends RuntimeOptions {
  model: string;
  temperature: number;
}

export function evalCommand(): Command {
  const cmd = new Command('eval')
    .description('test accuracy and mean cross-entropy of a model at an evaluation temperature')
    .requiredOption('--model <file>', 'model file (.safetensors)')
    .option('--temperature <T>', 'evaluation temperature of the softmax', parseNumber('--temperature'), 1);
  addRuntimeOptions(cmd);
  return cmd.action(async (o: EvalCliOptions) => {
    const { backend } = setUpRuntime(o);
    const model = await Model.load(o.model, { backend });
    const data = await loadData(o);
    const r = await model.evaluate(data.test, { temperature: o.temperature });
    output(
      o,
      { model: o.model, split: 'test', ...r, ...describeBackend(backend), dataFingerprint: data.fingerprint, metadata: model.metadata },
      [
        `${o.model}: test accuracy ${percent(r.accuracy)} (${r.correct}/${r.count}), mean loss at T=${o.temperature}: ${r.meanLoss.toFixed(6)}`,
      ],
    );
  });
}
