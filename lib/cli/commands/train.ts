// tempered train: one model at one temperature, resumable, with a live progress line.
import * as fs from 'fs';
import { Command } from 'commander';
import { ensureWritableFile } from '../../fsutil';
import { DEFAULT_ARCH, NAMED_ARCHS, resolveArch } from '../../arch';
import { Model } from '../../model';
import { train } from '../../train';
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

interface TrainCliOptions extends RuntimeOptions, TrainingCliOptions {
  out: string;
  arch: string;
}

export function trainCommand(): Command {
  const cmd = new Command('train')
    .description("train a CNN (the paper's by default) at a softmax temperature and save it as safetensors")
    .requiredOption('--out <file>', 'where to save the model (.safetensors)')
    .option('--arch <name|file.json>', `the network: ${Object.keys(NAMED_ARCHS).join(', ')} or a spec file`, DEFAULT_ARCH);
  addTrainingOptions(cmd);
  addRuntimeOptions(cmd);
  return cmd.action(async (o: TrainCliOptions) => {
    const { backend } = setUpRuntime(o);
    const arch = resolveArch(o.arch); // a bad spec is refused before anything is loaded
    const { created } = await ensureWritableFile(o.out, '--out'); // before training, not after the first epoch
    if (created) process.stderr.write(`created the folder ${created} for --out\n`);
    const data = await loadData(o);
    const checkpoint = `${o.out}.checkpoint`;
    if (o.restart && fs.existsSync(checkpoint)) fs.unlinkSync(checkpoint);
    const interrupt = sayWhereItResumes(checkpoint, o.epochs);
    const model = Model.create({ seed: o.seed, backend, arch });
    const progress = createProgress({ quiet: o.quiet, label: 'train' });
    const started = Date.now();
    const result = await train(model, data, {
      epochs: o.epochs,
      batchSize: o.batchSize,
      learningRate: o.learningRate,
      momentum: o.momentum,
      temperature: o.temperature,
      lossScale: o.lossScale,
      l2: o.l2,
      dropout: o.dropout,
      seed: o.seed,
      trainLimit: o.trainLimit,
      checkpoint,
      onProgress: (p) =>
        progress.update(
          (p.epoch - 1) * p.batches + p.batch,
          p.epochs * p.batches,
          `epoch ${p.epoch}/${p.epochs} batch ${p.batch}/${p.batches} loss ${p.loss.toFixed(4)} ` +
            `${p.samplesPerSecond.toFixed(0)} samples/s ETA ${formatSeconds(p.etaSeconds)}`,
        ),
      onEpoch: (e) => {
        interrupt.epochDone(e.epoch);
        progress.log(
          `epoch ${e.epoch}: loss ${e.trainLoss.toFixed(4)}, train ${percent(e.trainAccuracy)}, ` +
            `validation ${percent(e.validationAccuracy)} (${e.seconds.toFixed(1)} s, ${e.samplesPerSecond.toFixed(0)} samples/s)`,
        );
      },
    }).finally(() => interrupt.remove());
    progress.stop();
    if (result.resumedEpochs > 0) progress.log(`resumed after epoch ${result.resumedEpochs} from ${checkpoint}`);
    const test = await model.evaluate(data.test, { temperature: 1 });
    model.metadata.result = { ...(model.metadata.result ?? {}), testAccuracy: test.accuracy, testLoss: test.meanLoss };
    await model.save(o.out);
    if (fs.existsSync(checkpoint)) fs.unlinkSync(checkpoint);
    const last = result.history[result.history.length - 1];
    output(
      o,
      {
        model: o.out,
        config: result.config,
        history: result.history,
        validationAccuracy: last?.validationAccuracy,
        testAccuracy: test.accuracy,
        testLoss: test.meanLoss,
        seconds: (Date.now() - started) / 1000,
        resumedEpochs: result.resumedEpochs,
        ...describeBackend(backend),
        data: model.metadata.data,
      },
      [
        `saved ${o.out}`,
        `validation accuracy ${percent(last?.validationAccuracy)} after ${result.history.length} epochs; ` +
          `test accuracy ${percent(test.accuracy)} (mean loss at T=1: ${test.meanLoss.toFixed(4)})`,
      ],
    );
  });
}

/**
 * While training runs, Ctrl-C (SIGINT) says where a rerun resumes, then exits with 130: the
 * checkpoint is written atomically after every epoch, so stopping at any moment is safe.
 */
export function sayWhereItResumes(checkpoint: string, epochs: number): { epochDone(epoch: number): void; remove(): void } {
  let done: number | undefined;
  const onSigint = () => {
    const where =
      done !== undefined
        ? `after epoch ${done} of ${epochs}, from ${checkpoint}`
        : fs.existsSync(checkpoint)
          ? `from ${checkpoint} (written by an earlier run; no epoch of this one finished)`
          : undefined;
    process.stderr.write(
      where
        ? `\ninterrupted: rerun the same command to resume ${where} (--restart discards it)\n`
        : `\ninterrupted before the first epoch finished: nothing to resume, a rerun starts afresh\n`,
    );
    process.exit(130);
  };
  process.on('SIGINT', onSigint);
  return { epochDone: (epoch) => (done = epoch), remove: () => process.off('SIGINT', onSigint) };
}
