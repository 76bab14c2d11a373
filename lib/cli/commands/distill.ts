// tempered distill: a student trained at T on a teacher's soft labels.
import * as fs from 'fs';
import { Command } from 'commander';
import { ensureWritableFile } from '../../fsutil';
import { sayWhereItResumes } from './train';
import { distill } from '../../distill';
import { Model } from '../../model';
import { describeBackend } from '../../backends';
import { createProgress, formatSeconds } from '../progress';
import {
  addRuntimeOptions,
  addTrainingOptions,
  loadData,
  output,
  percent,
  RuntimeOptions,
  setUpRuntime,
  TrainingCliOptions,
} from '../common';

interface DistillCliOptions extends RuntimeOptions, TrainingCliOptions {
  teacher: string;
  out: string;
}

export function distillCommand(): Command {
  const cmd = new Command('distill')
    .description("train a student at temperature T on a teacher's soft labels softmax(z / T) (defensive distillation)")
    .requiredOption('--teacher <file>', 'the teacher model (.safetensors)')
    .requiredOption('--out <file>', 'where to save the student (.safetensors)');
  // The paper's student: T = 20, learning rate 0.05.
  addTrainingOptions(cmd, { temperature: 20, learningRate: 0.05 }, "temperature of the soft labels and of the student's loss");
  addRuntimeOptions(cmd);
  return cmd.action(async (o: DistillCliOptions) => {
    const { backend } = setUpRuntime(o);
    const { created } = await ensureWritableFile(o.out, '--out'); // before training, not after the first epoch
    if (created) process.stderr.write(`created the folder ${created} for --out\n`);
    const teacher = await Model.load(o.teacher, { backend });
    const data = await loadData(o);
    const checkpoint = `${o.out}.checkpoint`;
    if (o.restart && fs.existsSync(checkpoint)) fs.unlinkSync(checkpoint);
    const interrupt = sayWhereItResumes(checkpoint, o.epochs);
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
        progress.update(
          (p.epoch - 1) * p.batches + p.batch,
          p.epochs * p.batches,
          `epoch ${p.epoch}/${p.epochs} loss ${p.loss.toFixed(4)} ${p.samplesPerSecond.toFixed(0)} samples/s ETA ${formatSeconds(p.etaSeconds)}`,
        ),
      onEpoch: (e) => {
        interrupt.epochDone(e.epoch);
        progress.log(`epoch ${e.epoch}: loss ${e.trainLoss.toFixed(4)}, validation ${percent(e.validationAccuracy)}`);
      },
    }).finally(() => interrupt.remove());
    progress.stop();
    const test = await student.evaluate(data.test, { temperature: 1 });
    student.metadata.result = { ...(student.metadata.result ?? {}), testAccuracy: test.accuracy, testLoss: test.meanLoss };
    await student.save(o.out);
    if (fs.existsSync(checkpoint)) fs.unlinkSync(checkpoint);
    output(
      o,
      {
        model: o.out,
        teacher: o.teacher,
        config: result.config,
        history: result.history,
        testAccuracy: test.accuracy,
        ...describeBackend(backend),
      },
      [`saved ${o.out} (student of ${o.teacher} at T=${o.temperature}); test accuracy ${percent(test.accuracy)}`],
    );
  });
}
