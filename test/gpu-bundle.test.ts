// The GPU bundle (npm run gpu:bundle) must fit the lent machine's transfer: at most 56 MiB.
// CI builds it first (npm run gpu:rehearse); without gpu-bundle/ the test is skipped and its
// name says why.
import * as fs from 'fs';
import * as path from 'path';

const bundle = path.join(__dirname, '..', 'gpu-bundle');
const present = fs.existsSync(path.join(bundle, 'run.sh'));

function sizeOf(dir: string): number {
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true }))
    total += e.isDirectory() ? sizeOf(path.join(dir, e.name)) : fs.statSync(path.join(dir, e.name)).size;
  return total;
}

const maybe = present ? test : test.skip;
maybe(
  `gpu-bundle/ is at most 56 MiB and holds node.xz, app.tar.xz and run.sh${present ? '' : ' (skipped: no gpu-bundle/; run npm run gpu:bundle)'}`,
  () => {
    for (const f of ['node.xz', 'app.tar.xz', 'run.sh']) expect(fs.existsSync(path.join(bundle, f))).toBe(true);
    expect(sizeOf(bundle)).toBeLessThanOrEqual(56 * 1024 * 1024);
  },
);
