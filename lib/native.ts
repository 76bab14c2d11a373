// The one place that loads the native addon (prebuilds/ or build/Release, via
// node-gyp-build). Everything else in lib/ goes through `native`, typed by binding.d.ts.
// It loads on first use, not on import: `require('tempered')` for data alone (loadMnist)
// works where install scripts were denied, and the first native call says how to build.
import * as fs from 'fs';
import * as path from 'path';
import type * as Binding from '../binding';
import { TemperedError } from './errors';

export type NativeBinding = typeof Binding;

/** The package's folder: the nearest one above this file holding package.json (lib/ in
 * tests run from source, dist/lib/ once compiled). */
export function packageRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}

/** The addon file: TEMPERED_ADDON_PATH when set (a sanitizer build, scripts/sanitize.sh),
 * else the one node-gyp-build finds (prebuilds/, build/Release). */
export function addonPath(): string {
  if (process.env.TEMPERED_ADDON_PATH) return path.resolve(process.env.TEMPERED_ADDON_PATH);
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- node-gyp-build ships no type declarations
  return (require('node-gyp-build') as { path(dir: string): string }).path(packageRoot());
}

let loaded: NativeBinding | undefined;
let failure: TemperedError | undefined;

function load(): NativeBinding {
  if (loaded) return loaded;
  if (failure) throw failure;
  const root = packageRoot();
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the path is known only at run time
    loaded = require(addonPath()) as NativeBinding;
    return loaded;
  } catch (err) {
    // Install scripts denied (--ignore-scripts, allowScripts) or a build that failed: say how to build it.
    failure = new TemperedError(
      'TEMPERED_ADDON_MISSING',
      `the native addon is not built (${(err as Error).message.split('\n')[0]}). ` +
        'Build it with `npm rebuild tempered` in the project that depends on tempered ' +
        `(in a clone of tempered: \`npm run build:native\`); it needs cmake and a C++17 compiler. Package folder: ${root}. ` +
        'Reading MNIST (loadMnist) works without it.',
      { cause: err },
    );
    throw failure;
  }
}

/** Whether the addon loads here (false where it was never built); loads it when it can. */
export function addonAvailable(): boolean {
  try {
    load();
    return true;
  } catch {
    return false;
  }
}

// A stand-in that loads the addon on first use; property reads and key listings reach the real module.
export const native: NativeBinding = new Proxy({} as NativeBinding, {
  get: (_target, key) => Reflect.get(load(), key),
  has: (_target, key) => Reflect.has(load(), key),
  ownKeys: () => Reflect.ownKeys(load()),
  getOwnPropertyDescriptor: (_target, key) => {
    const d = Reflect.getOwnPropertyDescriptor(load(), key);
    return d && { ...d, configurable: true }; // the proxy's target holds none of them
  },
});
