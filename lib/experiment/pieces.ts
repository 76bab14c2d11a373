// A piece is one finished part of an experiment (an attack, a gradient table, the
// pictures), written atomically as JSON with the key of what it computed and the code that
// computed it. One helper decides reuse: the key must match, and a piece produced by other
// code (another commit) is recomputed unless the caller allows it, so pieces of different
// commits never mix silently.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { readJsonIfPresent, writeJsonAtomic } from '../fsutil';
import { packageVersion } from '../model';
import { packageRoot } from '../native';
import { shortCommit } from './results';

export interface CodeVersion {
  /** A git commit, or `tempered@<version>` outside a checkout. */
  commit: string;
  /** The checkout had uncommitted changes to tracked files. */
  dirty: boolean;
  source: 'env' | 'git' | 'package';
}

export interface Provenance {
  commit: string;
  dirty: boolean;
  producedAt: string;
  /** Wall time of computing the piece. */
  seconds: number;
}

export interface Piece {
  key: string;
  produced: Provenance;
}

let cachedVersion: CodeVersion | undefined;

function git(root: string, args: string[]): string {
  return execFileSync('git', ['-C', root, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10000 }).trim();
}

/**
 * The code that runs now: TEMPERED_COMMIT when set (a copy of the tree outside git; append
 * "+dirty" to mark it modified), else `git rev-parse HEAD` of the package root when it is a
 * checkout, else the package version.
 */
export function codeVersion(): CodeVersion {
  if (cachedVersion) return cachedVersion;
  const env = process.env.TEMPERED_COMMIT?.trim();
  if (env) {
    cachedVersion = { commit: env.replace(/\+dirty$/, ''), dirty: env.endsWith('+dirty'), source: 'env' };
    return cachedVersion;
  }
  const root = packageRoot();
  if (fs.existsSync(path.join(root, '.git'))) {
    try {
      const commit = git(root, ['rev-parse', 'HEAD']);
      const dirty = git(root, ['status', '--porcelain', '--untracked-files=no']) !== '';
      cachedVersion = { commit, dirty, source: 'git' };
      return cachedVersion;
    } catch {
      /* no git on this machine, or not a repository after all: fall back to the version */
    }
  }
  cachedVersion = { commit: `tempered@${packageVersion()}`, dirty: false, source: 'package' };
  return cachedVersion;
}

export interface PieceContext {
  code: CodeVersion;
  /** Reuse pieces produced by another commit (their commit is still recorded). */
  reuseOtherCommits: boolean;
  log: (message: string) => void;
}

export interface PieceOutcome<T extends Piece> {
  piece: T;
  reused: boolean;
}

/**
 * The piece at `file` when its key matches and its commit is this one (or reuse of other
 * commits is allowed); else `compute()` runs, timed, and its result is written atomically.
 */
export async function loadOrCompute<T extends Piece>(
  ctx: PieceContext,
  file: string,
  key: string,
  label: string,
  compute: () => Promise<Omit<T, 'key' | 'produced'>>,
): Promise<PieceOutcome<T>> {
  const found = await readJsonIfPresent<T>(file);
  // A piece without its producer (written before commits were recorded) is never reused: results.json could not name its commit.
  if (found && found.key === key && typeof found.produced?.commit === 'string') {
    const commit = found.produced.commit;
    if (commit === ctx.code.commit || ctx.reuseOtherCommits) {
      if (commit !== ctx.code.commit)
        ctx.log(`${label}: reusing a piece from commit ${shortCommit(found.produced)} (--reuse-other-commits)`);
      return { piece: found, reused: true };
    }
    ctx.log(
      `${label}: the stored piece comes from commit ${shortCommit(found.produced)}, this is ${shortCommit(ctx.code)}: recomputing (--reuse-other-commits keeps it)`,
    );
  }
  const started = Date.now();
  const body = await compute();
  const produced: Provenance = {
    commit: ctx.code.commit,
    dirty: ctx.code.dirty,
    producedAt: new Date().toISOString(),
    seconds: (Date.now() - started) / 1000,
  };
  const piece = { ...body, key, produced } as T;
  await writeJsonAtomic(file, piece);
  return { piece, reused: false };
}
