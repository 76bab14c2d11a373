// For each attack run (the JSON of `tempered attack --json` on the published M_std), the
// success within 100 pixels of the attacked samples split by their logit margin at T = 1
// (d = z_y - max_{j != y} z_j; float32's cross-entropy rounds p_y to 1 beyond d ~ 16.6).
// Usage (after npm run build:ts), from the repository root:
//   for alg in alg1 alg3; do for p in float32 float64; do
//     npx tempered attack --model docs/results/paper/models/std.safetensors --alg $alg --samples 1000 \
//       --budget 784 --precision $p --json --quiet > /tmp/$alg-$p.json; done; done
//   node docs/measurements/margin-split.js /tmp/alg1-float32.json /tmp/alg1-float64.json /tmp/alg3-float32.json /tmp/alg3-float64.json
'use strict';
const fs = require('fs');
const t = require('../../dist/lib');
(async () => {
  const data = await t.loadMnist();
  const model = await t.Model.load(require('path').join(__dirname, '..', 'results', 'paper', 'models', 'std.safetensors'));
  const runs = process.argv.slice(2).map((f) => [f, JSON.parse(fs.readFileSync(f, 'utf8'))]);
  const idx = runs[0][1].records.map((r) => r.index);
  const images = new Float32Array(idx.length * 784);
  idx.forEach((i, k) => images.set(data.test.images.subarray(i * 784, (i + 1) * 784), k * 784));
  const logits = await model.predict(images);
  const margin = new Map();
  idx.forEach((i, k) => {
    const y = data.test.labels[i];
    let other = -Infinity;
    for (let j = 0; j < 10; j++) if (j !== y) other = Math.max(other, logits[k * 10 + j]);
    margin.set(i, logits[k * 10 + y] - other);
  });
  for (const [f, run] of runs) {
    const att = run.records.filter((r) => r.attacked);
    const split = (lo, hi) => {
      const s = att.filter((r) => margin.get(r.index) > lo && margin.get(r.index) <= hi);
      const win = s.filter((r) => r.success && r.pixels <= 100).length;
      return `${win}/${s.length} = ${s.length ? ((100 * win) / s.length).toFixed(1) : '-'}%`;
    };
    console.log(f.split('/').pop(), 'margin <= 16.6:', split(-Infinity, 16.6), ' margin > 16.6:', split(16.6, Infinity));
  }
  const ms = [...margin.values()].sort((a, b) => a - b);
  console.log(
    'samples',
    ms.length,
    '(misclassified ones have d < 0) with margin > 16.6:',
    ms.filter((d) => d > 16.6).length,
    'median margin',
    ms[Math.floor(ms.length / 2)].toFixed(1),
  );
})();
