// The experiment: profiles (what runs) -> pieces (reuse of finished parts, with their
// commit) -> results (the results.json schema) -> figures / pictures (computed by the run)
// -> run (the pipeline); render turns a results object into the report, and load reads one
// back. Imports go one way: render never imports run.
export {
  PROFILES,
  PROFILE_NAMES,
  ATTACK_SETTINGS,
  ALGORITHMS,
  modelSpecs,
  trainingKey,
  resolveProfile,
  HOT_START_MEASUREMENT,
  hotStartSentence,
} from './profiles';
export type { ProfileName, ExperimentProfile, ModelId, ModelSpec, AttackSetting, AttackSettingId } from './profiles';
export { codeVersion } from './pieces';
export type { CodeVersion, Provenance } from './pieces';
export { RESULTS_FORMAT_VERSION } from './results';
export type { ExperimentResults, ModelResult, AttackRow, StageTime, FigureRecord, PictureGrid, PictureCell } from './results';
export { budgetCurve, reproduceFigures } from './figures';
export { parseResults, parseAnyResults, readResults } from './load';
export { renderReport, writeRendered } from './render';
export type { RenderedReport } from './render';
export { reproduce, planReproduce, runReproducePiece, mergeReproduce, reproducePieces, machineDescription } from './run';
export type { ReproduceOptions, PlanReproduceOptions, PlannedRunOptions, ReproducePlanOptions, ExperimentEvent, StoredAttack } from './run';
export { study, planStudy, runStudyPiece, mergeStudy, studyPieces, STUDY_SAMPLE_SEED } from './study/run';
export type { StudyOptions, PlanStudyOptions, StudyDataSource, StudyPlanOptions } from './study/run';
export { readPlan, planFile, withPieceLock, PLAN_FORMAT, PLAN_FORMAT_VERSION } from './plan';
export type { Plan, PlanPiece, PlanStage, LockOptions, PieceOutcomeSummary, PlanDataSource } from './plan';
export { runPlannedPiece, mergePlanned } from './planned';
export { STUDY_ATTACKS, STUDY_ATTACK_IDS, STUDY_PROFILES, STUDY_PROBES, resolveStudyProfile, trainingSettings } from './study/profiles';
export type { StudyProfile, StudyProfileName, StudyAttack } from './study/profiles';
export type { StudyResults, StudyModel, StudyAttackRow } from './study/results';
export type { AnyResults } from './results';
