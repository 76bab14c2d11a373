// Checks a study's results.json before it is rendered: a damaged file is refused with a coded error.
import { STUDY_ATTACK_IDS } from './profiles';
import type { StudyResults } from './results';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function checkStudyResults(raw: Record<string, unknown>, damaged: (why: string) => Error): StudyResults {
  const need = (ok: boolean, what: string) => {
    if (!ok) throw damaged(what);
  };
  const r = raw as unknown as StudyResults;
  need(
    isObject(r.profile) && Array.isArray(r.profile.temperatures) && Array.isArray(r.profile.attacks),
    'profile is missing or incomplete',
  );
  need(
    r.profile.attacks.every((id) => STUDY_ATTACK_IDS.includes(id)),
    'profile.attacks names an unknown attack',
  );
  need(Array.isArray(r.seeds) && Array.isArray(r.trainingSettings) && Array.isArray(r.probes), 'seeds or training settings are missing');
  need(isObject(r.machine) && isObject(r.data) && isObject(r.samples) && isObject(r.code), 'machine, data, samples or code is missing');
  need(
    Array.isArray(r.models) && r.models.every((m) => isObject(m) && typeof m.name === 'string' && typeof m.temperature === 'number'),
    'models are damaged',
  );
  need(
    Array.isArray(r.attacks) &&
      r.attacks.every(
        (a) =>
          isObject(a) &&
          typeof a.attack === 'string' &&
          typeof a.attacked === 'number' &&
          typeof a.successes === 'number' &&
          isObject(a.interval),
      ),
    'attacks are damaged',
  );
  need(Array.isArray(r.gradients) && r.gradients.every((g) => isObject(g) && Array.isArray(g.rows)), 'gradients are damaged');
  need(Array.isArray(r.stages) && Array.isArray(r.figures), 'stages or figures are missing');
  need(
    r.figures.every((f) => isObject(f) && typeof f.id === 'string' && /^[\w.-]+$/.test(f.id) && isObject(f.spec)),
    'figures are damaged',
  );
  // Results written before the probes recorded their length: every probe then took one epoch on 20,000 images.
  r.probes = r.probes.map((p) => ({ ...p, epochs: p.epochs ?? 1, trainImages: p.trainImages ?? 20000 }));
  // Results written before PGD's and FGSM's step counts were reported as steps held them as meanPixels.
  r.attacks = r.attacks.map((a) => {
    if (a.settings?.budgetUnit !== 'steps' || a.meanSteps !== undefined || a.meanPixels === undefined) return a;
    const { meanPixels, medianPixels, ...rest } = a;
    return { ...rest, meanSteps: meanPixels, medianSteps: medianPixels };
  });
  return r;
}
