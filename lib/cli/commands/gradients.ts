// tempered gradients: how large dL/dx is, per evaluation temperature and precision.
import { Command } from 'commander';
import { describeBackend } from '../../backends';
import { gradientStats } from '../../gradients';
import { Model } from '../../model';
import { sampleWithoutReplacement } from '../../rng';
import {
  addRuntimeOptions,
  loadData,
  output,
  parseChoice,
  parseInteger,
  parseNumber,
  percent,
  RuntimeOptions,
  setUpRuntime,
} from '../common';

interface GradientsCliOptions extends RuntimeOptions {
  model: string;
  samples: number;
  seed: number;
  temperatures: number[];
  loss: 'xent' | 'margin';
}

export function gradientsCommand(): Command {
  const cmd = new Command('gradients')
    .description('statistics of the input gradient dL/dx in float32 and float64 at several evaluation temperatures')
    .requiredOption('--model <file>', 'model file (.safetensors)')
    .option('--samples <n>', 'test samples drawn with --seed', parseInteger('--samples', 1), 100)
    .option('--seed <n>', 'seed of the sample draw', parseInteger('--seed', 0), 0)
    .option(
      '--temperatures <list>',
      'comma-separated evaluation temperatures',
      (v: string) => v.split(',').map((x) => parseNumber('--temperatures')(x.trim())),
      [1, 20],
    )
    .option('--loss <name>', "'xent' or 'margin'", parseChoice('--loss', ['xent', 'margin'] as const), 'xent');
  addRuntimeOptions(cmd);
  return cmd.action(async (o: GradientsCliOptions) => {
    const { backend } = setUpRuntime(o);
    const model = await Model.load(o.model, { backend });
    const data = await loadData(o);
    const indices = sampleWithoutReplacement(data.test.count, Math.min(o.samples, data.test.count), o.seed, 7);
    const rows = await gradientStats(model, data.test, { indices, temperatures: o.temperatures, loss: o.loss });
    output(o, { model: o.model, seed: o.seed, samples: indices.length, ...describeBackend(backend), rows }, [
      `${o.model}: dL/dx of the ${o.loss} loss on ${indices.length} test samples`,
      'T      precision  mean|g|    max|g|     all-zero samples',
      ...rows.map(
        (r) =>
          `${String(r.temperature).padEnd(6)} ${r.precision.padEnd(10)} ${r.meanAbs.toExponential(2).padEnd(10)} ${r.maxAbs.toExponential(2).padEnd(10)} ` +
          `${r.zeroSamples} (${percent(r.zeroFraction)})`,
      ),
    ]);
  });
}
