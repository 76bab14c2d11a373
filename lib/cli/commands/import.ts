// tempered import: an ONNX model (a chain of Conv, Relu, MaxPool, Flatten, Gemm, ...) as a
// tempered model file, or a refusal naming the node that does not map onto a layer.
import { Command } from 'commander';
import { archName } from '../../arch';
import { ensureWritableFile } from '../../fsutil';
import { importOnnx } from '../../onnx/import';
import { output } from '../common';

interface ImportCliOptions {
  out: string;
  json?: boolean;
}

export function importCommand(): Command {
  return new Command('import')
    .description('convert an ONNX model of a sequential CNN (exported from PyTorch, say) into a tempered model file')
    .argument('<model.onnx>', 'the ONNX file')
    .requiredOption('--out <file>', 'where to save the model (.safetensors)')
    .option('--json', 'print a machine-readable result on stdout')
    .action(async (file: string, o: ImportCliOptions) => {
      await ensureWritableFile(o.out, '--out');
      const model = await importOnnx(file, { backend: 'cpu' });
      try {
        await model.save(o.out);
        const temperature = model.metadata.importedSoftmaxTemperature;
        const layers = model.arch.layers.map((l) =>
          l.type === 'conv' ? `conv${l.filters}` : l.type === 'dense' ? `dense${l.units}` : l.type,
        );
        const { channels, height, width } = model.arch.input;
        output(o, { file, out: o.out, arch: model.arch, archName: model.archName, metadata: model.metadata }, [
          `${file} -> ${o.out}: ${archName(model.arch) ?? 'custom network'}, input ${channels}x${height}x${width}, ${layers.join(' ')}`,
          ...(temperature !== undefined
            ? [`the graph ends in a softmax at temperature ${temperature} (kept in the metadata; the model gives logits)`]
            : []),
        ]);
      } finally {
        model.dispose();
      }
    });
}
