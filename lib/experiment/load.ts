// Reading results.json back: files without a formatVersion (version 1) are migrated; an
// unknown version or a damaged file is refused with a coded error.
import * as fs from 'fs';
import { TemperedError } from '../errors';
import { reproduceFigures } from './figures';
import { AnyResults, ExperimentResults, ModelResult, RESULTS_FORMAT_VERSION, StageTime } from './results';
import { checkStudyResults } from './study/load';

function damaged(file: string, why: string): TemperedError {
  return new TemperedError('TEMPERED_BAD_FILE', `${file} is not a valid results.json: ${why}`);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Version 1 -> 2: no figures, stage times, commits or pictures were stored; the rest is computed from its numbers. */
function migrateV1(r: Record<string, unknown>): ExperimentResults {
  const models = (r.models as Record<string, unknown>[]).map(
    (m) => ({ ...m, history: Array.isArray(m.history) ? m.history : [], trainedBy: null }) as unknown as ModelResult,
  );
  const attacks = (r.attacks as ExperimentResults['attacks']).map((a) => ({ ...a, producedBy: null }));
  const stages: StageTime[] = [
    ...models
      .filter((m) => typeof m.trainSeconds === 'number')
      .map((m) => ({ stage: 'train' as const, label: `train ${m.name}`, seconds: m.trainSeconds!, reused: true, producedBy: null })),
    ...attacks.map((a) => ({
      stage: 'attack' as const,
      label: `${a.algorithm} ${a.setting} on ${models.find((m) => m.id === a.model)?.name ?? a.model}`,
      seconds: a.seconds,
      reused: true,
      producedBy: null,
    })),
  ];
  const base = { ...r, models, attacks } as unknown as ExperimentResults;
  return {
    ...base,
    formatVersion: RESULTS_FORMAT_VERSION,
    kind: 'reproduce',
    code: { commit: 'unknown (written before commits were recorded)', dirty: false, source: 'package' },
    reuseOtherCommits: false,
    gradients: base.gradients.map((g) => ({ ...g, producedBy: null })),
    stages,
    figures: reproduceFigures(base),
    pictures: [],
  };
}

function check(file: string, r: ExperimentResults): void {
  const need = (ok: boolean, what: string) => {
    if (!ok) throw damaged(file, what);
  };
  need(r.kind === 'reproduce', `unknown experiment kind '${String(r.kind)}'`);
  need(
    isObject(r.profile) && typeof r.profile.budget === 'number' && typeof r.profile.epochs === 'number',
    'profile is missing or incomplete',
  );
  need(isObject(r.machine) && isObject(r.data) && isObject(r.samples), 'machine, data or samples is missing');
  need(Array.isArray(r.samples.indices) && Array.isArray(r.samples.alg4Indices), 'samples.indices is missing');
  need(
    Array.isArray(r.models) && r.models.every((m) => isObject(m) && typeof m.name === 'string' && typeof m.testAccuracy === 'number'),
    'models are damaged',
  );
  need(
    Array.isArray(r.attacks) &&
      r.attacks.every(
        (a) => isObject(a) && typeof a.successRate === 'number' && typeof a.attacked === 'number' && Array.isArray(a.successRateByBudget),
      ),
    'attacks are damaged',
  );
  need(Array.isArray(r.gradients) && r.gradients.every((g) => isObject(g) && Array.isArray(g.rows)), 'gradients are damaged');
  need(Array.isArray(r.stages) && Array.isArray(r.figures) && Array.isArray(r.pictures), 'stages, figures or pictures are missing');
  need(
    r.figures.every((f) => isObject(f) && typeof f.id === 'string' && /^[\w.-]+$/.test(f.id) && isObject(f.spec)),
    'figures are damaged',
  );
  need(
    r.pictures.every((p) => isObject(p) && Array.isArray(p.columns) && Array.isArray(p.rows) && /^[\w.-]+$/.test(String(p.id))),
    'pictures are damaged',
  );
}

/** Parses, migrates and checks the text of a results.json (`file` names it in errors). */
export function parseResults(text: string, file = 'results.json'): ExperimentResults {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw damaged(file, (e as Error).message);
  }
  if (!isObject(raw)) throw damaged(file, 'not a JSON object');
  let r: ExperimentResults;
  if (raw.formatVersion === undefined) {
    if (!Array.isArray(raw.models) || !Array.isArray(raw.attacks) || !Array.isArray(raw.gradients))
      throw damaged(file, 'models, attacks or gradients are missing');
    r = migrateV1(raw);
  } else if (raw.formatVersion === RESULTS_FORMAT_VERSION) {
    r = raw as unknown as ExperimentResults;
  } else {
    throw new TemperedError(
      'TEMPERED_INCOMPATIBLE',
      `${file} has formatVersion ${JSON.stringify(raw.formatVersion)}; this version of tempered reads 1 to ${RESULTS_FORMAT_VERSION} (a newer tempered wrote it?)`,
    );
  }
  check(file, r);
  return r;
}

/** Any experiment's results.json: a study's (kind 'study') is checked by its own rules. */
export function parseAnyResults(text: string, file = 'results.json'): AnyResults {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw damaged(file, (e as Error).message);
  }
  if (isObject(raw) && raw.kind === 'study') {
    if (raw.formatVersion !== RESULTS_FORMAT_VERSION)
      throw new TemperedError(
        'TEMPERED_INCOMPATIBLE',
        `${file} has formatVersion ${JSON.stringify(raw.formatVersion)}; this version of tempered reads a study's ${RESULTS_FORMAT_VERSION}`,
      );
    return checkStudyResults(raw, (why) => damaged(file, why));
  }
  return parseResults(text, file);
}

export async function readResults(file: string): Promise<AnyResults> {
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch (e) {
    throw new TemperedError('TEMPERED_IO', `cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  return parseAnyResults(text, file);
}
