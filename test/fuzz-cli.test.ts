// Property-based fuzzing of the command line through main(argv), in this process (a process
// per case would take an hour): every command with options drawn from valid and hostile values
// (numbers out of range, special files, folders where files belong, missing and unwritable
// paths). Each case must end with exit status 0 (help, version, info), or a usage error
// (status 2), or a coded TEMPERED_ error; and it must write nothing outside its output paths.
// The data sets it may name all fail fast, so no case trains; one separate case trains for
// real on 32 images and checks the result.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import fc from 'fast-check';
import { getThreads, setThreads } from '../lib/backends';
import { main } from '../lib/cli/main';
import { Model } from '../lib/model';

const SEED = Number(process.env.TEMPERED_FUZZ_SEED ?? 20240917);
const RUNS = Number(process.env.TEMPERED_FUZZ_CLI_RUNS ?? 10_000);
const PIXELS = 28 * 28;

// Fixtures, read only to the cases; made now because the grammar below names its paths.
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tempered-fuzz-cli-'));
let cwd: string; // the cases' working folder: relative outputs land here
let savedCwd: string;
let savedThreads: number;

/** Every file and folder under `dir`, as paths relative to it. */
function tree(dir: string): Set<string> {
  const out = new Set<string>();
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      out.add(path.relative(dir, full));
      if (e.isDirectory()) walk(full);
    }
  };
  walk(dir);
  return out;
}

function idx(kind: 'images' | 'labels', count: number): Buffer {
  const header = kind === 'images' ? 16 : 8;
  const bytes = Buffer.alloc(header + count * (kind === 'images' ? PIXELS : 1));
  bytes.writeUInt32BE(kind === 'images' ? 0x803 : 0x801, 0);
  bytes.writeUInt32BE(count, 4);
  if (kind === 'images') {
    bytes.writeUInt32BE(28, 8);
    bytes.writeUInt32BE(28, 12);
  }
  return bytes;
}

beforeAll(async () => {
  savedCwd = process.cwd();
  savedThreads = getThreads();
  const f = (...p: string[]) => path.join(root, ...p);
  // Data folders, each refused quickly: too few images, missing, a file, a FIFO inside.
  fs.mkdirSync(f('tiny'));
  fs.writeFileSync(f('tiny', 'train-images-idx3-ubyte'), idx('images', 3));
  fs.writeFileSync(f('tiny', 'train-labels-idx1-ubyte'), idx('labels', 3));
  fs.writeFileSync(f('tiny', 't10k-images-idx3-ubyte'), idx('images', 2));
  fs.writeFileSync(f('tiny', 't10k-labels-idx1-ubyte'), idx('labels', 2));
  fs.cpSync(f('tiny'), f('fifo-data'), { recursive: true });
  fs.rmSync(f('fifo-data', 'train-images-idx3-ubyte'));
  execFileSync('mkfifo', [f('fifo-data', 'train-images-idx3-ubyte')]);
  fs.writeFileSync(f('a-file'), 'not a folder');
  // Model files: valid, corrupt, a FIFO, a folder.
  await Model.create({ seed: 1, backend: 'cpu' }).save(f('model.safetensors'));
  fs.writeFileSync(f('corrupt.safetensors'), Buffer.from('\x10\x00\x00\x00\x00\x00\x00\x00{"a":1}'));
  execFileSync('mkfifo', [f('fifo.safetensors')]);
  fs.writeFileSync(f('corrupt.onnx'), Buffer.from('\x08\x07\x3a\xff\xff\x03not protobuf'));
  cwd = f('cwd');
  fs.mkdirSync(cwd);
  process.chdir(cwd);
});

afterAll(() => {
  process.chdir(savedCwd);
  setThreads(savedThreads);
  fs.rmSync(root, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// The grammar

const number = fc.constantFrom('1', '0', '-1', '0.5', '20', '1e6', '2e6', '1e400', 'NaN', 'Infinity', '', ' ', 'abc', '0x10', '3.', '-0');
const integer = fc.constantFrom('1', '2', '0', '-1', '1.5', '100', '1e3', '99999999999', '', 'x', '07');
const smallThreads = fc.constantFrom('1', '2', '0', '-3', '1025', 'two');
const dataDir = () =>
  fc.constantFrom(path.join(root, 'tiny'), path.join(root, 'fifo-data'), path.join(root, 'missing'), path.join(root, 'a-file'), '');
const modelFile = () =>
  fc.constantFrom(
    path.join(root, 'model.safetensors'),
    path.join(root, 'corrupt.safetensors'),
    path.join(root, 'fifo.safetensors'),
    path.join(root, 'missing.safetensors'),
    root,
    '/dev/zero',
    '',
  );
// None of them imports: a damaged protobuf, a model file of another format, a FIFO, a folder, a device.
const onnxFile = fc.constantFrom(
  path.join(root, 'corrupt.onnx'),
  path.join(root, 'model.safetensors'),
  path.join(root, 'fifo.safetensors'),
  path.join(root, 'missing.onnx'),
  root,
  '/dev/zero',
  '',
);
const outFile = fc.constantFrom(
  'out.safetensors',
  'sub/dir/out.safetensors',
  '.',
  'cwd-file',
  path.join(root, 'a-file', 'x.safetensors'),
  '',
);
const outDir = fc.constantFrom('out', 'sub/run', '.', path.join(root, 'a-file', 'run'), '');

type Option = [string, fc.Arbitrary<string> | null];

const RUNTIME: Option[] = [
  ['--backend', fc.constantFrom('auto', 'cpu', 'cuda', 'gpu', '')],
  ['--threads', smallThreads],
  ['--split', fc.constantFrom('paper', 'original', 'halves')],
  ['--json', null],
  ['--quiet', null],
];
const TRAINING: Option[] = [
  ['--temperature', number],
  ['--epochs', integer],
  ['--seed', integer],
  ['--batch-size', integer],
  ['--learning-rate', number],
  ['--momentum', number],
  ['--loss-scale', number],
  ['--l2', number],
  ['--dropout', number],
  ['--train-limit', integer],
  ['--restart', null],
];

/** Per command: its options, and the option that names its output (checked for stray writes). */
const COMMANDS: Record<string, { options: Option[]; data: boolean; argument?: fc.Arbitrary<string> }> = {
  train: { options: [['--out', outFile], ...TRAINING, ...RUNTIME], data: true },
  distill: { options: [['--teacher', modelFile()], ['--out', outFile], ...TRAINING, ...RUNTIME], data: true },
  eval: { options: [['--model', modelFile()], ['--temperature', number], ...RUNTIME], data: true },
  attack: {
    options: [
      ['--model', modelFile()],
      ['--alg', fc.constantFrom('alg1', 'alg2', 'alg3', 'alg4', 'alg5', '')],
      ['--samples', integer],
      ['--indices', fc.constantFrom('0', '1,2', '-1', '9999', 'a,b', '', '0,0')],
      ['--seed', integer],
      ['--budget', integer],
      ['--temperature', number],
      ['--loss', fc.constantFrom('xent', 'margin', 'hinge')],
      ['--precision', fc.constantFrom('float32', 'float64', 'half')],
      ['--records', outFile],
      ...RUNTIME,
    ],
    data: true,
  },
  gradients: {
    options: [
      ['--model', modelFile()],
      ['--samples', integer],
      ['--seed', integer],
      ['--temperatures', fc.constantFrom('1', '1,20', '0', '-1', 'a', '1,,2', '')],
      ['--loss', fc.constantFrom('xent', 'margin', 'x')],
      ...RUNTIME,
    ],
    data: true,
  },
  diagnose: {
    options: [
      ['--model', modelFile()],
      ['--epsilon', number],
      ['--samples', integer],
      ['--seed', integer],
      ['--temperature', number],
      ['--surrogate', modelFile()],
      ['--surrogate-images', integer],
      ['--surrogate-epochs', integer],
      ['--out', outDir],
      ...RUNTIME,
    ],
    data: true,
  },
  reproduce: {
    options: [
      ['--profile', fc.constantFrom('quick', 'paper', 'full')],
      ['--out', outDir],
      ['--seed', integer],
      ['--epochs', integer],
      ['--train-limit', integer],
      ['--samples', integer],
      ['--alg4-samples', integer],
      ['--budget', integer],
      ['--pictures', integer],
      ...RUNTIME,
    ],
    data: true,
  },
  import: {
    options: [
      ['--out', outFile],
      ['--json', null],
    ],
    data: false,
    argument: onnxFile,
  },
  info: { options: [['--json', null]], data: false },
};

const EXTRA = fc.constantFrom('--help', '--version', '--no-such-option', 'stray', '-x', '--');

const argvArb: fc.Arbitrary<string[]> = fc.constantFrom(...Object.keys(COMMANDS), 'bogus').chain((command) => {
  const spec = COMMANDS[command] ?? { options: [], data: false };
  const option: fc.Arbitrary<string[]> = fc
    .constantFrom(...(spec.options.length ? spec.options : ([['--json', null]] as Option[])))
    .chain(([name, value]) => (value === null ? fc.constant([name]) : value.map((v) => [name, v])));
  return fc
    .tuple(
      fc.array(option, { maxLength: 6 }),
      fc.option(EXTRA, { freq: 8, nil: undefined }),
      spec.data ? dataDir() : fc.constant(''),
      fc.option(spec.argument ?? fc.constant(''), { freq: 8, nil: undefined }),
    )
    .map(([opts, extra, data, argument]) => {
      // --data first (before any '--' that ends the options), and always one that fails fast:
      // never the real data set, or a case would train.
      const args = [command, ...(spec.data ? ['--data', data === '' ? path.join(root, 'tiny') : data] : []), ...opts.flat()];
      if (spec.argument && argument !== undefined) args.splice(1, 0, argument);
      if (extra !== undefined) args.push(extra);
      return args;
    });
});

/** The paths a case may write: its --out/--records values (and what hangs off them). */
function allowedOutputs(args: string[]): string[] {
  const allowed: string[] = [];
  for (let i = 0; i < args.length - 1; i++)
    if (args[i] === '--out' || args[i] === '--records') allowed.push(path.resolve(cwd, args[i + 1]));
  if (args[0] === 'reproduce') allowed.push(path.resolve(cwd, 'runs'));
  return allowed;
}

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((stdout += String(s)), true));
  const err = jest.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((stderr += String(s)), true));
  try {
    const code = await main(['node', 'tempered', ...args]);
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
    setThreads(savedThreads);
  }
}

describe('fuzz: the command line, in process', () => {
  test(`${RUNS} generated command lines: a coded error, a usage error or success; no stray writes`, async () => {
    const fixtures = tree(root);
    await fc.assert(
      fc.asyncProperty(argvArb, async (args) => {
        const { code, stderr } = await run(args);
        const context = `tempered ${args.join(' ')}\nexit ${code}\n${stderr}`;
        if (code === 1 || code === 2) {
          // Ours: "tempered: error [TEMPERED_...]"; commander's usage errors: "error: ..." (exit 2).
          const coded = /tempered: error \[TEMPERED_[A-Z_]+\]: /.test(stderr);
          const usage = code === 2 && /^error: /m.test(stderr);
          if (!coded && !usage) throw new Error(`an error without a code:\n${context}`);
        } else if (code === 0) {
          const harmless = args[0] === 'info' || args.some((a) => a === '--help' || a === '--version');
          if (!harmless) throw new Error(`succeeded where every data set fails:\n${context}`);
        } else throw new Error(`unexpected exit status:\n${context}`);

        // Nothing new outside the allowed outputs; then remove what the case made.
        const allowed = allowedOutputs(args);
        for (const p of tree(root)) {
          if (fixtures.has(p)) continue;
          const full = path.join(root, p);
          const inside = allowed.some(
            (a) =>
              full === a ||
              full.startsWith(`${a}.`) ||
              full.startsWith(`${a}${path.sep}`) ||
              // the output's own folder and the temporary files written beside it
              a.startsWith(`${full}${path.sep}`) ||
              path.basename(full).startsWith(`.${path.basename(a)}.`),
          );
          if (!inside) throw new Error(`wrote ${full}, outside its outputs ${JSON.stringify(allowed)}:\n${context}`);
        }
        for (const name of fs.readdirSync(cwd)) fs.rmSync(path.join(cwd, name), { recursive: true, force: true });
      }),
      { seed: SEED + 10, numRuns: RUNS },
    );
  }, 600_000); // bounded by the case count, not by a clock

  test('an unwritable --out is refused before any data is read or training starts', async () => {
    const { code, stderr } = await run([
      'train',
      '--out',
      path.join(root, 'a-file', 'm.safetensors'),
      '--data',
      path.join(root, 'fifo-data'),
    ]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/\[TEMPERED_IO\]: --out: cannot write in /); // not the FIFO's refusal: data comes after
    const r = await run(['distill', '--teacher', path.join(root, 'model.safetensors'), '--out', cwd, '--data', path.join(root, 'tiny')]);
    expect(r.stderr).toMatch(/\[TEMPERED_IO\]: --out: .* is a folder, not a file/);
    const r2 = await run(['reproduce', '--out', path.join(root, 'a-file', 'run'), '--data', path.join(root, 'tiny')]);
    expect(r2.stderr).toMatch(/\[TEMPERED_IO\]: --out: cannot write in /);
  });

  test('a tiny real run: train on 32 images for one epoch writes the model and nothing else', async () => {
    const { code, stdout, stderr } = await run([
      'train',
      '--train-limit',
      '32',
      '--epochs',
      '1',
      '--out',
      // Absolute: were the test to time out, the run would still finish after cwd is restored.
      path.join(cwd, 'm.safetensors'),
      '--json',
      '--quiet',
      '--backend',
      'cpu',
      '--split',
      'original', // 1,000 validation images rather than 10,000: the run stays small
    ]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const result = JSON.parse(stdout) as { model: string; testAccuracy: number; history: unknown[] };
    expect(result.model).toBe(path.join(cwd, 'm.safetensors'));
    expect(result.history).toHaveLength(1);
    expect(result.testAccuracy).toBeGreaterThanOrEqual(0);
    expect(result.testAccuracy).toBeLessThanOrEqual(1);
    expect(fs.readdirSync(cwd)).toEqual(['m.safetensors']); // no checkpoint, no temp file left
    const model = await Model.load(path.join(cwd, 'm.safetensors'));
    expect(model.metadata.result?.testAccuracy).toBe(result.testAccuracy);
    model.dispose();
    fs.rmSync(path.join(cwd, 'm.safetensors'));
  }, 600_000); // evaluates the 10,000 test images: slow on a busy machine, bounded by work
});
