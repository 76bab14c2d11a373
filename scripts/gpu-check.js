#!/usr/bin/env node
// npm run gpu:check [-- a,b]: the GPU check on your own card (docs/cuda.md), with the project
// installed the usual way: builds the addon and the CUDA plugin (TEMPERED_CUDA=ON; set
// CMAKE_CUDA_ARCHITECTURES for your card, e.g. 61 for a GTX 1060 with a CUDA 12 toolkit), the
// bundle (npm run gpu:bundle), and runs the bundle's run.sh: the same steps, tolerances and
// exit statuses as on the lent GPU machine. OUT=dir keeps the logs and summary.json.
'use strict';
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
function run(cmd, argv, env) {
  const r = spawnSync(cmd, argv, { stdio: 'inherit', cwd: root, env: { ...process.env, ...env } });
  return r.status === null ? 1 : r.status;
}

let status = run(process.execPath, [path.join(__dirname, 'install.js'), '--force'], { TEMPERED_CUDA: 'ON' });
if (status === 0) status = run('npm', ['run', '--silent', 'build:ts']);
if (status === 0) status = run(process.execPath, [path.join(__dirname, 'gpu-bundle.js')]);
if (status !== 0) {
  console.error('gpu:check: the build failed (see above); it needs cmake, a C++17 compiler and a CUDA 12 or 13 toolkit');
  process.exit(status);
}
process.exit(run('bash', [path.join(root, 'gpu-bundle', 'run.sh'), ...process.argv.slice(2)]));
