#!/usr/bin/env node
// Stands in for node-gyp when prebuildify (npm run prebuild) calls `node-gyp rebuild ...`:
// builds the addon with cmake-js instead, CPU backend only (a prebuilt binary must load
// everywhere; the CUDA plugin is built from source on machines with nvcc). The result is
// build/Release/tempered.node, which prebuildify copies into prebuilds/<platform>-<arch>/.
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');

const root = path.resolve(__dirname, '..');
const debug = process.argv.includes('--debug');
const args = [require.resolve('cmake-js/bin/cmake-js'), 'rebuild', '--directory', root, '--CDTEMPERED_CUDA=OFF'];
if (debug) args.push('--debug');
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
process.exit(r.status === null ? 1 : r.status);
