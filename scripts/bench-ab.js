#!/usr/bin/env node
// Two builds of the addon in turns, in one process: samples/s of the paper's network for
// training, forward, input gradient and the sweep, and the median of the ratios of
// neighbouring runs (a change of load hits both alike). For "is this change as fast as
// before": build the old commit in a worktree, then
//
//   node scripts/bench-ab.js OLD/build/Release/tempered.node build/Release/tempered.node [reps] [seconds]
'use strict';
const [oldPath, newPath] = process.argv.slice(2, 4);
if (!oldPath || !newPath) {
  console.error('usage: node scripts/bench-ab.js OLD.node NEW.node [reps] [seconds]');
  process.exit(2);
}
const oldA = require(require('path').resolve(oldPath));
const newA = require(require('path').resolve(newPath));
const threads = 2;
oldA.setThreads(threads);
newA.setThreads(threads);
function images(n) {
  const a = new Float32Array(n * 784);
  let s = 1;
  for (let i = 0; i < a.length; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    a[i] = (s >>> 8) / 16777216;
  }
  return a;
}
async function setup(A) {
  const m = A.createModel('cpu', 1);
  const n = 128 * 8;
  const ds = await A.createDataset(
    'cpu',
    images(n),
    Int32Array.from({ length: n }, (_, i) => i % 10),
  );
  const idx = Int32Array.from({ length: n }, (_, i) => i);
  const x = images(128),
    y = Int32Array.from({ length: 128 }, (_, i) => i % 10);
  const sx = images(2),
    sy = Int32Array.from([3, 7]);
  let step = 0;
  return {
    train: [
      async () => {
        await m.trainSteps(ds, idx, 128, { temperature: 1 }, step);
        step += 8;
      },
      n,
    ],
    forward: [() => m.predict(x), 128],
    input_gradient: [() => m.inputGradient(x, y, { loss: 'xent', precision: 'float32' }), 128],
    sweep: [() => m.sweep(sx, sy, { loss: 'xent', precision: 'float32' }, null), 2],
  };
}
async function rate([fn, units], seconds) {
  await fn();
  let count = 0;
  const t0 = process.hrtime.bigint();
  let el = 0;
  do {
    await fn();
    count++;
    el = Number(process.hrtime.bigint() - t0) / 1e9;
  } while (el < seconds);
  return (count * units) / el;
}
(async () => {
  const o = await setup(oldA),
    n = await setup(newA);
  const reps = Number(process.argv[4] || 5),
    seconds = Number(process.argv[5] || 1);
  for (const key of Object.keys(o)) {
    const ratios = [],
      ro = [],
      rn = [];
    for (let r = 0; r < reps; r++) {
      const a = await rate(o[key], seconds),
        b = await rate(n[key], seconds);
      ro.push(a);
      rn.push(b);
      ratios.push(b / a);
    }
    ratios.sort((p, q) => p - q);
    ro.sort((p, q) => p - q);
    rn.sort((p, q) => p - q);
    const med = (v) => v[Math.floor(v.length / 2)];
    console.log(
      `${key.padEnd(15)} old ${med(ro).toFixed(1)} new ${med(rn).toFixed(1)} units/s  new/old median of turns ${med(ratios).toFixed(3)} (min ${ratios[0].toFixed(3)}, max ${ratios[ratios.length - 1].toFixed(3)})`,
    );
  }
})();
