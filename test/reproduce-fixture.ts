// A fixed results object of `tempered reproduce` (no training, no attack) for the report tests.
import { reproduceFigures, RESULTS_FORMAT_VERSION } from '../lib/experiment';
import type { ExperimentResults } from '../lib/experiment';
import { PROFILES } from '../lib/experiment/profiles';

// A 2x2 PNG (base64): any valid image does for a tile.
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg==';

export function attack(
  model: 'std' | 'stdT' | 'distill',
  setting: 'xent32' | 'xent64' | 'margin',
  wins: number[],
  attacked: number,
  allZero = 0,
) {
  const budget = 4;
  const byBudget = [1, 2, 3, 4].map((k) => wins.filter((p) => p <= k).length / attacked);
  return {
    algorithm: 'alg2' as const,
    budget,
    temperature: 1,
    loss: setting === 'margin' ? ('margin' as const) : ('xent' as const),
    precision: setting === 'xent32' ? ('float32' as const) : ('float64' as const),
    samples: 10,
    attacked,
    successes: wins.length,
    successRate: wins.length / attacked,
    interval: { low: 0.1, high: 0.9 },
    meanPixels: wins.length ? wins.reduce((a, b) => a + b, 0) / wins.length : undefined,
    medianPixels: wins.length ? wins[Math.floor(wins.length / 2)] : undefined,
    successRateByBudget: byBudget,
    allZeroSaliency: allZero,
    seconds: 1.25,
    model,
    setting,
    commonSuccessRate: wins.length / attacked,
    commonAttacked: attacked,
    producedBy: { commit: 'a'.repeat(40), dirty: false },
  };
}

export function fixture(): ExperimentResults {
  const profile = { ...PROFILES.quick, name: 'quick (modified)', epochs: 2, budget: 4, samples: 10, alg4Samples: 0, pictures: 1 };
  const model = (id: 'std' | 'stdT' | 'distill', name: string, acc: number) => ({
    id,
    name,
    file: `models/${id}.safetensors`,
    trainingTemperature: id === 'std' ? 1 : 20,
    testAccuracy: acc,
    testLoss: 0.1,
    paperAccuracy: 0.99,
    epochs: 2,
    lossScale: id === 'std' ? 1 : 20,
    learningRate: id === 'std' ? 0.1 : 0.02,
    reused: false,
    trainSeconds: 12.5,
    history: [
      { epoch: 1, trainLoss: 0.9, trainAccuracy: 0.7, validationAccuracy: 0.91, validationLoss: 0.3, seconds: 6, samplesPerSecond: 100 },
      { epoch: 2, trainLoss: 0.4, trainAccuracy: 0.9, validationAccuracy: 0.95, validationLoss: 0.2, seconds: 6, samplesPerSecond: 100 },
    ],
    trainedBy: { commit: 'b'.repeat(40), dirty: true },
  });
  const models = [model('std', 'M_std', 0.9512), model('stdT', 'M_std-T', 0.9433), model('distill', 'M_distill', 0.9301)];
  const attacks = [
    attack('std', 'xent32', [1, 2, 2, 4], 9),
    attack('stdT', 'xent32', [], 8, 8),
    attack('distill', 'xent32', [3], 9, 7),
    attack('std', 'xent64', [1, 2], 9),
    attack('stdT', 'xent64', [2], 8),
    attack('distill', 'xent64', [3, 3], 9),
    attack('std', 'margin', [1, 1, 2], 9),
    attack('stdT', 'margin', [1, 2, 3, 4], 8),
    attack('distill', 'margin', [1], 9),
  ];
  const row = {
    loss: 'xent' as const,
    temperature: 1,
    precision: 'float32' as const,
    samples: 7,
    meanAbs: 1.5e-5,
    maxAbs: 2e-3,
    medianSampleMax: 1e-4,
    zeroSamples: 1,
    zeroFraction: 1 / 7,
    subnormalSamples: 0,
    meanLoss: 0.05,
  };
  const base = { attacks, models, profile };
  return {
    formatVersion: RESULTS_FORMAT_VERSION,
    kind: 'reproduce',
    tool: 'tempered 0.1.0',
    code: { commit: 'a'.repeat(40), dirty: false, source: 'env' },
    reuseOtherCommits: false,
    profile,
    seed: 5,
    createdAt: '2025-01-01T00:00:00.000Z',
    machine: { device: 'test CPU', backend: 'cpu', threads: 2, isa: 'avx2' },
    data: { fingerprint: 'f'.repeat(64), description: 'fixture', split: 'paper' },
    models,
    samples: { indices: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], alg4Indices: [], correctByAll: 7, evaluationTemperature: 1, pictureIndices: [3] },
    attacks,
    gradients: models.map((m) => ({ model: m.id, rows: [row], producedBy: { commit: 'a'.repeat(40), dirty: false } })),
    stages: [
      { stage: 'train', label: 'train M_std', seconds: 12.5, reused: true, producedBy: { commit: 'b'.repeat(40), dirty: true } },
      {
        stage: 'attack',
        label: 'alg2 xent32 on M_std',
        seconds: 1.25,
        reused: false,
        producedBy: { commit: 'a'.repeat(40), dirty: false },
      },
    ],
    figures: reproduceFigures(base),
    pictures: [
      {
        id: 'saliency-stdT',
        model: 'stdT',
        kind: 'saliency',
        file: 'pictures/saliency-stdT.png',
        caption: 'fixture saliency',
        columns: ['S1, xent32', 'S2, xent32'],
        rows: [
          {
            label: 'test image 3 (label 1)',
            cells: [
              { png: PNG, note: 'zero everywhere (masked)', allZero: true },
              { png: PNG, note: 'max 1.00e-3' },
            ],
          },
        ],
      },
    ],
    seconds: 60,
  };
}
