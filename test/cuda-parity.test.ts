// The CUDA backend against the CPU backend (the reference), through the public native API.
//
// Without a usable GPU every device test is skipped, visibly: its name ends with
// "(skipped: <the reason backends() gives>)" and a warning says why. Two tests always run:
// backends() explains why CUDA is unavailable, and asking for it throws
// TEMPERED_BACKEND_UNAVAILABLE (on a GPU machine they check the device instead).
//
// Tolerances (element i passes iff |cuda_i - cpu_i| <= atol + rtol * |cpu_i|; a failure
// names the tensor and its worst element):
//   trace tensors, input gradients, logits : atol = 1e-5 * max|cpu| of the tensor, rtol = 1e-4
//   sweep and attack losses                : atol = 1e-4 * max|cpu| of the losses,  rtol = 1e-3
//     (a loss is a difference of logits, so its rounding error is relative to the logits,
//     not to the loss; the margin loss cancels most)
//   the CUDA sweep against CUDA full forward passes: exact (equal bits) when the device runs
//     our own kernels only; with cuDNN / cuBLAS the losses' tolerance above, since the sweep
//     runs batches of 1,568 and its tail, the full passes other batch sizes, and the
//     libraries may reduce in another order for another batch size
//   training: per-batch loss sums within 1e-3 (relative) over the first 10 steps of 30 and
//     5e-2 at the end (float rounding differences grow through the updates)
//   skipped pixels: NaN at exactly the same positions; parameters round-trip exactly.
//
// Set CUDA_PARITY_REPORT=0 to silence the table of worst error/allowance ratios printed after
// a run on a GPU.
import { native } from '../lib/native';
import { loadMnist } from '../lib/mnist';
import type { Model, NativeLossSpec } from '../binding';
import { caught, caughtAsync, expectError } from './helpers';
import { compare, Comparison, formatComparison, Tolerance } from './reference/compare';
import { makeImages, makeLabels, makeParameters, makeSoftTargets } from './reference/fixtures';
import { TRACE_SHAPES } from './reference/network';

const cudaInfo = native.backends().find((b) => b.name === 'cuda');
const available = cudaInfo?.available === true;
// "own kernels" (not "own conv kernels"): neither cuDNN nor cuBLAS runs (cuda_backend.cu).
const ownKernelsOnly = available && /\bown kernels\b/.test(cudaInfo?.device ?? '');
const reason = cudaInfo?.reason ?? 'backends() has no cuda entry';
const skipped = available ? '' : ` (skipped: ${reason})`;
const gpuTest = available ? test : test.skip;
if (!available) {
  console.warn(`cuda-parity: the CUDA backend is unavailable here, so the GPU parity tests are skipped: ${reason}`);
}

const TRACE_ATOL = 1e-5;
const TRACE_RTOL = 1e-4;
const LOSS_ATOL = 1e-4;
const LOSS_RTOL = 1e-3;

const LAYOUT = native.parameterLayout();

/** Worst error/allowance ratio per compared tensor over the file (printed after a GPU run). */
const worst = new Map<string, number>();
afterAll(() => {
  if (!available || process.env.CUDA_PARITY_REPORT === '0' || worst.size === 0) return;
  const lines = [...worst.entries()].map(([k, v]) => `${k.padEnd(48)} ${v.toExponential(2)}`);
  // eslint-disable-next-line no-console
  console.log(`CUDA vs CPU on ${cudaInfo?.device}: worst |err| / allowance per tensor (<= 1 passes)\n${lines.join('\n')}`);
});

function maxAbsFinite(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) if (Number.isFinite(a[i])) m = Math.max(m, Math.abs(a[i]));
  return m;
}

function tol(ref: ArrayLike<number>, atolScale: number, rtol: number): Tolerance {
  return { atol: atolScale * maxAbsFinite(ref), rtol };
}

/** Compares, records the worst ratio, and returns the comparison. */
function check(name: string, cudaValues: ArrayLike<number>, cpuValues: ArrayLike<number>, t: Tolerance, shape?: number[]): Comparison {
  const c = compare(name, cudaValues, cpuValues, t, shape);
  worst.set(name, Math.max(worst.get(name) ?? 0, c.worst?.ratio ?? 0));
  return c;
}

/** Bit-for-bit equality of two float arrays. */
function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

function assertAll(label: string, comparisons: Comparison[]): void {
  const failed = comparisons.filter((c) => !c.ok);
  if (failed.length > 0) {
    throw new Error(
      `${label} on ${cudaInfo?.device}: ${failed.length} of ${comparisons.length} tensors out of tolerance ` +
        `(|cuda - cpu| <= atol + rtol*|cpu|)\n${failed.map(formatComparison).join('\n')}`,
    );
  }
}

/** The same parameters on both backends. */
function pair(params: Float32Array): { cpu: Model; cuda: Model } {
  const cpu = native.createModel('cpu', 1);
  const cuda = native.createModel('cuda', 1);
  cpu.setParameters(params);
  cuda.setParameters(params);
  return { cpu, cuda };
}

// Fixtures: images with constant regions (ties in both max pools), labels, soft targets,
// parameters with fc3 scaled up so that the logits spread over about +-10.
const N = 6;
const IMAGES = makeImages(N, 101);
const LABELS = makeLabels(N, 102);
const SOFT = makeSoftTargets(N, 103);
const PARAMS = makeParameters(104, { logitScale: 8 });

describe('CUDA backend availability (always runs)', () => {
  test('backends() lists cuda, with the reason when it is unavailable', () => {
    expect(cudaInfo).toBeDefined();
    if (available) {
      expect(cudaInfo!.device).toMatch(/sm_\d+/);
      return;
    }
    expect(cudaInfo!.available).toBe(false);
    expect(typeof cudaInfo!.reason).toBe('string');
    expect(cudaInfo!.reason!.length).toBeGreaterThan(0);
  });

  test('a built plugin loads and says why it cannot run (no driver, no device, no kernels)', () => {
    if (available || !native.buildInfo().cudaPlugin) return;
    // The plugin was built beside the addon, so its absence or a broken build would be a bug.
    expect(reason).not.toMatch(/was not built|failed to load|lacks the plugin entry points|another version/);
    expect(reason).toMatch(/driver|device|kernels for sm_|TEMPERED_DISABLE_CUDA|CUDA/);
  });

  test('createModel and createDataset on an unavailable cuda throw TEMPERED_BACKEND_UNAVAILABLE', async () => {
    if (available) {
      console.warn('CUDA is available here; the unavailable-backend case cannot be exercised');
      return;
    }
    const e = caught(() => native.createModel('cuda', 0));
    expectError(e, 'Error', 'TEMPERED_BACKEND_UNAVAILABLE');
    expect(e.message).toContain(reason);
    const e2 = await caughtAsync(async () => native.createDataset('cuda', new Float32Array(784), Int32Array.of(0)));
    expectError(e2, 'Error', 'TEMPERED_BACKEND_UNAVAILABLE');
  });
});

describe(`CUDA vs CPU parity${skipped}`, () => {
  gpuTest(`the same seed gives the same Glorot weights; parameters and velocity round-trip exactly${skipped}`, () => {
    const cpu = native.createModel('cpu', 42);
    const cuda = native.createModel('cuda', 42);
    expect(sameBits(cuda.getParameters(), cpu.getParameters())).toBe(true);
    cuda.setParameters(PARAMS);
    expect(sameBits(cuda.getParameters(), PARAMS)).toBe(true);
    const v = makeParameters(7);
    cuda.setVelocity(v);
    expect(sameBits(cuda.getVelocity(), v)).toBe(true);
    // CPU -> CUDA -> CPU
    cpu.setParameters(cuda.getParameters());
    expect(sameBits(cpu.getParameters(), PARAMS)).toBe(true);
    cpu.dispose();
    cuda.dispose();
  });

  const traceCases: Array<[number, boolean, number]> = [];
  for (const temperature of [1, 20])
    for (const soft of [false, true]) for (const dropout of [0, 0.5]) traceCases.push([temperature, soft, dropout]);
  for (const [temperature, soft, dropoutRate] of traceCases) {
    gpuTest(
      `trace: every activation and gradient at T=${temperature}, ${soft ? 'soft targets' : 'labels'}, ` +
        `dropout ${dropoutRate}${skipped}`,
      async () => {
        const { cpu, cuda } = pair(PARAMS);
        const cfg = { temperature, lossScale: temperature, dropoutRate, dropoutSeed: 77 };
        const a = await cpu.trace(IMAGES, LABELS, soft ? SOFT : null, cfg, 3);
        const b = await cuda.trace(IMAGES, LABELS, soft ? SOFT : null, cfg, 3);
        expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
        const comparisons: Comparison[] = [];
        for (const name of Object.keys(a)) {
          if (name === 'grad') continue;
          comparisons.push(check(name, b[name], a[name], tol(a[name], TRACE_ATOL, TRACE_RTOL), TRACE_SHAPES[name]));
        }
        // The parameter gradient tensor by tensor, each against its own scale.
        for (const t of LAYOUT) {
          const ref = a.grad.subarray(t.offset, t.offset + t.size);
          const got = b.grad.subarray(t.offset, t.offset + t.size);
          comparisons.push(check(`grad ${t.name}`, got, ref, tol(ref, TRACE_ATOL, TRACE_RTOL)));
        }
        assertAll(`trace T=${temperature} soft=${soft} dropout=${dropoutRate}`, comparisons);
        cpu.dispose();
        cuda.dispose();
      },
    );
  }

  gpuTest(`a batch large enough for several reduction chunks (n = 300): weight gradients${skipped}`, async () => {
    const n = 300;
    const images = makeImages(n, 105);
    const labels = makeLabels(n, 106);
    const { cpu, cuda } = pair(PARAMS);
    const cfg = { temperature: 1, lossScale: 1, dropoutRate: 0.5, dropoutSeed: 5 };
    const a = await cpu.trace(images, labels, null, cfg, 0);
    const b = await cuda.trace(images, labels, null, cfg, 0);
    const comparisons: Comparison[] = [check('n300 logits', b.logits, a.logits, tol(a.logits, TRACE_ATOL, TRACE_RTOL))];
    for (const t of LAYOUT) {
      const ref = a.grad.subarray(t.offset, t.offset + t.size);
      comparisons.push(check(`n300 grad ${t.name}`, b.grad.subarray(t.offset, t.offset + t.size), ref, tol(ref, TRACE_ATOL, TRACE_RTOL)));
    }
    assertAll('trace n=300', comparisons);
    // Reductions are deterministic: the same inputs give the same bits.
    const c = await cuda.trace(images, labels, null, cfg, 0);
    expect(sameBits(c.grad, b.grad)).toBe(true);
    cpu.dispose();
    cuda.dispose();
  });

  const specs: Array<[string, NativeLossSpec]> = [
    ['xent float32 T=1', { loss: 'xent', precision: 'float32', temperature: 1 }],
    ['xent float64 T=20', { loss: 'xent', precision: 'float64', temperature: 20 }],
    ['margin float32', { loss: 'margin', precision: 'float32' }],
  ];

  for (const [label, spec] of specs) {
    gpuTest(`inputGradient and attackLosses, ${label}${skipped}`, async () => {
      const { cpu, cuda } = pair(PARAMS);
      const a = await cpu.inputGradient(IMAGES, LABELS, spec);
      const b = await cuda.inputGradient(IMAGES, LABELS, spec);
      const la = await cpu.attackLosses(IMAGES, LABELS, spec);
      const lb = await cuda.attackLosses(IMAGES, LABELS, spec);
      assertAll(`inputGradient ${label}`, [
        check(`input gradient ${label}`, b.gradient, a.gradient, tol(a.gradient, TRACE_ATOL, TRACE_RTOL), [784]),
        check(`input gradient logits ${label}`, b.logits, a.logits, tol(a.logits, TRACE_ATOL, TRACE_RTOL), [10]),
        check(`input gradient loss ${label}`, b.loss, a.loss, tol(a.loss, LOSS_ATOL, LOSS_RTOL)),
        check(`attackLosses ${label}`, lb.loss, la.loss, tol(la.loss, LOSS_ATOL, LOSS_RTOL)),
        check(`attackLosses logits ${label}`, lb.logits, la.logits, tol(la.logits, TRACE_ATOL, TRACE_RTOL), [10]),
      ]);
      cpu.dispose();
      cuda.dispose();
    });
  }

  for (const [label, spec] of specs) {
    gpuTest(`sweep (Algorithm 2), ${label}: losses, base losses and skipped pixels${skipped}`, async () => {
      const n = 3;
      const images = IMAGES.slice(0, n * 784);
      for (let p = 0; p < 784; p += 5) images[784 + p] = 1; // some pixels already at 1
      const labels = LABELS.slice(0, n);
      const skip = new Uint8Array(n * 784);
      for (let p = 0; p < 784; p += 7) skip[p] = 1;
      for (let p = 3; p < 784; p += 11) skip[2 * 784 + p] = 1;
      const { cpu, cuda } = pair(PARAMS);
      const a = await cpu.sweep(images, labels, spec, skip);
      const b = await cuda.sweep(images, labels, spec, skip);
      // NaN exactly at the skipped pixels, on both.
      let nanMismatch = 0;
      for (let i = 0; i < n; i++) {
        for (let c = 0; c < 1568; c++) {
          const isSkipped = skip[i * 784 + (c % 784)] === 1;
          const k = i * 1568 + c;
          if (Number.isNaN(b.losses[k]) !== isSkipped || Number.isNaN(a.losses[k]) !== isSkipped) nanMismatch++;
        }
      }
      expect(nanMismatch).toBe(0);
      // Pixels already at the target: exactly the base loss.
      let baseMismatch = 0;
      for (let i = 0; i < n; i++) {
        for (let c = 0; c < 1568; c++) {
          const p = c % 784;
          const target = c < 784 ? 1 : 0;
          if (skip[i * 784 + p] === 0 && images[i * 784 + p] === target && b.losses[i * 1568 + c] !== b.base[i]) baseMismatch++;
        }
      }
      expect(baseMismatch).toBe(0);
      const finiteA = a.losses.map((v) => (Number.isNaN(v) ? 0 : v));
      const finiteB = b.losses.map((v) => (Number.isNaN(v) ? 0 : v));
      assertAll(`sweep ${label}`, [
        check(`sweep losses ${label}`, finiteB, finiteA, tol(finiteA, LOSS_ATOL, LOSS_RTOL), [1568]),
        check(`sweep base ${label}`, b.base, a.base, tol(a.base, LOSS_ATOL, LOSS_RTOL)),
      ]);

      // Each CUDA sweep loss is the loss of a full forward pass of the perturbed image on CUDA.
      const picks: Array<[number, number]> = [];
      for (let i = 0; i < n; i++) {
        for (let c = 1; c < 1568; c += 97) {
          const p = c % 784;
          if (skip[i * 784 + p] === 0 && images[i * 784 + p] !== (c < 784 ? 1 : 0)) picks.push([i, c]);
        }
      }
      const perturbed = new Float32Array(picks.length * 784);
      const plabels = new Int32Array(picks.length);
      picks.forEach(([i, c], j) => {
        perturbed.set(images.subarray(i * 784, (i + 1) * 784), j * 784);
        perturbed[j * 784 + (c % 784)] = c < 784 ? 1 : 0;
        plabels[j] = labels[i];
      });
      const full = await cuda.attackLosses(perturbed, plabels, spec);
      const fromSweep = Float64Array.from(picks, ([i, c]) => b.losses[i * 1568 + c]);
      const base = await cuda.attackLosses(images, labels, spec);
      assertAll(`sweep ${label} vs full forward passes on CUDA`, [
        check(
          `sweep vs full forward ${label}`,
          fromSweep,
          full.loss,
          ownKernelsOnly ? tol(full.loss, 0, 0) : tol(full.loss, LOSS_ATOL, LOSS_RTOL),
        ),
        check(
          `sweep base vs full forward ${label}`,
          b.base,
          base.loss,
          ownKernelsOnly ? tol(base.loss, 0, 0) : tol(base.loss, LOSS_ATOL, LOSS_RTOL),
        ),
      ]);
      cpu.dispose();
      cuda.dispose();
    });
  }

  gpuTest(`training: 30 steps on 2,000 MNIST images from the same seed track each other${skipped}`, async () => {
    const data = await loadMnist();
    const n = 2000;
    const images = data.train.images.subarray(0, n * 784);
    const labels = data.train.labels.subarray(0, n);
    const dsCpu = await native.createDataset('cpu', images, labels);
    const dsCuda = await native.createDataset('cuda', images, labels);
    const cpu = native.createModel('cpu', 3);
    const cuda = native.createModel('cuda', 3);
    const order = Int32Array.from({ length: 30 * 64 }, (_, i) => (i * 619) % n);
    const cfg = { temperature: 1, dropoutRate: 0.5, dropoutSeed: 11 };
    const a = await cpu.trainSteps(dsCpu, order, 64, cfg, 0);
    const b = await cuda.trainSteps(dsCuda, order, 64, cfg, 0);
    expect(b.lossSum.length).toBe(30);
    const rel = Array.from(a.lossSum, (v, i) => Math.abs(b.lossSum[i] - v) / Math.abs(v));
    const early = Math.max(...rel.slice(0, 10));
    const last = rel[rel.length - 1];
    worst.set('training loss, steps 1-10 (rel. diff / 1e-3)', early / 1e-3);
    worst.set('training loss, step 30 (rel. diff / 5e-2)', last / 5e-2);
    if (early >= 1e-3 || last >= 5e-2) {
      throw new Error(
        `per-batch losses diverge: relative differences ${rel.map((r) => r.toExponential(1)).join(' ')}\n` +
          `cpu  ${Array.from(a.lossSum, (v) => v.toFixed(3)).join(' ')}\ncuda ${Array.from(b.lossSum, (v) => v.toFixed(3)).join(' ')}`,
      );
    }
    // The loss went down on both (the run trained).
    expect(a.lossSum[29]).toBeLessThan(a.lossSum[0]);
    expect(b.lossSum[29]).toBeLessThan(b.lossSum[0]);
    const pa = cpu.getParameters();
    const pb = cuda.getParameters();
    const comparisons = LAYOUT.map((t) => {
      const ref = pa.subarray(t.offset, t.offset + t.size);
      return check(`params after 30 steps ${t.name}`, pb.subarray(t.offset, t.offset + t.size), ref, tol(ref, 1e-2, 1e-1));
    });
    assertAll('parameters after 30 steps (atol 1e-2 * max, rtol 1e-1)', comparisons);
    dsCpu.dispose();
    dsCuda.dispose();
    cpu.dispose();
    cuda.dispose();
  });

  gpuTest(`evaluate and predict on a resident data set agree with the CPU${skipped}`, async () => {
    const n = 300;
    const images = makeImages(n, 107);
    const labels = makeLabels(n, 108);
    const { cpu, cuda } = pair(PARAMS);
    const dsCpu = await native.createDataset('cpu', images, labels);
    const dsCuda = await native.createDataset('cuda', images, labels);
    const a = await cpu.evaluate(dsCpu, 0, n, 2, true);
    const b = await cuda.evaluate(dsCuda, 0, n, 2, true);
    const pa = await cpu.predict(images);
    const pb = await cuda.predict(images);
    assertAll('evaluate / predict', [
      check('evaluate logits', b.logits!, a.logits!, tol(a.logits!, TRACE_ATOL, TRACE_RTOL), [10]),
      check('predict logits', pb, pa, tol(pa, TRACE_ATOL, TRACE_RTOL), [10]),
      check('evaluate loss sum', [b.lossSum], [a.lossSum], { atol: 0, rtol: LOSS_RTOL }),
    ]);
    expect(b.count).toBe(n);
    dsCpu.dispose();
    dsCuda.dispose();
    cpu.dispose();
    cuda.dispose();
  });

  gpuTest(`errors come back as Errors with codes, and the backend keeps working${skipped}`, async () => {
    const m = native.createModel('cuda', 1);
    expect(() => m.setParameters(new Float32Array(3))).toThrow();
    const e = await caughtAsync(() => m.predict(new Float32Array(783)));
    expect(e.code).toBeDefined();
    const ok = await m.predict(IMAGES.subarray(0, 784));
    expect(ok.length).toBe(10);
    m.dispose();
  });
});
