// results.json: the schema every report is rendered from. Version 1 (no formatVersion) is
// what reproduce wrote before figures, stage times and commits existed; load.ts migrates it.
import type { ArchSpec } from '../arch';
import type { Diagnosis } from '../diagnose';
import type { AttackSummary } from '../attack';
import type { GradientStatsRow } from '../gradients';
import type { EpochRecord } from '../train';
import type { CodeVersion } from './pieces';
import type { AttackSettingId, ExperimentProfile, ModelId } from './profiles';
import type { StudyResults } from './study/results';

export const RESULTS_FORMAT_VERSION = 2;

/** A commit as people read it: 10 hex digits, "+dirty" when the tree had changes. */
export const shortCommit = (c: { commit: string; dirty?: boolean }) =>
  `${/^[0-9a-f]{40}$/.test(c.commit) ? c.commit.slice(0, 10) : c.commit}${c.dirty ? '+dirty' : ''}`;

/** Which commit produced a piece (null: before commits were recorded). */
export interface PieceCommit {
  commit: string;
  dirty: boolean;
}

export interface ModelResult {
  id: ModelId;
  name: string;
  file: string;
  trainingTemperature: number;
  testAccuracy: number;
  testLoss: number;
  paperAccuracy: number;
  epochs: number;
  lossScale: number;
  learningRate: number;
  reused: boolean;
  trainSeconds?: number;
  /** Per-epoch training loss and validation accuracy (from the model file's metadata). */
  history: EpochRecord[];
  trainedBy: PieceCommit | null;
}

export type AttackRow = AttackSummary & {
  model: ModelId;
  setting: AttackSettingId;
  commonSuccessRate?: number;
  commonAttacked?: number;
  producedBy?: PieceCommit | null;
};

export interface GradientResult {
  model: ModelId;
  rows: GradientStatsRow[];
  producedBy?: PieceCommit | null;
}

/** The masking diagnosis of one model (lib/diagnose.ts). */
export interface DiagnosisResult {
  model: ModelId;
  diagnosis: Diagnosis;
  producedBy: PieceCommit | null;
}

export interface StageTime {
  stage: 'train' | 'attack' | 'gradients' | 'pictures' | 'diagnose' | 'render';
  label: string;
  seconds: number;
  /** Found done in the folder: the time is the one recorded when it was computed. */
  reused: boolean;
  producedBy: PieceCommit | null;
  /** Stages that ran at the same time as this one (their seconds overlap): M_std and M_std-T trained side by side. */
  alongside?: string[];
}

/** A Vega-Lite figure: the spec holds its data inline, so it can be re-plotted as is. */
export interface FigureRecord {
  id: string;
  title: string;
  caption: string;
  /** A text alternative generated from the figure's numbers. */
  alt: string;
  spec: Record<string, unknown>;
}

export interface PictureCell {
  /** A PNG (base64), one pixel per MNIST pixel; the page scales it. */
  png: string;
  /** What the tile shows, e.g. the prediction after the attack. */
  note: string;
  outcome?: 'success' | 'failure' | 'not-attacked';
  /** A saliency map that is zero everywhere (masked). */
  allZero?: boolean;
}

export interface PictureGrid {
  id: string;
  model: ModelId;
  kind: 'adversarial' | 'saliency';
  /** The same grid as one PNG, relative to the results folder. */
  file: string;
  caption: string;
  columns: string[];
  rows: { label: string; cells: (PictureCell | null)[] }[];
}

export interface ExperimentResults {
  formatVersion: number;
  kind: 'reproduce';
  tool: string;
  /** The code that wrote this file; each piece records its own producer below. */
  code: CodeVersion;
  reuseOtherCommits: boolean;
  profile: ExperimentProfile;
  seed: number;
  createdAt: string;
  machine: Record<string, unknown>;
  data: { fingerprint: string; description: string; split: string };
  /** The network of the models (absent in files written before: the paper's). */
  arch?: { name: string; spec: ArchSpec };
  models: ModelResult[];
  samples: { indices: number[]; alg4Indices: number[]; correctByAll: number; evaluationTemperature: number; pictureIndices?: number[] };
  attacks: AttackRow[];
  gradients: GradientResult[];
  /** Absent in files written before the diagnosis existed (and with diagnosisSamples 0). */
  diagnoses?: DiagnosisResult[];
  stages: StageTime[];
  figures: FigureRecord[];
  pictures: PictureGrid[];
  seconds: number;
}

/** Any experiment's results.json, told apart by `kind`. */
export type AnyResults = ExperimentResults | StudyResults;
