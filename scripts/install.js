#!/usr/bin/env node
// `npm install` step. With a prebuilt CPU addon in prebuilds/ that loads here (the npm
// package ships one for linux-x64 glibc): use it, no compiler needed; where a CUDA toolkit
// is found too, build only the CUDA plugin (build/Release/libtempered_cuda.so, where the
// prebuilt addon looks for it), keeping the prebuilt addon when that build fails. Without a
// usable prebuilt: build the addon (and the plugin where nvcc is found) from source with
// cmake-js. Options (environment variable or `npm config set <name> <value>`):
//   TEMPERED_CUDA / tempered_cuda                  AUTO (default) | ON | OFF
//   CMAKE_CUDA_ARCHITECTURES / tempered_cuda_architectures   e.g. "61" for a GTX 1060; default:
//                                                  the visible GPUs', else tempered's list
//                                                  ("default" forces the list)
//   TEMPERED_BUILD_FROM_SOURCE=1                   ignore prebuilds
// `node scripts/install.js --force` (npm run build:native) always rebuilds everything from
// source; `--cuda-only` (npm run build:cuda) builds only the CUDA plugin.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const force = process.argv.includes('--force');
const cudaOnly = process.argv.includes('--cuda-only');

function option(envName, npmName) {
  return process.env[envName] || process.env[`npm_config_${npmName}`] || '';
}

const cudaMode = option('TEMPERED_CUDA', 'tempered_cuda').toUpperCase();

function onPath(program) {
  return spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status === 0;
}

function cudaToolkitFound() {
  if (cudaMode === 'OFF') return false;
  return onPath('nvcc') || fs.existsSync('/usr/local/cuda/bin/nvcc');
}

function prebuiltLoads() {
  try {
    require('node-gyp-build')(root);
    return true;
  } catch (_) {
    return false;
  }
}

// cmake-js with the options every build takes; returns its exit status.
function cmakeJs(command, extra) {
  const args = [require.resolve('cmake-js/bin/cmake-js'), command, '--directory', root, ...extra];
  const arch = option('CMAKE_CUDA_ARCHITECTURES', 'tempered_cuda_architectures');
  if (arch) args.push(`--CDCMAKE_CUDA_ARCHITECTURES=${arch}`);
  if (process.env.TEMPERED_CMAKE_PARALLEL) args.push('--parallel', process.env.TEMPERED_CMAKE_PARALLEL);
  console.log(`tempered: cmake-js ${args.slice(2).join(' ')}`);
  const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  return result.status === null ? 1 : result.status;
}

// The CUDA plugin alone, beside a prebuilt (or earlier) addon. Configuring needs cmake and
// the host compiler nvcc uses; only the plugin target is compiled.
function buildCudaPlugin() {
  if (!onPath('cmake')) return { ok: false, why: 'nvcc was found but cmake (>= 3.19) is not on PATH' };
  // A configure of an earlier build keeps its cache: TEMPERED_CUDA and the architectures are chosen again.
  fs.rmSync(path.join(root, 'build', 'CMakeCache.txt'), { force: true });
  const status = cmakeJs('compile', ['--target', 'tempered_cuda', `--CDTEMPERED_CUDA=${cudaMode === 'ON' ? 'ON' : 'AUTO'}`]);
  if (status !== 0) return { ok: false, why: `the build failed (cmake-js exit status ${status}; see above)` };
  if (!fs.existsSync(path.join(root, 'build', 'Release', 'libtempered_cuda.so')))
    return { ok: false, why: 'CMake built no plugin (see the tempered: messages above)' };
  return { ok: true };
}

if (cudaOnly) {
  if (cudaMode === 'OFF') {
    console.error('tempered: TEMPERED_CUDA=OFF: not building the CUDA plugin');
    process.exit(1);
  }
  const r = buildCudaPlugin();
  if (!r.ok) {
    console.error(`tempered: the CUDA plugin was not built: ${r.why}`);
    process.exit(1);
  }
  console.log('tempered: built build/Release/libtempered_cuda.so');
  process.exit(0);
}

const prebuilt = fs.existsSync(path.join(root, 'prebuilds'));
if (!force && prebuilt && !option('TEMPERED_BUILD_FROM_SOURCE', 'tempered_build_from_source') && prebuiltLoads()) {
  console.log('tempered: using the prebuilt CPU addon in prebuilds/ (set TEMPERED_BUILD_FROM_SOURCE=1 to build from source)');
  if (cudaToolkitFound()) {
    const r = buildCudaPlugin();
    if (r.ok) console.log('tempered: built the CUDA plugin, build/Release/libtempered_cuda.so');
    else if (cudaMode === 'ON') {
      console.error(`tempered: TEMPERED_CUDA=ON but the CUDA plugin was not built: ${r.why}`);
      process.exit(1);
    } else console.warn(`tempered: the CUDA plugin was not built (${r.why}); the CPU backend works. Later: npm run build:cuda`);
  }
  process.exit(0);
}

// A forced rebuild reconfigures: cmake-js reuses build/CMakeCache.txt, which would keep
// an earlier TEMPERED_CUDA or architecture list.
if (force) fs.rmSync(path.join(root, 'build', 'CMakeCache.txt'), { force: true });
const status = cmakeJs('compile', cudaMode ? [`--CDTEMPERED_CUDA=${cudaMode}`] : []);
if (status !== 0) {
  console.error('tempered: the native build failed; see the messages above. It needs cmake >= 3.19 and a C++17 compiler.');
  process.exit(status);
}
