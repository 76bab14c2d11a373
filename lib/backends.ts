// Backend selection, as node-llama-cpp does it: a typed union, 'auto' prefers CUDA and
// falls back to the CPU, and asking for an unavailable backend throws with the reason.
import type { BackendName, NativeBackendInfo } from '../binding';
import { TemperedError, checkNumber, rangeError } from './errors';
import { native } from './native';

export type { BackendName };
export type BackendChoice = 'auto' | BackendName;
export type BackendInfo = NativeBackendInfo;

/** Every backend this build knows, with availability and the reason when unavailable. */
export function backends(): BackendInfo[] {
  return native.backends();
}

/** The backend to use for `choice`: 'auto' picks CUDA when available, else the CPU. */
export function resolveBackend(choice: BackendChoice = 'auto'): BackendName {
  if (choice !== 'auto' && choice !== 'cpu' && choice !== 'cuda')
    throw rangeError(`backend must be 'auto', 'cpu' or 'cuda' (got '${String(choice)}')`);
  if (choice === 'cpu') return 'cpu';
  const cuda = backends().find((b) => b.name === 'cuda');
  if (cuda?.available) return 'cuda';
  if (choice === 'cuda')
    throw new TemperedError('TEMPERED_BACKEND_UNAVAILABLE', `the CUDA backend is unavailable: ${cuda?.reason ?? 'unknown reason'}`);
  return 'cpu';
}

/** The number of CPU threads the CPU backend uses (default: all cores this process may use). */
export function setThreads(threads: number): void {
  native.setThreads(checkNumber(threads, 'threads', { min: 1, max: 1024, integer: true }));
}

export function getThreads(): number {
  return native.getThreads();
}

/** The CPU kernels' instruction set ('avx512', 'avx2' or 'generic'). */
export function cpuIsa(): string {
  return native.cpuIsa();
}

/** What ran a result: recorded in every result file. */
export function describeBackend(name: BackendName): { backend: BackendName; device: string; threads?: number; isa?: string } {
  const info = backends().find((b) => b.name === name);
  const device = info?.device ?? name;
  return name === 'cpu' ? { backend: name, device, threads: getThreads(), isa: cpuIsa() } : { backend: name, device };
}
