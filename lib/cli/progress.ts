// Progress on stderr: a live bar (cli-progress) on a terminal, a plain line every few
// seconds otherwise (logs, CI), nothing with --quiet. stdout stays free for --json.
import * as cliProgress from 'cli-progress';

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

export interface ProgressSink {
  /** `done` of `total` units, and a short status text. */
  update(done: number, total: number, status: string): void;
  /** A line that should stay (e.g. an epoch summary). */
  log(line: string): void;
  stop(): void;
}

export function createProgress(opts: { quiet?: boolean; label: string }): ProgressSink {
  if (opts.quiet) return { update() {}, log() {}, stop() {} };
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream: process.stderr,
        format: `${opts.label} {bar} {percentage}% | {status}`,
        hideCursor: true,
        clearOnComplete: false,
        barsize: 24,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update(done, total, status) {
        if (!started) {
          bar.start(total, done, { status });
          started = true;
        } else {
          bar.setTotal(total);
          bar.update(done, { status });
        }
      },
      log(line) {
        if (started) {
          bar.stop();
          started = false;
        }
        process.stderr.write(line + '\n');
      },
      stop() {
        if (started) bar.stop();
        started = false;
      },
    };
  }
  let last = 0;
  return {
    update(done, total, status) {
      const now = Date.now();
      if (now - last < 5000 && done < total) return;
      last = now;
      process.stderr.write(`${opts.label} ${((100 * done) / Math.max(total, 1)).toFixed(0)}% | ${status}\n`);
    },
    log(line) {
      process.stderr.write(line + '\n');
    },
    stop() {},
  };
}
