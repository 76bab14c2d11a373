// The fast tier (`npm run test:quick`): unit tests of the file formats, the data loader, the
// binding's argument checks, the layers and loss heads, and report rendering. No training and
// no attack runs, so it stays well under a minute on 2 cores for the edit-run loop. `npm test`
// still runs everything.
const base = require('./jest.config');

const QUICK = ['safetensors', 'mnist', 'binding', 'native-errors', 'layers', 'loss-heads', 'report'];

/** @type {import('jest').Config} */
module.exports = {
  ...base,
  testMatch: QUICK.map((name) => `<rootDir>/test/${name}*.test.ts`),
};
