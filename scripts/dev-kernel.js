#!/usr/bin/env node
// Builds (incrementally) and runs one kernel driver from native/dev: the CPU operation on
// random data, checked against a naive double-precision reference, then timed.
//   npm run dev:kernel -- conv3x3_forward [--reps 50] [--threads 2] [--isa avx2] [--n 64] [--seed 3]
//   npm run dev:kernel -- all        every operation, one after another
// The drivers build in build/dev with the engine's own flags; no Node addon is involved.
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');

const ROOT = path.join(__dirname, '..');
const BUILD = path.join(ROOT, 'build', 'dev');
const KERNELS = {
  conv3x3_forward: ['conv3x3_driver', 'forward'],
  conv3x3_backward_data: ['conv3x3_driver', 'backward_data'],
  conv3x3_backward_weights: ['conv3x3_driver', 'backward_weights'],
  dense_forward: ['dense_driver', 'forward'],
  dense_backward_data: ['dense_driver', 'backward_data'],
  dense_backward_weights: ['dense_driver', 'backward_weights'],
  maxpool2x2_forward: ['maxpool2x2_driver', 'forward'],
  maxpool2x2_backward: ['maxpool2x2_driver', 'backward'],
  softmax_xent_hard: ['softmax_xent_driver', 'hard'],
  softmax_xent_soft: ['softmax_xent_driver', 'soft'],
};

function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: ROOT });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

const [name, ...rest] = process.argv.slice(2);
if (!name || (name !== 'all' && !KERNELS[name])) {
  console.error(
    `usage: npm run dev:kernel -- <${Object.keys(KERNELS).join('|')}|all> [--reps N] [--threads T] [--isa I] [--n N] [--seed S]`,
  );
  process.exit(2);
}

const jobs = String(Math.max(1, Number(process.env.TEMPERED_CMAKE_PARALLEL) || 2));
const configure = ['-S', ROOT, '-B', BUILD, '-DCMAKE_BUILD_TYPE=Release', '-DTEMPERED_DEV_DRIVERS=ON', '-DTEMPERED_CUDA=OFF'];
if (run('cmake', configure) !== 0 || run('cmake', ['--build', BUILD, '--target', 'tempered_dev_drivers', '-j', jobs]) !== 0) {
  console.error('dev-kernel: building the drivers failed');
  process.exit(1);
}

let failed = 0;
for (const kernel of name === 'all' ? Object.keys(KERNELS) : [name]) {
  const [driver, op] = KERNELS[kernel];
  if (run(path.join(BUILD, 'native', 'dev', driver), [op, ...rest]) !== 0) failed++;
}
process.exit(failed ? 1 : 0);
