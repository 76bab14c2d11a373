// A short training and a short attack, for scripts/sanitize.sh to run under valgrind
// memcheck (AVX2 kernels forced with TEMPERED_ISA=avx2: valgrind 3.19 decodes no AVX-512).
'use strict';

const native = require(process.env.TEMPERED_ADDON_PATH || require('node-gyp-build').path(require('path').join(__dirname, '..')));

(async () => {
  native.setThreads(2);
  const n = 32;
  const images = new Float32Array(n * 784).map((_, i) => ((i * 2654435761) >>> 0) / 4294967296);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 10);
  const ds = await native.createDataset('cpu', images, labels);
  const model = native.createModel('cpu', 1);
  const r = await model.trainSteps(ds, Int32Array.from({ length: n }, (_, i) => i), 16, { temperature: 2 }, 0);
  const ev = await model.evaluate(ds, 0, n, 1, true);
  const a = await model.attack(images.subarray(0, 2 * 784), labels.subarray(0, 2), { algorithm: 1, budget: 3 });
  const b = await model.attack(images.subarray(0, 784), labels.subarray(0, 1), { algorithm: 2, budget: 1, precision: 'float64' });
  console.log(`isa=${native.cpuIsa()} loss=${r.lossSum[0].toFixed(3)} correct=${ev.correct} attacked=${a.attacked.join(',')}/${b.attacked.join(',')}`);
})();
