#!/usr/bin/env node
// Two trainings at once against one after the other, in samples/s of both together: what
// `reproduce` gains by training M_std and M_std-T side by side (docs/performance.md).
//   node scripts/bench-two-trainings.js [--samples N] [--rounds R] [--threads T]
// Each round trains two models (T = 1 and 20, the paper's batch 128) on the first N training
// images, one after the other on all T threads (default: all cores), then side by side on
// T/2 threads each, and prints the samples/s of each way and their ratio; the ways alternate
// so that a change in the machine's load hits both. Needs the TypeScript built (npm run build:ts).
'use strict';
const path = require('path');
const t = require(path.join(__dirname, '..', 'dist', 'lib', 'index.js'));
const { train } = require(path.join(__dirname, '..', 'dist', 'lib', 'train.js'));

function flag(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

async function main() {
  const samples = flag('--samples', 12800);
  const rounds = flag('--rounds', 3);
  const threads = flag('--threads', t.getThreads());
  if (threads < 2) throw new Error('needs at least 2 threads');
  t.setThreads(threads);
  const data = await t.loadMnist();
  const opts = (temperature) => ({ trainLimit: samples, epochs: 1, seed: 1, temperature, validate: false });
  const timeIt = async (fn) => {
    const t0 = process.hrtime.bigint();
    await fn();
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };
  const serial = async () => {
    for (const temperature of [1, 20]) await train(t.Model.create({ seed: 1, backend: 'cpu' }), data, opts(temperature));
  };
  const sideBySide = () =>
    Promise.all(
      [1, 20].map((temperature) =>
        train(t.Model.create({ seed: 1, backend: 'cpu', threads: Math.floor(threads / 2) }), data, opts(temperature)),
      ),
    );
  await train(t.Model.create({ seed: 1, backend: 'cpu' }), data, { ...opts(1), trainLimit: 1280 }); // warm-up
  const rows = [];
  for (let r = 0; r < rounds; r++) {
    const a = (2 * samples) / (await timeIt(serial));
    const b = (2 * samples) / (await timeIt(sideBySide));
    rows.push({ round: r + 1, serial: Math.round(a), sideBySide: Math.round(b), ratio: +(b / a).toFixed(3) });
    console.log(
      `round ${r + 1}: one after the other (${threads} threads) ${a.toFixed(0)} samples/s, side by side (${Math.floor(threads / 2)} each) ${b.toFixed(0)} samples/s: ${(b / a).toFixed(2)}x`,
    );
  }
  const median = (xs) => xs.slice().sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  console.log(
    JSON.stringify({
      cpu: require('os').cpus()[0]?.model,
      isa: t.cpuIsa(),
      threads,
      samples,
      load: require('os').loadavg(),
      rows,
      medianRatio: median(rows.map((x) => x.ratio)),
    }),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
