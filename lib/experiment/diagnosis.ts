// The masking diagnosis (lib/diagnose.ts) as a piece of an experiment: one per model, on the
// first samples of the experiment's draw, keyed by the model's parameters, the surrogate, the
// samples, the seed and the battery this build runs (so a build whose registry gained an
// attack recomputes it). Shared by reproduce and study.
import { availableSteps, diagnose, Diagnosis, DiagnoseProgress } from '../diagnose';
import { parametersHash } from '../distill';
import type { MnistData } from '../mnist';
import type { Model } from '../model';
import type { Piece } from './pieces';

/** The radius of every experiment's diagnosis: the study's and reproduce's PGD epsilon. */
export const DIAGNOSIS_EPSILON = 0.3;
/** The diagnosis' own surrogate (when the experiment has no M_std to serve): at most this many training images, one epoch. */
export const DIAGNOSIS_SURROGATE_IMAGES = 10000;

export interface StoredDiagnosis extends Piece {
  diagnosis: Diagnosis;
}

export interface DiagnosisPieceInputs {
  indices: number[];
  seed: number;
  /** The experiment's M_std serves as the transfer's surrogate, else one is trained (on at most trainLimit images). */
  surrogate?: Model;
  trainLimit?: number;
}

const surrogateImages = (trainLimit: number | undefined) => Math.min(DIAGNOSIS_SURROGATE_IMAGES, trainLimit ?? DIAGNOSIS_SURROGATE_IMAGES);

export function diagnosisKey(model: Model, i: DiagnosisPieceInputs): string {
  return JSON.stringify({
    model: parametersHash(model),
    surrogate: i.surrogate ? parametersHash(i.surrogate) : { images: surrogateImages(i.trainLimit), epochs: 1 },
    samples: i.indices,
    seed: i.seed,
    epsilon: DIAGNOSIS_EPSILON,
    battery: availableSteps().map((s) => s.id),
  });
}

export async function runDiagnosisPiece(
  model: Model,
  data: MnistData,
  i: DiagnosisPieceInputs,
  onProgress: (p: DiagnoseProgress) => void,
): Promise<Omit<StoredDiagnosis, 'key' | 'produced'>> {
  const diagnosis = await diagnose(model, {
    data,
    samples: i.indices,
    seed: i.seed,
    epsilon: DIAGNOSIS_EPSILON,
    surrogate: i.surrogate,
    surrogateImages: surrogateImages(i.trainLimit),
    onProgress,
  });
  return { diagnosis };
}

/** A short account of a diagnosis for tables: verdict, rule, float32 zero-gradient share and worst case. */
export interface DiagnosisSummary {
  verdict: Diagnosis['verdict'];
  rule: string;
  fired: Diagnosis['fired'];
  notEvaluated: Diagnosis['notEvaluated'];
  zeroGradients: { zeroSamples: number; samples: number };
  worstCase: Diagnosis['worstCase'];
  samples: number;
}

export function summarizeDiagnosis(d: Diagnosis): DiagnosisSummary {
  const g = d.gradients.find((x) => x.temperature === d.settings.temperature && x.precision === 'float32');
  return {
    verdict: d.verdict,
    rule: d.rule,
    fired: d.fired,
    notEvaluated: d.notEvaluated,
    zeroGradients: { zeroSamples: g?.zeroSamples ?? 0, samples: g?.samples ?? 0 },
    worstCase: d.worstCase,
    samples: d.settings.samples,
  };
}
