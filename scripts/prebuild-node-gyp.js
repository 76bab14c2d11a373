#!/usr/bin/env node
// Stands in for node-gyp when prebuildify (npm run prebuild) calls `node-gyp rebuild ...`:
// builds the addon with cmake-js instead, CPU backend only (a prebuilt binary must load
// everywhere; the CUDA plugin is built from source on machines with nvcc, beside it). The
// result is build/Release/tempered.node, which prebuildify strips and copies into
// prebuilds/<platform>-<arch>/. No -march: the baseline x86-64 (or arm64) of the compiler,
// with the AVX2 and AVX-512 kernels chosen at run time (CMakeLists.txt), so the binary loads
// on any processor of its architecture. build/ is configured afresh (its cache deleted, so no
// earlier TEMPERED_CUDA, sanitizer or driver option survives) and compiled incrementally:
// Ninja recompiles whatever the new configuration changes.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const debug = process.argv.includes('--debug');
fs.rmSync(path.join(root, 'build', 'CMakeCache.txt'), { force: true });
const args = [require.resolve('cmake-js/bin/cmake-js'), 'compile', '--directory', root, '--CDTEMPERED_CUDA=OFF'];
if (process.env.TEMPERED_CMAKE_PARALLEL) args.push('--parallel', process.env.TEMPERED_CMAKE_PARALLEL);
if (debug) args.push('--debug');
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
process.exit(r.status === null ? 1 : r.status);
