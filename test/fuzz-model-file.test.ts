// Property-based fuzzing (fast-check) of the version-2 model reader: a valid file's spec
// (__metadata__.arch) and tensors, then damaged ones (the spec's JSON rewritten, cut, made
// huge or nonsensical; tensors dropped, renamed, reshaped; the format version changed).
// Each case must load a model of the declared spec or give a coded error
// (TEMPERED_BAD_FILE, TEMPERED_INCOMPATIBLE); anything else fails the run.
import fc from 'fast-check';
import { type ArchSpec, canonicalArch, planArch } from '../lib/arch';
import { TemperedError } from '../lib/errors';
import { Model } from '../lib/model';
import type { DecodedTensor } from '../lib/safetensors';

const SEED = Number(process.env.TEMPERED_FUZZ_SEED ?? 20261202);
const RUNS = Number(process.env.TEMPERED_FUZZ_RUNS ?? 10_000);

const SPEC: ArchSpec = {
  input: { channels: 3, height: 6, width: 6 },
  layers: [
    { type: 'conv', filters: 2, padding: 'same' },
    { type: 'relu' },
    { type: 'maxpool' },
    { type: 'flatten' },
    { type: 'dense', units: 3 },
  ],
};

function validContents(spec: ArchSpec): { tensors: Map<string, DecodedTensor>; metadata: Record<string, string> } {
  const plan = planArch(spec);
  const tensors = new Map<string, DecodedTensor>();
  for (const p of plan.parameters) {
    const data = new Float32Array(p.size);
    for (let i = 0; i < p.size; i++) data[i] = ((i * 7) % 11) / 20 - 0.25;
    tensors.set(p.name, { shape: [...p.shape], data, dtype: 'F32' });
  }
  return { tensors, metadata: { format: 'tempered-model', format_version: '2', arch: canonicalArch(spec) } };
}

type Change =
  | { kind: 'none' }
  | { kind: 'arch-json'; value: unknown }
  | { kind: 'arch-text'; text: string }
  | { kind: 'arch-cut'; at: number }
  | { kind: 'layer'; at: number; value: unknown }
  | { kind: 'drop-arch'; version: string }
  | { kind: 'drop-tensor'; at: number }
  | { kind: 'rename-tensor'; at: number; name: string }
  | { kind: 'reshape-tensor'; at: number; shape: number[] }
  | { kind: 'input'; value: unknown };

const change: fc.Arbitrary<Change> = fc.oneof(
  fc.constant({ kind: 'none' as const }),
  fc.record({ kind: fc.constant('arch-json' as const), value: fc.jsonValue() }),
  fc.record({ kind: fc.constant('arch-text' as const), text: fc.string({ maxLength: 40 }) }),
  fc.record({ kind: fc.constant('arch-cut' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('layer' as const),
    at: fc.nat(),
    value: fc.oneof(
      fc.jsonValue(),
      fc.record({
        type: fc.constantFrom('conv', 'dense', 'dropout', 'maxpool'),
        filters: fc.integer({ min: -3, max: 1e9 }),
        units: fc.integer({ min: -3, max: 1e9 }),
        rate: fc.double(),
      }),
    ),
  }),
  fc.record({ kind: fc.constant('drop-arch' as const), version: fc.constantFrom('1', '2', '3', 'x') }),
  fc.record({ kind: fc.constant('drop-tensor' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('rename-tensor' as const), at: fc.nat(), name: fc.string({ maxLength: 12 }) }),
  fc.record({
    kind: fc.constant('reshape-tensor' as const),
    at: fc.nat(),
    shape: fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 4 }),
  }),
  fc.record({
    kind: fc.constant('input' as const),
    value: fc.oneof(
      fc.jsonValue(),
      fc.record({
        channels: fc.integer({ min: -1, max: 5 }),
        height: fc.integer({ min: -1, max: 100000 }),
        width: fc.integer({ min: -1, max: 70 }),
      }),
    ),
  }),
);

function applyChange(c: Change): { tensors: Map<string, DecodedTensor>; metadata: Record<string, string> } {
  const { tensors, metadata } = validContents(SPEC);
  const spec = JSON.parse(metadata.arch) as { input: unknown; layers: unknown[] };
  const names = [...tensors.keys()];
  switch (c.kind) {
    case 'arch-json':
      metadata.arch = JSON.stringify(c.value);
      break;
    case 'arch-text':
      metadata.arch = c.text;
      break;
    case 'arch-cut':
      metadata.arch = metadata.arch.slice(0, c.at % metadata.arch.length);
      break;
    case 'layer':
      spec.layers[c.at % spec.layers.length] = c.value;
      metadata.arch = JSON.stringify(spec);
      break;
    case 'input':
      spec.input = c.value;
      metadata.arch = JSON.stringify(spec);
      break;
    case 'drop-arch':
      delete metadata.arch;
      metadata.format_version = c.version;
      break;
    case 'drop-tensor':
      tensors.delete(names[c.at % names.length]);
      break;
    case 'rename-tensor': {
      const name = names[c.at % names.length];
      const t = tensors.get(name)!;
      tensors.delete(name);
      tensors.set(c.name, t);
      break;
    }
    case 'reshape-tensor': {
      const name = names[c.at % names.length];
      tensors.set(name, { ...tensors.get(name)!, shape: c.shape });
      break;
    }
  }
  return { tensors, metadata };
}

test(`fuzz: ${RUNS} damaged version-2 model files load as their spec or give a coded error`, async () => {
  let loaded = 0;
  await fc.assert(
    fc.asyncProperty(change, async (c) => {
      const contents = applyChange(c);
      let m: Model;
      try {
        m = await Model.fromContents(contents, 'fuzz.safetensors', { backend: 'cpu' });
      } catch (err) {
        if (!(err instanceof TemperedError) || !['TEMPERED_BAD_FILE', 'TEMPERED_INCOMPATIBLE'].includes(err.code))
          throw new Error(`expected a coded error, got ${String((err as Error)?.stack ?? err)}`);
        return;
      }
      loaded++;
      // What loaded is the spec the file declared, with its tensors.
      const declared = contents.metadata.arch ? JSON.parse(contents.metadata.arch) : undefined;
      if (declared) expect(canonicalArch(m.arch)).toBe(canonicalArch(declared as ArchSpec));
      expect(m.getParameters().length).toBe(m.plan.totalParameters);
      m.dispose();
    }),
    { seed: SEED, numRuns: RUNS },
  );
  expect(loaded).toBeGreaterThan(0); // the valid file (and harmless changes) did load
}, 600_000);
