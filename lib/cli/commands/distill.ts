// tempered distill: a student trained at T on a teacher's soft labels.
import * as fs from 'fs';
import { Command } from 'commander';
import { distill } from '../../distill';
import { Model } from '../../model';
import { describeBackend } from '../../backends';
import { createProgress, formatSeconds } from '../progress';
import { addRuntimeOptions, loadData, output, parseInteger, parseNumber, percent, RuntimeOptions, setUpRuntime } from '../common';

interface DistillCliOptions extends RuntimeOptions {
  teacher: string;
  out: string;
  temperature: number;
  epochs: number;
  seed: number;
  batchSize: number;
  learningRate: number;
  momentum: number;
  lossScale: number;
  l2: number;
  dropout: number;
  trainLimit?: number;
  restart?: boolean;
}

export function distillCommand(): Command {
  const cmd = new Command('distill')
    .description("train a student at temperature T on a teacher's soft labels softmax(z / T) (defensive distillation)")
    .requiredOption('--teacher <file>', 'the teacher model (.safetensors)')
    .requiredOption('--out <file>', 'where to save the student (.safetensors)')
    .option('--temperature <T>', 'temperature of the soft labels and of the student\'s loss', parseNumber('--temperature'), 20)
    .option('--epochs <n>', 'passes over the training set', parseInteger('--epochs', 1), 50)
    .option('--seed <n>', 'seed of the student\'s weights, shuffling and dropout', parseInteger('--seed', 0), 0)
    .option('--batch-size <n>', 'samples per SGD step', parseInteger('--batch-size', 1), 128)
    .option('--learning-rate <x>', 'SGD learning rate (the paper: 0.05 for the student)', parseNumber('--learning-rate'), 0.05)
    .option('--momentum <x>', 'Nesterov momentum', parseNumber('--momentum'), 0.5)
    .option('--loss-scale <x>', 'multiply the loss gradient (e.g. by T)', parseNumber('--loss-scale'), 1)
    .option('--l2 <x>', 'L2 penalty on the output layer\'s weights', parseNumber('--l2'), 0.01)
    .option('--dropout <p>', 'dropout rate', parseNumber('--dropout'), 0.5)
    .option('--train-limit <n>', 'train on the first N training images only', parseInteger('--train-limit', 1))
    .option('--restart', 'ignore an interrupted run\'s checkpoint and start afresh');
  addRuntimeOptions(cmd);
  return cmd.action(async (o: DistillCliOptions) => {
    const { backend } = setUpRuntime(o);
    const teacher = await Model.load(o.teacher, { backend });
    const data = await loadData(o);
    const checkpoint = `${o.out}.checkpoint`;
    if (o.restart && fs.existsSync(checkpoint)) fs.unlinkSync(checkpoint);
    const progress = createProgress({ quiet: o.quiet, label: 'distill' });
    const { student, result } = await distill(teacher, data, {
      temperature: o.temperature,
      epochs: o.epochs,
      seed: o.seed,
      batchSize: o.batchSize,
      learningRate: o.learningRate,
      momentum: o.momentum,
      lossScale: o.lossScale,
      l2: o.l2,
      dropout: o.dropout,
      trainLimit: o.trainLimit,
      checkpoint,
      teacherFile: o.teacher,
      backend,
      onProgress: (p) =>
        progress.update((p.epoch - 1) * p.batches + p.batch, p.epochs * p.batches,
          `epoch ${p.epoch}/${p.epochs} loss ${p.loss.toFixed(4)} ${p.samplesPerSecond.toFixed(0)} samples/s ETA ${formatSeconds(p.etaSeconds)}`),
      onEpoch: (e) => progress.log(`epoch ${e.epoch}: loss ${e.trainLoss.toFixed(4)}, validation ${percent(e.validationAccuracy)}`),
    });
    progress.stop();
    const test = await student.evaluate(data.test, { temperature: 1 });
    student.metadata.result = { ...(student.metadata.result ?? {}), testAccuracy: test.accuracy, testLoss: test.meanLoss };
    await student.save(o.out);
    if (fs.existsSync(checkpoint)) fs.unlinkSync(checkpoint);
    output(o, { model: o.out, teacher: o.teacher, config: result.config, history: result.history, testAccuracy: test.accuracy, ...describeBackend(backend) },
      [`saved ${o.out} (student of ${o.teacher} at T=${o.temperature}); test accuracy ${percent(test.accuracy)}`]);
  });
}
