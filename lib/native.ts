// The one place that loads the native addon (prebuilds/ or build/Release, via
// node-gyp-build). Everything else in lib/ goes through `native`, typed by binding.d.ts.
import * as fs from 'fs';
import * as path from 'path';
import type * as Binding from '../binding';

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

function load(): NativeBinding {
  const root = packageRoot();
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the path is known only at run time
    return require(addonPath()) as NativeBinding;
  } catch (err) {
    const e = new Error(
      `tempered: the native addon could not be loaded from ${root} (${(err as Error).message}). ` +
        'Run `npm install` (or `npm run build:native`) in the package folder to build it; it needs cmake and a C++17 compiler.',
    );
    (e as NodeJS.ErrnoException).code = 'TEMPERED_ADDON_MISSING';
    throw e;
  }
}

export const native: NativeBinding = load();
