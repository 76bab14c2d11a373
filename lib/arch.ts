// The architecture as data: a sequential spec (input shape, then layers), the named specs
// the project ships, and specs read from JSON files. The engine checks every spec
// (native/include/tempered/arch.h, plan_arch) and lays out its parameters; this file holds
// no second copy of those rules, only the type and the names.
import * as fs from 'fs';
import type { NativeArchPlan, NativeArchSpec, NativeLayerSpec } from '../binding';
import { TemperedError } from './errors';
import { native } from './native';

/** One layer: conv (kernel 3 or 5, stride 1, padding 'valid' (default) or 'same'), relu, 2x2 max
 * pooling, dropout (the share dropped in training), flatten (PyTorch's C,H,W order) or
 * dense. The last layer is dense: its units are the classes. */
export type LayerSpec = NativeLayerSpec;

/** A sequential network: the input (channels 1 or 3, height and width up to 64), then its layers. */
export type ArchSpec = NativeArchSpec;

/** The checked plan of a spec: input shape [h, w, c], classes, parameter tensors, run-time steps. */
export type ArchPlan = NativeArchPlan;

const conv = (filters: number, padding: 'valid' | 'same' = 'valid'): LayerSpec =>
  padding === 'valid' ? { type: 'conv', filters, kernel: 3 } : { type: 'conv', filters, kernel: 3, padding };
const relu: LayerSpec = { type: 'relu' };
const pool: LayerSpec = { type: 'maxpool' };
const flatten: LayerSpec = { type: 'flatten' };
const dense = (units: number): LayerSpec => ({ type: 'dense', units });
const dropout = (rate: number): LayerSpec => ({ type: 'dropout', rate });

/** The specs the project names. */
// prettier-ignore
export const NAMED_ARCHS = {
  /** Song (2017), Table 1: the paper's MNIST network (a model file without a spec is this one). */
  'paper-mnist': {
    input: { channels: 1, height: 28, width: 28 },
    layers: [
      conv(32), relu, conv(32), relu, pool,
      conv(64), relu, conv(64), relu, pool,
      flatten, dropout(0.5), dense(200), relu, dropout(0.5), dense(200), relu, dropout(0.5), dense(10),
    ],
  },
  /** Carlini & Wagner (2017), their MNIST network: 32-32-pool-64-64-pool-fc200-fc200-fc10 (dropout 0.5 before the dense layers, as their training code). */
  'cw-mnist': {
    input: { channels: 1, height: 28, width: 28 },
    layers: [
      conv(32), relu, conv(32), relu, pool,
      conv(64), relu, conv(64), relu, pool,
      flatten, dense(200), relu, dropout(0.5), dense(200), relu, dense(10),
    ],
  },
  /** Carlini & Wagner (2017), their CIFAR-10 network: 64-64-pool-128-128-pool-fc256-fc256-fc10 on 3x32x32. */
  'cw-cifar': {
    input: { channels: 3, height: 32, width: 32 },
    layers: [
      conv(64), relu, conv(64), relu, pool,
      conv(128), relu, conv(128), relu, pool,
      flatten, dense(256), relu, dropout(0.5), dense(256), relu, dense(10),
    ],
  },
} satisfies Record<string, ArchSpec>;

export type ArchName = keyof typeof NAMED_ARCHS;
export const DEFAULT_ARCH: ArchName = 'paper-mnist';

export function isArchName(x: string): x is ArchName {
  return Object.prototype.hasOwnProperty.call(NAMED_ARCHS, x);
}

/** A deep copy of a named spec. */
export function namedArch(name: ArchName): ArchSpec {
  return JSON.parse(JSON.stringify(NAMED_ARCHS[name])) as ArchSpec;
}

/** The checked plan of `spec`; throws TEMPERED_BAD_ARCH naming the bad layer. */
export function planArch(spec: ArchSpec): ArchPlan {
  return native.planArch(spec);
}

/** A spec as plain JSON data (what the model file stores), checked by the engine. */
export function checkArch(spec: unknown, where = 'the architecture'): ArchSpec {
  try {
    native.planArch(spec as ArchSpec);
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.code === 'TEMPERED_BAD_ARCH') throw new TemperedError('TEMPERED_BAD_ARCH', `${where}: ${e.message}`);
    throw err;
  }
  return JSON.parse(JSON.stringify(spec)) as ArchSpec;
}

/** Largest spec file read (a spec is a few hundred bytes; this refuses a wrong file early). */
const MAX_SPEC_BYTES = 1 << 20;

/** A named spec ('paper-mnist', 'cw-mnist', 'cw-cifar') or a JSON file holding one. */
export function resolveArch(nameOrFile: string): ArchSpec {
  if (isArchName(nameOrFile)) return namedArch(nameOrFile);
  if (!nameOrFile.endsWith('.json'))
    throw new TemperedError(
      'TEMPERED_BAD_ARCH',
      `unknown architecture '${nameOrFile}': give ${Object.keys(NAMED_ARCHS).join(', ')} or a .json file`,
    );
  let text: string;
  try {
    const st = fs.statSync(nameOrFile);
    if (!st.isFile()) throw new TemperedError('TEMPERED_BAD_ARCH', `${nameOrFile}: not a regular file`);
    if (st.size > MAX_SPEC_BYTES) throw new TemperedError('TEMPERED_BAD_ARCH', `${nameOrFile}: larger than 1 MiB, not a spec`);
    text = fs.readFileSync(nameOrFile, 'utf8');
  } catch (err) {
    if (err instanceof TemperedError) throw err;
    throw new TemperedError('TEMPERED_BAD_ARCH', `${nameOrFile}: cannot read it (${(err as Error).message})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new TemperedError('TEMPERED_BAD_ARCH', `${nameOrFile}: not valid JSON`);
  }
  return checkArch(parsed, nameOrFile);
}

/** Whether two specs describe the same network (JSON equality of their canonical forms). */
export function sameArch(a: ArchSpec, b: ArchSpec): boolean {
  return canonicalArch(a) === canonicalArch(b);
}

/** The spec's canonical JSON (keys in a fixed order, defaults filled in). */
export function canonicalArch(spec: ArchSpec): string {
  const layers = spec.layers.map((l) => {
    switch (l.type) {
      case 'conv':
        return { type: 'conv', filters: l.filters, kernel: l.kernel ?? 3, padding: l.padding ?? 'valid' };
      case 'dropout':
        return { type: 'dropout', rate: l.rate };
      case 'dense':
        return { type: 'dense', units: l.units };
      default:
        return { type: l.type };
    }
  });
  const { channels, height, width } = spec.input;
  return JSON.stringify({ input: { channels, height, width }, layers });
}

/** Values per image (height x width x channels) and positions (height x width) of a spec. */
export function archSizes(spec: ArchSpec): { inputSize: number; positions: number; classes: number } {
  const { channels, height, width } = spec.input;
  const last = spec.layers[spec.layers.length - 1];
  return { inputSize: channels * height * width, positions: height * width, classes: last && last.type === 'dense' ? last.units : 0 };
}

/** The name of a spec when it is one of NAMED_ARCHS, else undefined. */
export function archName(spec: ArchSpec): ArchName | undefined {
  const c = canonicalArch(spec);
  return (Object.keys(NAMED_ARCHS) as ArchName[]).find((n) => canonicalArch(NAMED_ARCHS[n]) === c);
}
