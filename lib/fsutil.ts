// Files that are never half-written: write a temporary file beside the target, fsync,
// rename over it. A crash leaves either the old file or the new one.
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { TemperedError } from './errors';

export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await fs.promises.mkdir(dir, { recursive: true });
    const handle = await fs.promises.open(tmp, 'wx');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.promises.rename(tmp, file);
  } catch (err) {
    await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
    throw new TemperedError('TEMPERED_IO', `cannot write ${file}: ${(err as Error).message}`, { cause: err });
  }
  // Persist the rename itself. Best effort: some platforms cannot open or sync a folder.
  try {
    const dh = await fs.promises.open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch {
    /* the file itself is complete; only durability across a crash is weaker */
  }
}

export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');
}

/** The parsed JSON file, or undefined when it does not exist or does not parse. */
export async function readJsonIfPresent<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await fs.promises.readFile(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}
