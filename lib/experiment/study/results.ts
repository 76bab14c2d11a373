// results.json of `tempered study` (kind 'study'): every model with its training settings
// and accuracy, one row per (attack, model) with its counts and 95% Wilson interval, the
// gradient statistics, the stage times and the figures. Rendered by render/ like reproduce's.
import type { ArchSpec } from '../../arch';
import type { Diagnosis } from '../../diagnose';
import type { GradientStatsRow } from '../../gradients';
import type { EpochRecord } from '../../train';
import type { CodeVersion } from '../pieces';
import type { FigureRecord, PieceCommit, StageTime } from '../results';
import type { StudyProfile } from './profiles';

export type StudyModelKind = 'stdT' | 'distill';

export interface StudyModel {
  /** e.g. 'T20-s0-distill': also the model's file name in models/. */
  id: string;
  kind: StudyModelKind;
  /** M_std-T (M_std at T = 1) or M_distill(T). */
  name: string;
  temperature: number;
  seed: number;
  lossScale: number;
  learningRate: number;
  epochs: number;
  /** Trained and evaluated; 'near-chance': trained, below the profile's nearChance at T = 1, never attacked; 'teacher-near-chance': not trained. */
  status: 'ok' | 'near-chance' | 'teacher-near-chance';
  file?: string;
  testAccuracy?: number;
  testLoss?: number;
  reused: boolean;
  trainSeconds?: number;
  history: EpochRecord[];
  trainedBy: PieceCommit | null;
}

export interface StudyAttackRow {
  attack: string;
  model: string;
  kind: StudyModelKind;
  temperature: number;
  seed: number;
  /** Attacked samples (transfers: crafted on M_std and classified correctly by this model). */
  attacked: number;
  successes: number;
  successRate: number;
  interval: { low: number; high: number };
  /** Algorithm 2 and JSMA: success within the common budget of 100 changed pixels. */
  common?: { budget: number; successes: number; successRate: number; interval: { low: number; high: number } };
  allZeroSaliency?: number;
  /** Pixel attacks: pixels changed among successes. */
  meanPixels?: number;
  medianPixels?: number;
  /** PGD, FGSM and Carlini-Wagner L2: gradient steps among successes. */
  meanSteps?: number;
  medianSteps?: number;
  /** Square: queries among successes. */
  meanQueries?: number;
  medianQueries?: number;
  /** Carlini-Wagner L2: ||adversarial - original||_2 among successes. */
  meanL2?: number;
  medianL2?: number;
  /** Transfers: the samples whose crafted image also fooled M_std. */
  sourceSuccesses?: number;
  /** The attack's resolved settings (evaluation temperature included). */
  settings: Record<string, unknown>;
  seconds: number;
  producedBy: PieceCommit | null;
}

export interface StudyGradients {
  model: string;
  kind: StudyModelKind;
  temperature: number;
  seed: number;
  rows: GradientStatsRow[];
  producedBy: PieceCommit | null;
}

/** Worst-case robust accuracy of a model over the study's L-infinity attacks at epsilon (AutoAttack's rule). */
export interface StudyWorstCase {
  model: string;
  kind: StudyModelKind;
  temperature: number;
  seed: number;
  epsilon: number;
  /** The study attacks counted (those at this radius that the study ran, transfers included). */
  attacks: string[];
  /** All the study's samples: a sample is robust when the model classifies it correctly and none of the attacks fooled it. */
  samples: number;
  robust: number;
  robustAccuracy: number;
  interval: { low: number; high: number };
}

/** The masking diagnosis of a model (lib/diagnose.ts). */
export interface StudyDiagnosis {
  model: string;
  kind: StudyModelKind;
  temperature: number;
  seed: number;
  diagnosis: Diagnosis;
  producedBy: PieceCommit | null;
}

export interface StudyResults {
  formatVersion: number;
  kind: 'study';
  tool: string;
  code: CodeVersion;
  reuseOtherCommits: boolean;
  profile: StudyProfile;
  seeds: number[];
  createdAt: string;
  machine: Record<string, unknown>;
  data: { fingerprint: string; description: string; split: string };
  /** The network of the models (absent in files written before: the paper's). */
  arch?: { name: string; spec: ArchSpec };
  /** The training settings at each temperature (both model kinds). */
  trainingSettings: { temperature: number; lossScale: number; learningRate: number }[];
  /** Probes that chose them. */
  probes: { temperature: number; lossScale: number; learningRate: number; epochs: number; trainImages: number; testAccuracy: number }[];
  models: StudyModel[];
  samples: { indices: number[]; seed: number; evaluationTemperature: number };
  attacks: StudyAttackRow[];
  gradients: StudyGradients[];
  /** Absent in files written before it existed. */
  worstCase?: StudyWorstCase[];
  diagnoses?: StudyDiagnosis[];
  stages: StageTime[];
  figures: FigureRecord[];
  seconds: number;
}
