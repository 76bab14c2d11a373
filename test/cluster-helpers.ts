// What test/cluster.test.ts and test/slurm.test.ts share: the part of a study's results.json
// that a run piece by piece must reproduce exactly, and a structural validator of the
// batch/v1 Job fields that `tempered k8s` writes (no Kubernetes cluster is available here).

/**
 * results.json (a study's or reproduce's) without the fields that legitimately differ between a serial run and the
 * merge of pieces run as separate jobs: wall times (createdAt, seconds, stages[].seconds,
 * attacks[].seconds, models[].trainSeconds, models[].history[].seconds and
 * .samplesPerSecond, diagnoses[].diagnosis.createdAt, .seconds and .steps[].seconds) the reuse flags (models[].reused, stages[].reused: the merge reads
 * every piece, so it reports them reused), stages[].alongside (a serial reproduce trains two models side by side,
 * pieces train one each) and diagnoses[].diagnosis.backend's threads and device (a Slurm task runs on the cpus it
 * was given; the thread count never changes a number). Everything else, every number included, must match.
 */
export function comparableResults(results: Record<string, unknown>): unknown {
  const {
    createdAt: _c,
    seconds: _s,
    ...rest
  } = results as Record<string, unknown> & {
    models: Record<string, unknown>[];
    stages: Record<string, unknown>[];
    attacks: Record<string, unknown>[];
  };
  const r = rest as Record<string, unknown> & {
    models: Record<string, unknown>[];
    stages: Record<string, unknown>[];
    attacks: Record<string, unknown>[];
    diagnoses?: Record<string, unknown>[];
  };
  return {
    ...r,
    models: r.models.map(({ reused: _r, trainSeconds: _t, history, ...m }) => ({
      ...m,
      history: (history as Record<string, unknown>[]).map(({ seconds: _h, samplesPerSecond: _p, ...e }) => e),
    })),
    stages: r.stages.map(({ seconds: _h, reused: _r, alongside: _a, ...s }) => s),
    attacks: r.attacks.map(({ seconds: _h, ...a }) => a),
    ...(r.diagnoses ? { diagnoses: r.diagnoses.map(comparableDiagnosis) } : {}),
  };
}

/** A diagnosis (results.json's diagnoses[]) without its wall times (createdAt, seconds, steps[].seconds) and its thread count. */
function comparableDiagnosis({ diagnosis, ...rest }: Record<string, unknown>): unknown {
  const {
    createdAt: _c,
    seconds: _s,
    steps,
    backend,
    ...d
  } = diagnosis as Record<string, unknown> & {
    steps: Record<string, unknown>[];
    backend?: Record<string, unknown>;
  };
  const { threads: _t, device: _d, ...b } = backend ?? {};
  return { ...rest, diagnosis: { ...d, ...(backend ? { backend: b } : {}), steps: steps.map(({ seconds: _h, ...x }) => x) } };
}

type Json = Record<string, unknown>;

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const isObject = (x: unknown): x is Json => typeof x === 'object' && x !== null && !Array.isArray(x);
const isCount = (x: unknown, min = 0) => Number.isInteger(x) && (x as number) >= min;

/** The fields of each object that `tempered k8s` may use, as batch/v1 and core/v1 name them. */
const FIELDS: Record<string, string[]> = {
  job: ['apiVersion', 'kind', 'metadata', 'spec'],
  metadata: ['name', 'namespace', 'labels'],
  spec: ['completionMode', 'completions', 'parallelism', 'backoffLimit', 'backoffLimitPerIndex', 'template'],
  template: ['metadata', 'spec'],
  podSpec: ['restartPolicy', 'containers', 'volumes'],
  container: ['name', 'image', 'command', 'args', 'volumeMounts', 'resources', 'env'],
  volumeMount: ['name', 'mountPath'],
  volume: ['name', 'persistentVolumeClaim'],
};

function unknownFields(where: string, o: Json, kind: string, errors: string[]): void {
  for (const k of Object.keys(o)) if (!FIELDS[kind].includes(k)) errors.push(`${where}: unknown field ${k}`);
}

/**
 * The errors of a Job manifest against the rules of batch/v1 that concern the fields used:
 * names are DNS-1123 labels, Indexed needs completions, backoffLimitPerIndex needs Indexed
 * and restartPolicy Never, a Job pod never restarts Always, mounts name declared volumes.
 * An empty list: valid.
 */
export function validateIndexedJob(job: unknown, o: { indexed?: boolean } = {}): string[] {
  const errors: string[] = [];
  const indexed = o.indexed ?? true;
  if (!isObject(job)) return ['the manifest is not an object'];
  unknownFields('job', job, 'job', errors);
  if (job.apiVersion !== 'batch/v1') errors.push(`apiVersion: ${String(job.apiVersion)} is not batch/v1`);
  if (job.kind !== 'Job') errors.push(`kind: ${String(job.kind)} is not Job`);
  const metadata = job.metadata;
  if (!isObject(metadata)) errors.push('metadata: missing');
  else {
    unknownFields('metadata', metadata, 'metadata', errors);
    const name = metadata.name;
    if (typeof name !== 'string' || !LABEL.test(name) || name.length > 63)
      errors.push(`metadata.name: ${String(name)} is not a DNS-1123 label of at most 63 characters`);
    if (metadata.labels !== undefined && (!isObject(metadata.labels) || Object.values(metadata.labels).some((v) => typeof v !== 'string')))
      errors.push('metadata.labels: values must be strings');
  }
  const spec = job.spec;
  if (!isObject(spec)) return [...errors, 'spec: missing'];
  unknownFields('spec', spec, 'spec', errors);
  const mode = spec.completionMode ?? 'NonIndexed';
  if (mode !== 'NonIndexed' && mode !== 'Indexed') errors.push(`spec.completionMode: ${String(mode)} is not one of NonIndexed, Indexed`);
  if (indexed && mode !== 'Indexed' && (mode === 'NonIndexed' || mode === undefined)) errors.push('spec.completionMode: not Indexed');
  if (!isCount(spec.completions, 1)) errors.push(`spec.completions: ${String(spec.completions)} is not a positive integer`);
  if (spec.parallelism !== undefined && !isCount(spec.parallelism)) errors.push('spec.parallelism: not a non-negative integer');
  if (spec.backoffLimit !== undefined && !isCount(spec.backoffLimit)) errors.push('spec.backoffLimit: not a non-negative integer');
  if (spec.backoffLimitPerIndex !== undefined) {
    if (!isCount(spec.backoffLimitPerIndex)) errors.push('spec.backoffLimitPerIndex: not a non-negative integer');
    if (mode === 'NonIndexed') errors.push('spec.backoffLimitPerIndex: only with completionMode Indexed');
  }
  const template = spec.template;
  if (!isObject(template) || !isObject(template.spec)) return [...errors, 'spec.template.spec: missing'];
  unknownFields('spec.template', template, 'template', errors);
  const pod = template.spec;
  unknownFields('spec.template.spec', pod, 'podSpec', errors);
  if (pod.restartPolicy !== 'Never' && pod.restartPolicy !== 'OnFailure')
    errors.push(`spec.template.spec.restartPolicy: a Job pod restarts Never or OnFailure, not ${String(pod.restartPolicy)}`);
  if (spec.backoffLimitPerIndex !== undefined && pod.restartPolicy === 'OnFailure')
    errors.push('spec.backoffLimitPerIndex: needs restartPolicy Never');
  const volumes = Array.isArray(pod.volumes) ? (pod.volumes as unknown[]) : [];
  const volumeNames = new Set<string>();
  volumes.forEach((v, k) => {
    const where = `spec.template.spec.volumes[${k}]`;
    if (!isObject(v)) return errors.push(`${where}: not an object`);
    unknownFields(where, v, 'volume', errors);
    if (typeof v.name !== 'string' || !LABEL.test(v.name)) errors.push(`${where}.name: not a DNS-1123 label`);
    else volumeNames.add(v.name);
    const claim = v.persistentVolumeClaim;
    if (!isObject(claim) || typeof claim.claimName !== 'string' || claim.claimName === '')
      errors.push(`${where}.persistentVolumeClaim.claimName: missing`);
  });
  const containers = pod.containers;
  if (!Array.isArray(containers) || containers.length === 0) return [...errors, 'spec.template.spec.containers: none'];
  containers.forEach((c: unknown, k: number) => {
    const where = `spec.template.spec.containers[${k}]`;
    if (!isObject(c)) return errors.push(`${where}: not an object`);
    unknownFields(where, c, 'container', errors);
    if (typeof c.name !== 'string' || !LABEL.test(c.name)) errors.push(`${where}.name: not a DNS-1123 label`);
    if (typeof c.image !== 'string' || c.image === '') errors.push(`${where}.image: missing`);
    for (const list of ['command', 'args'] as const)
      if (c[list] !== undefined && (!Array.isArray(c[list]) || (c[list] as unknown[]).some((s) => typeof s !== 'string')))
        errors.push(`${where}.${list}: not a list of strings`);
    const mounts = c.volumeMounts === undefined ? [] : (c.volumeMounts as unknown[]);
    mounts.forEach((m, j) => {
      const at = `${where}.volumeMounts[${j}]`;
      if (!isObject(m)) return errors.push(`${at}: not an object`);
      unknownFields(at, m, 'volumeMount', errors);
      if (typeof m.name !== 'string' || !volumeNames.has(m.name)) errors.push(`${at}.name: ${String(m.name)} names no volume`);
      if (typeof m.mountPath !== 'string' || !m.mountPath.startsWith('/')) errors.push(`${at}.mountPath: not an absolute path`);
    });
    if (c.resources !== undefined) {
      const limits = isObject(c.resources) ? c.resources.limits : undefined;
      if (!isObject(limits) || Object.values(limits).some((v) => !isCount(v, 1) && typeof v !== 'string'))
        errors.push(`${where}.resources.limits: quantities must be positive integers or strings`);
    }
    if (indexed && !JSON.stringify([c.command, c.args]).includes('JOB_COMPLETION_INDEX'))
      errors.push(`${where}: the index (JOB_COMPLETION_INDEX) reaches neither command nor args`);
  });
  return errors;
}
