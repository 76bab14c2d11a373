// A consumer's `npm install tempered-*.tgz` on a machine without a compiler: the packed
// package (with a prebuilt CPU addon in prebuilds/, as `npm run prebuild` leaves it) installs
// in a fresh folder with PATH holding only node, npm, sh and a few coreutils (no cc, c++,
// gcc, g++, cmake or nvcc), builds nothing, and runAttack works on a published model. The
// times are printed, never asserted. Skipped, saying so, when npm cannot reach its registry
// (the consumer's dependencies come from it; a warm cache is used first).
import { spawnSync, SpawnSyncReturns } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const root = path.join(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { name: string; version: string; files: string[] };
// npm's own script (the `npm` on PATH is a link to it), run with this node.
const npmCli = fs.realpathSync(spawnSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).stdout.trim() || 'npm');
const COMPILERS = ['cc', 'c++', 'gcc', 'g++', 'clang', 'clang++', 'cmake', 'nvcc', 'make', 'ninja'];

function registryReachable(): string | undefined {
  const r = spawnSync(process.execPath, [npmCli, 'ping'], { encoding: 'utf8', timeout: 30000 });
  return r.status === 0 ? undefined : `npm ping failed (${(r.stderr || r.error?.message || '').trim().split('\n').pop()})`;
}
const unreachable = registryReachable();
if (unreachable) console.warn(`consumer-install: skipped: the npm registry cannot be reached: ${unreachable}`);
const maybe = unreachable ? test.skip : test;

// The addon the prebuilt stands for: prebuilds/ of `npm run prebuild` when present, else the
// working copy's build (the same sources; prebuildify only copies and strips it).
function prebuiltAddon(): { file: string; name: string } {
  const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  if (fs.existsSync(dir)) {
    const name = fs.readdirSync(dir).find((f) => f.endsWith('.node'));
    if (name) return { file: path.join(dir, name), name };
  }
  return { file: path.join(root, 'build', 'Release', 'tempered.node'), name: `${pkg.name}.glibc.node` };
}

// A folder of links to the only programs the install may use: no compiler, no cmake.
function strippedPath(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const tools = [
    'sh',
    'bash',
    'env',
    'cat',
    'ls',
    'mkdir',
    'rm',
    'cp',
    'mv',
    'ln',
    'chmod',
    'uname',
    'dirname',
    'basename',
    'sed',
    'grep',
    'tr',
  ];
  for (const tool of tools) {
    const found = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
    if (found.startsWith('/')) fs.symlinkSync(found, path.join(dir, tool));
  }
  fs.symlinkSync(fs.realpathSync(process.execPath), path.join(dir, 'node'));
  fs.symlinkSync(npmCli, path.join(dir, 'npm'));
  return dir;
}

function timed(cmd: string, args: string[], opts: Parameters<typeof spawnSync>[2]): { r: SpawnSyncReturns<string>; seconds: number } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 600000, ...opts }) as SpawnSyncReturns<string>;
  return { r, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tempered-consumer-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

maybe(
  'npm install of the packed tarball needs no compiler, builds nothing, and runAttack works',
  () => {
    // The package's files (package.json "files") and a prebuilt addon, packed with npm pack.
    const stage = path.join(tmp, 'package');
    fs.mkdirSync(stage);
    for (const entry of [...pkg.files, 'package.json', 'README.md', 'LICENSE'])
      if (fs.existsSync(path.join(root, entry)) && entry !== 'prebuilds/')
        fs.cpSync(path.join(root, entry), path.join(stage, entry), { recursive: true });
    const addon = prebuiltAddon();
    expect(fs.existsSync(addon.file)).toBe(true);
    const prebuilds = path.join(stage, 'prebuilds', `${process.platform}-${process.arch}`);
    fs.mkdirSync(prebuilds, { recursive: true });
    fs.copyFileSync(addon.file, path.join(prebuilds, addon.name));
    const packed = timed(process.execPath, [npmCli, 'pack', '--ignore-scripts', '--pack-destination', tmp, '--json'], { cwd: stage });
    expect(packed.r.stderr.includes('ERR!') ? packed.r.stderr : '').toBe('');
    expect(packed.r.status).toBe(0);
    const tarball = path.join(tmp, (JSON.parse(packed.r.stdout) as { filename: string }[])[0].filename);
    const listed = (JSON.parse(packed.r.stdout) as { files: { path: string }[] }[])[0].files.map((f) => f.path);
    expect(listed).toContain(`prebuilds/${process.platform}-${process.arch}/${addon.name}`);

    // The consumer: a fresh folder, PATH without any compiler, no npm settings of this run's.
    const bin = strippedPath(path.join(tmp, 'bin'));
    for (const tool of COMPILERS)
      expect(spawnSync(path.join(bin, 'sh'), ['-c', `command -v ${tool}`], { env: { PATH: bin } }).status).not.toBe(0);
    const consumer = path.join(tmp, 'consumer');
    fs.mkdirSync(consumer);
    fs.writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
    const env: NodeJS.ProcessEnv = { PATH: bin, HOME: process.env.HOME ?? os.homedir(), TMPDIR: os.tmpdir() };
    if (process.env.npm_config_cache) env.npm_config_cache = process.env.npm_config_cache;
    const install = timed(
      process.execPath,
      [npmCli, 'install', tarball, '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts'],
      {
        cwd: consumer,
        env,
      },
    );
    console.warn(
      `consumer-install: npm pack ${packed.seconds.toFixed(1)} s; npm install ${install.seconds.toFixed(1)} s (warm npm cache, no compiler on PATH)`,
    );
    expect({ status: install.r.status, stderr: install.r.status === 0 ? '' : install.r.stderr }).toEqual({ status: 0, stderr: '' });
    expect(install.r.stdout).toMatch(/tempered: using the prebuilt CPU addon/);
    const installed = path.join(consumer, 'node_modules', 'tempered');
    expect(fs.existsSync(path.join(installed, 'build'))).toBe(false); // nothing was compiled

    // runAttack on the published M_std from the consumer's folder, with the same PATH.
    const script = `
    const t = require('tempered');
    (async () => {
      const model = await t.Model.load(${JSON.stringify(path.join(root, 'docs', 'results', 'paper', 'models', 'std.safetensors'))});
      const { summary } = await t.runAttack(model, 'alg2', { samples: 3, budget: 10, seed: 0 });
      console.log(JSON.stringify({ addon: require('tempered/dist/lib/native').addonPath(), isa: t.cpuIsa(), attacked: summary.attacked, samples: summary.samples, successRate: summary.successRate }));
    })().catch((e) => { console.error(e); process.exit(1); });`;
    const used = timed(process.execPath, ['-e', script], { cwd: consumer, env });
    expect({ status: used.r.status, stderr: used.r.stderr }).toEqual({ status: 0, stderr: '' });
    const out = JSON.parse(used.r.stdout.trim().split('\n').pop()!) as {
      addon: string;
      samples: number;
      attacked: number;
      successRate: number;
    };
    console.warn(`consumer-install: runAttack in ${used.seconds.toFixed(1)} s: ${used.r.stdout.trim()}`);
    expect(out.addon).toBe(path.join(installed, 'prebuilds', `${process.platform}-${process.arch}`, addon.name));
    expect(out.samples).toBe(3);
    expect(out.attacked).toBeGreaterThan(0);
    expect(out.successRate).toBeGreaterThanOrEqual(0);
    expect(out.successRate).toBeLessThanOrEqual(1);
  },
  900000,
);
