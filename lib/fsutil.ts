// Files that are never half-written (a temporary file beside the target, fsync, rename over
// it: a crash leaves either the old file or the new one), and files that are read with a bound
// (only regular files, never more bytes than the file held when it was opened).
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { TemperedError } from './errors';

/** Temporary files are named `.<target>.<pid>.<12 hex digits>.tmp`, so a run can recognise
 * the ones an earlier run left behind (killed between write and rename) and remove them. */
const TMP_SUFFIX = '.tmp';

function tempName(file: string): string {
  return `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}${TMP_SUFFIX}`;
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes temporary files of `file` left by runs that are no longer alive (a live writer's
 * file is its own business). Best effort: a folder that cannot be listed is left alone. */
async function removeStaleTemps(dir: string, file: string): Promise<void> {
  const prefix = `.${path.basename(file)}.`;
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith(TMP_SUFFIX)) continue;
    const middle = name.slice(prefix.length, -TMP_SUFFIX.length).split('.');
    if (middle.length !== 2 || !/^\d+$/.test(middle[0]) || !/^[0-9a-f]{12}$/.test(middle[1])) continue;
    const pid = Number(middle[0]);
    // Ours may still be in the middle of a concurrent write; another live process's too.
    if (pid === process.pid || isProcessAlive(pid)) continue;
    await fs.promises.rm(path.join(dir, name), { force: true }).catch(() => undefined);
  }
}

export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, tempName(file));
  try {
    await fs.promises.mkdir(dir, { recursive: true });
    await removeStaleTemps(dir, file);
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

/**
 * Checks, before any long work starts, that files can be created in `dir` (created when
 * missing): a folder that cannot be made or written gives a TEMPERED_IO error now rather
 * than after the first epoch. `what` names the option in the message, e.g. '--out'.
 */
export async function ensureWritableDir(dir: string, what: string): Promise<{ created?: string }> {
  const resolved = path.resolve(dir);
  const probe = path.join(resolved, tempName('write-check'));
  let created: string | undefined;
  try {
    created = await fs.promises.mkdir(resolved, { recursive: true }); // the first folder it made, if any
    const handle = await fs.promises.open(probe, 'wx');
    await handle.close();
    await fs.promises.rm(probe, { force: true });
  } catch (err) {
    throw new TemperedError('TEMPERED_IO', `${what}: cannot write in ${resolved} (${(err as Error).message})`, { cause: err });
  }
  return created ? { created } : {};
}

/** ensureWritableDir for the folder of `file`, and `file` itself must not be a folder. */
export async function ensureWritableFile(file: string, what: string): Promise<{ created?: string }> {
  const stat = await fs.promises.stat(file).catch(() => undefined);
  if (stat?.isDirectory()) throw new TemperedError('TEMPERED_IO', `${what}: ${path.resolve(file)} is a folder, not a file`);
  return ensureWritableDir(path.dirname(path.resolve(file)), what);
}

/** The cause of a refusal to read something that is not a regular file: EISDIR for a folder, ENOTREG otherwise. */
function notAFile(stat: fs.Stats): NodeJS.ErrnoException {
  return Object.assign(new Error(describeKind(stat)), { code: stat.isDirectory() ? 'EISDIR' : 'ENOTREG' });
}

/** A file kind for messages: 'a folder', 'a FIFO', ... */
function describeKind(stat: fs.Stats): string {
  if (stat.isDirectory()) return 'a folder';
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Reads a regular file whole, refusing anything else (folders, FIFOs, devices such as
 * /dev/zero, sockets) with TEMPERED_IO before a single byte is read: opened non-blocking, so
 * a FIFO with no writer cannot hang the call (nor hold a thread of libuv's pool), then checked
 * with fstat. Reads at most the size fstat reported, and refuses files above `maxBytes`.
 * `head`, when given, sees the first `headBytes` bytes and the file's size and may throw
 * before the rest is read (a header that states a size the file does not have).
 */
export async function readRegularFile(
  file: string,
  opts: { maxBytes: number; head?: { bytes: number; check: (head: Buffer, size: number) => void } },
): Promise<Buffer> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    throw new TemperedError('TEMPERED_IO', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile())
      throw new TemperedError('TEMPERED_IO', `cannot read ${file}: ${describeKind(stat)}, not a regular file`, {
        cause: notAFile(stat), // the caller named the wrong path: exit status 2 (exitStatus)
      });
    const size = stat.size;
    if (size > opts.maxBytes)
      throw new TemperedError('TEMPERED_IO', `cannot read ${file}: ${size} bytes, more than the ${opts.maxBytes}-byte limit`);
    const buf = Buffer.allocUnsafe(size);
    let filled = 0;
    const readUpTo = async (end: number): Promise<void> => {
      while (filled < end) {
        const { bytesRead } = await handle.read(buf, filled, end - filled, filled);
        if (bytesRead === 0) break; // shrank while we read: the caller's length checks report it
        filled += bytesRead;
      }
    };
    if (opts.head) {
      await readUpTo(Math.min(opts.head.bytes, size));
      opts.head.check(buf.subarray(0, filled), size);
    }
    await readUpTo(size);
    return filled === size ? buf : buf.subarray(0, filled);
  } catch (err) {
    if (err instanceof TemperedError) throw err;
    throw new TemperedError('TEMPERED_IO', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  } finally {
    await handle.close().catch(() => undefined);
  }
}
