// The command line as a newcomer meets it, through the compiled CLI (bin/tempered.js, dist/:
// `npm run build:ts` first, as `npm test` does): exit statuses, --json errors on stdout, info's
// folded lines, train's messages (a created folder, Ctrl-C), and an addon that was never built.
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { foldLibraries } from '../lib/cli/commands/info';

const root = path.join(__dirname, '..');
const bin = path.join(root, 'bin', 'tempered.js');
let tmp: string;

function tempered(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: tmp, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tempered-cli-newcomer-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('exit statuses and --json errors', () => {
  test('eval --model on a folder exits 2 (a path that is not a file), as README says', () => {
    const r = tempered(['eval', '--model', tmp]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/TEMPERED_IO.*a folder, not a regular file/);
  });

  test('with --json, a failure puts {"error": {code, message}} on stdout', () => {
    const r = tempered(['eval', '--model', path.join(tmp, 'missing.safetensors'), '--json']);
    expect(r.status).toBe(2);
    const out = JSON.parse(r.stdout) as { error: { code: string; message: string } };
    expect(out.error.code).toBe('TEMPERED_IO');
    expect(out.error.message).toMatch(/missing\.safetensors/);
  });

  test('with --json, a bad option is a JSON error too', () => {
    const r = tempered(['attack', '--model', 'm.safetensors', '--alg', 'alg9', '--json']);
    expect(r.status).toBe(2);
    expect(JSON.parse(r.stdout)).toEqual({ error: { code: 'TEMPERED_INVALID_ARGUMENT', message: expect.stringMatching(/--alg/) } });
  });

  test('an option the attack does not take is refused with its code, in JSON with --json', () => {
    const r = tempered(['attack', '--model', 'm.safetensors', '--alg', 'alg2', '--epsilons', '0.1,0.2', '--json']);
    expect(r.status).toBe(2);
    expect(JSON.parse(r.stdout).error).toEqual({ code: 'TEMPERED_OUT_OF_RANGE', message: expect.stringMatching(/epsilons.*alg2/) });
  });
});

describe('info', () => {
  const report =
    'cuDNN: libcudnn.so.9 not found (searched /a/very/long/folder/name/one/lib, /a/very/long/folder/name/two/lib, ' +
    "/usr/local/cuda/lib64, /usr/lib/x86_64-linux-gnu; then the system linker's paths); cuBLAS: libcublas.so.13 found in /opt/x/lib";
  test('folds the library search paths: counted by default, listed one per line with --verbose', () => {
    const short = foldLibraries(report, false);
    expect(short).toEqual([
      "  cuDNN: libcudnn.so.9 not found (searched 4 folders and the linker's paths; --verbose lists them)",
      '  cuBLAS: libcublas.so.13 found in /opt/x/lib',
    ]);
    const long = foldLibraries(report, true);
    expect(long).toContain('    /a/very/long/folder/name/two/lib');
    expect(long).toContain('    /usr/lib/x86_64-linux-gnu');
    for (const line of [...short, ...long]) expect(line.length).toBeLessThanOrEqual(100);
  });
  test('no line of `tempered info` is longer than 100 characters', () => {
    const r = tempered(['info']);
    expect(r.status).toBe(0);
    for (const line of r.stdout.split('\n')) expect(line.length).toBeLessThanOrEqual(100);
  });
});

describe('train', () => {
  test('says it created the folder of --out, and Ctrl-C says where a rerun resumes', async () => {
    const out = path.join(tmp, 'new', 'folder', 'm.safetensors');
    const child = spawn(process.execPath, [bin, 'train', '--epochs', '20', '--train-limit', '1000', '--out', out], { cwd: tmp });
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (b: Buffer) => {
        stderr += b.toString();
        if (/^epoch 1:/m.test(stderr)) resolve();
      });
      void exited.then(() => reject(new Error(`train ended before its first epoch: ${stderr}`)));
    });
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toContain(`created the folder ${path.join(tmp, 'new')} for --out`);
    expect(stderr).toMatch(new RegExp(`interrupted: rerun the same command to resume after epoch \\d+ of 20, from ${out}\\.checkpoint`));
    expect(fs.existsSync(`${out}.checkpoint`)).toBe(true);
  });
});

describe('an addon that was never built (install scripts denied)', () => {
  const missing = { TEMPERED_ADDON_PATH: path.join(os.tmpdir(), 'no-such-tempered-addon.node') };
  test('the library loads, loadMnist works, and a native call fails with a coded error saying how to build', () => {
    const script = `
      const t = require(${JSON.stringify(path.join(root, 'dist', 'lib'))});
      t.loadMnist().then((d) => {
        let error;
        try { t.Model.create({ seed: 1 }); } catch (e) { error = { name: e.name, code: e.code, message: e.message }; }
        console.log(JSON.stringify({ test: d.test.count, error }));
      });`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, ...missing } });
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.test).toBe(10000);
    expect(out.error).toEqual({
      name: 'TemperedError',
      code: 'TEMPERED_ADDON_MISSING',
      message: expect.stringContaining('npm rebuild tempered'),
    });
  });
  test('the CLI prints the coded error, not a stack, and exits 1', () => {
    const r = tempered(['info'], missing);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^tempered: error \[TEMPERED_ADDON_MISSING\]: .*npm rebuild tempered/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
