#!/usr/bin/env node
// `npm install` step: build the addon from source with cmake-js, or use a prebuilt one
// (prebuilds/, CPU only) when it loads here and no CUDA toolkit asks for the plugin. Options (environment variable or `npm config set <name> <value>`):
//   TEMPERED_CUDA / tempered_cuda                  AUTO (default) | ON | OFF
//   CMAKE_CUDA_ARCHITECTURES / tempered_cuda_architectures   e.g. "61" for a GTX 1060
//   TEMPERED_BUILD_FROM_SOURCE=1                   ignore prebuilds
// `node scripts/install.js --force` (npm run build:native) always rebuilds.
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');

const root = path.resolve(__dirname, '..');
const force = process.argv.includes('--force');

function option(envName, npmName) {
  return process.env[envName] || process.env[`npm_config_${npmName}`] || '';
}

function cudaToolkitFound() {
  if (option('TEMPERED_CUDA', 'tempered_cuda').toUpperCase() === 'OFF') return false;
  const which = spawnSync('sh', ['-c', 'command -v nvcc || test -x /usr/local/cuda/bin/nvcc'], { stdio: 'ignore' });
  return which.status === 0;
}

function prebuiltLoads() {
  try {
    require('node-gyp-build')(root);
    return true;
  } catch (_) {
    return false;
  }
}

const fs = require('fs');
const prebuilt = fs.existsSync(path.join(root, 'prebuilds'));
if (!force && prebuilt && !option('TEMPERED_BUILD_FROM_SOURCE', 'tempered_build_from_source') && !cudaToolkitFound() && prebuiltLoads()) {
  console.log('tempered: using the prebuilt CPU addon in prebuilds/ (set TEMPERED_BUILD_FROM_SOURCE=1 to build from source)');
  process.exit(0);
}

const args = [require.resolve('cmake-js/bin/cmake-js'), 'compile', '--directory', root];
const cuda = option('TEMPERED_CUDA', 'tempered_cuda');
if (cuda) args.push(`--CDTEMPERED_CUDA=${cuda.toUpperCase()}`);
const arch = option('CMAKE_CUDA_ARCHITECTURES', 'tempered_cuda_architectures');
if (arch) args.push(`--CDCMAKE_CUDA_ARCHITECTURES=${arch}`);
if (process.env.TEMPERED_CMAKE_PARALLEL) args.push('--parallel', process.env.TEMPERED_CMAKE_PARALLEL);

// A forced rebuild reconfigures: cmake-js reuses build/CMakeCache.txt, which would keep
// an earlier TEMPERED_CUDA or architecture list.
if (force) require('fs').rmSync(path.join(root, 'build', 'CMakeCache.txt'), { force: true });

console.log(`tempered: building the native addon (cmake-js ${args.slice(2).join(' ')})`);
const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (result.status !== 0) {
  console.error('tempered: the native build failed; see the messages above. It needs cmake >= 3.19 and a C++17 compiler.');
  process.exit(result.status || 1);
}
