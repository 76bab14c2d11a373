// A short training and a short attack, for scripts/sanitize.sh to run under valgrind
// memcheck (AVX2 kernels forced with TEMPERED_ISA=avx2: valgrind 3.19 decodes no AVX-512).
'use strict';

const native = require(process.env.TEMPERED_ADDON_PATH || require('node-gyp-build').path(require('path').join(__dirname, '..')));

(async () => {
  native.setThreads(2);
  const n = 16;
  const images = new Float32Array(n * 784).map((_, i) => ((i * 2654435761) >>> 0) / 4294967296);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 10);
  const ds = await native.createDataset('cpu', images, labels);
  const model = native.createModel('cpu', 1);
  const r = await model.trainSteps(
    ds,
    Int32Array.from({ length: n }, (_, i) => i),
    8,
    { temperature: 2 },
    0,
  );
  const ev = await model.evaluate(ds, 0, n, 1, true);
  // Attack the model's own predictions, so that every sample is attacked.
  const z = await model.predict(images.subarray(0, 2 * 784));
  const own = Int32Array.from({ length: 2 }, (_, i) =>
    z.subarray(i * 10, i * 10 + 10).indexOf(Math.max(...z.subarray(i * 10, i * 10 + 10))),
  );
  const a = await model.attack(images.subarray(0, 2 * 784), own, { algorithm: 1, budget: 3 });
  const b = await model.attack(images.subarray(0, 784), own.subarray(0, 1), { algorithm: 3, budget: 2, precision: 'float64' });
  console.log(
    `isa=${native.cpuIsa()} loss=${r.lossSum[0].toFixed(3)} correct=${ev.correct} attacked=${a.attacked.join(',')}/${b.attacked.join(',')}`,
  );
})();
