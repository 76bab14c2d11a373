// Does training with the CPU backend's Winograd F(2x2,3x3) convolutions reach the accuracy
// of the direct kernel? For seeds 0-3, the paper's network trained for 3 epochs (paper
// hyper-parameters, batch 128) both ways, each run in its own process because the switch
// is the environment (TEMPERED_CONV=direct: the direct kernel everywhere; unset: Winograd).
// The runs alternate between the two so that a loaded machine slows both alike. Prints one
// line per run and a Markdown table; test accuracy is evaluated by the kernel the run
// trained with (the published table was measured when inference was always direct).
// Usage (after npm run build:ts), from the repository root:
//   node docs/measurements/winograd-training.js [--limit N] [--epochs E] [--seeds 0,1,2,3] > out.txt
// --limit N trains on the first N training images only (default: all of them).
'use strict';
const { spawnSync } = require('child_process');

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

async function child() {
  const t = require('../../dist/lib');
  const seed = Number(arg('--seed'));
  const limit = arg('--limit') === undefined ? undefined : Number(arg('--limit'));
  const epochs = Number(arg('--epochs', '3'));
  const data = await t.loadMnist();
  const model = t.Model.create({ seed });
  const started = Date.now();
  const r = await t.train(model, data, { epochs, seed, trainLimit: limit, validate: false });
  const seconds = (Date.now() - started) / 1000;
  const test = await model.evaluate(data.test);
  const device = t.backends().find((b) => b.name === 'cpu').device;
  const last = r.history[r.history.length - 1];
  process.stdout.write(JSON.stringify({ seed, device, trainAccuracy: last.trainAccuracy, testAccuracy: test.accuracy, seconds }) + '\n');
}

function parent() {
  const seeds = arg('--seeds', '0,1,2,3').split(',').map(Number);
  const pass = ['--epochs', arg('--epochs', '3'), ...(arg('--limit') ? ['--limit', arg('--limit')] : [])];
  const rows = [];
  for (const seed of seeds) {
    for (const conv of ['winograd', 'direct']) {
      const env = { ...process.env };
      if (conv === 'direct') env.TEMPERED_CONV = 'direct';
      else delete env.TEMPERED_CONV;
      const r = spawnSync(process.execPath, [__filename, '--child', '--seed', String(seed), ...pass], {
        env,
        encoding: 'utf8',
      });
      if (r.status !== 0) throw new Error(`seed ${seed} ${conv}: ${r.stderr}`);
      const out = JSON.parse(r.stdout.trim().split('\n').pop());
      rows.push({ conv, ...out });
      console.log(`${conv} ${JSON.stringify(out)}`);
    }
  }
  console.log(`\nargs: ${pass.join(' ')}\n`);
  console.log('| seed | direct: test accuracy | Winograd: test accuracy | difference | direct s | Winograd s |');
  console.log('|---:|---:|---:|---:|---:|---:|');
  const pct = (x) => (100 * x).toFixed(2);
  const diffs = [];
  for (const seed of seeds) {
    const d = rows.find((x) => x.seed === seed && x.conv === 'direct');
    const w = rows.find((x) => x.seed === seed && x.conv === 'winograd');
    diffs.push(w.testAccuracy - d.testAccuracy);
    console.log(
      `| ${seed} | ${pct(d.testAccuracy)}% | ${pct(w.testAccuracy)}% | ${(100 * (w.testAccuracy - d.testAccuracy)).toFixed(2)} | ` +
        `${d.seconds.toFixed(0)} | ${w.seconds.toFixed(0)} |`,
    );
  }
  const stats = (conv) => {
    const a = rows.filter((x) => x.conv === conv).map((x) => x.testAccuracy);
    const mean = a.reduce((s, x) => s + x, 0) / a.length;
    const sd = Math.sqrt(a.reduce((s, x) => s + (x - mean) ** 2, 0) / Math.max(1, a.length - 1));
    return `${pct(mean)}% +- ${pct(sd)} (sd over seeds)`;
  };
  console.log(`\ndirect: ${stats('direct')}; Winograd: ${stats('winograd')}`);
}

if (process.argv.includes('--child')) {
  child().catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else {
  parent();
}
