// `tempered k8s DIR --image IMAGE --pvc NAME`: DIR/plan.json as Kubernetes Indexed Jobs
// (batch/v1, completionMode: Indexed), one per stage: pod k runs the stage's k-th piece, its
// index from JOB_COMPLETION_INDEX. Kubernetes has no dependencies between Jobs, so apply.sh
// applies them one after the other, waiting for each to complete. The study folder lives on
// the persistent volume claim NAME, which every pod mounts. Written as JSON, which kubectl
// reads as it reads YAML. Tested against the batch/v1 fields only: no cluster ran them here.
import * as fs from 'fs';
import * as path from 'path';
import { TemperedError } from '../errors';
import { writeFileAtomic } from '../fsutil';
import type { Plan } from '../experiment/plan';
import { clusterFolder, shellQuote } from './common';

export interface K8sOptions {
  image: string;
  pvc: string;
  /** Where the claim is mounted in each pod (default /data). */
  mountPath?: string;
  /** The study folder inside the pod (default <mountPath>/<basename of DIR>). */
  podDir?: string;
  /** How the image starts tempered (default `tempered`, on its PATH), split on spaces. */
  tempered?: string;
  /** Pods of a stage at once (default: all of them). */
  maxParallel?: number;
  gpusPerTask?: number;
  /** Retries of one index before the Job gives it up (default 3). */
  retries?: number;
  namespace?: string;
  /** Job names start with this (default tempered-<basename of DIR>). */
  name?: string;
}

/** A DNS-1123 label: lower-case letters, digits and '-', starting and ending with an alphanumeric. */
const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function label(text: string, max: number): string {
  const slug = text
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, max)
    .replace(/-+$/g, '');
  return slug || 'x';
}

export interface K8sJobFile {
  file: string;
  jobName: string;
  manifest: Record<string, unknown>;
}

export function k8sManifests(plan: Plan, dir: string, o: K8sOptions): K8sJobFile[] {
  if (typeof o.image !== 'string' || o.image.trim() === '' || /\s/.test(o.image))
    throw new TemperedError('TEMPERED_OUT_OF_RANGE', `--image must be an image reference (got '${String(o.image)}')`);
  if (typeof o.pvc !== 'string' || !LABEL.test(o.pvc) || o.pvc.length > 253)
    throw new TemperedError('TEMPERED_OUT_OF_RANGE', `--pvc must be the name of a PersistentVolumeClaim (got '${String(o.pvc)}')`);
  for (const [name, value] of [
    ['--max-parallel', o.maxParallel],
    ['--gpus-per-task', o.gpusPerTask],
  ] as const)
    if (value !== undefined && (!Number.isInteger(value) || value < 1))
      throw new TemperedError('TEMPERED_OUT_OF_RANGE', `${name} must be a positive integer (got ${value})`);
  const out = path.resolve(dir);
  const mountPath = o.mountPath ?? '/data';
  const podDir = o.podDir ?? path.posix.join(mountPath, path.basename(out));
  const command = (o.tempered ?? 'tempered').split(' ').filter(Boolean);
  // Job names are labels of at most 63 characters; the stage name goes at the end.
  const prefix = label(o.name ?? `tempered-${path.basename(out)}`, 40);
  const metadata = (jobName: string, stage: string) => ({
    name: jobName,
    ...(o.namespace ? { namespace: o.namespace } : {}),
    labels: { 'app.kubernetes.io/name': 'tempered', 'tempered.dev/stage': label(stage, 63) },
  });
  const container = (args: string[], gpus: number | undefined) => ({
    name: 'tempered',
    image: o.image,
    command,
    args,
    volumeMounts: [{ name: 'study', mountPath }],
    ...(gpus ? { resources: { limits: { 'nvidia.com/gpu': gpus } } } : {}),
  });
  const volumes = [{ name: 'study', persistentVolumeClaim: { claimName: o.pvc } }];
  const jobs: K8sJobFile[] = [];
  plan.stages.forEach((stage, k) => {
    if (stage.pieces.length === 0) return;
    const jobName = `${prefix}-${label(stage.name, 63 - prefix.length - 1)}`;
    jobs.push({
      file: `${String(k + 1).padStart(2, '0')}-${stage.name}.json`,
      jobName,
      manifest: {
        apiVersion: 'batch/v1',
        kind: 'Job',
        metadata: metadata(jobName, stage.name),
        spec: {
          completionMode: 'Indexed',
          completions: stage.pieces.length,
          parallelism: Math.min(o.maxParallel ?? stage.pieces.length, stage.pieces.length),
          // A pod killed mid-piece is retried on its own index; the others are not touched.
          backoffLimitPerIndex: o.retries ?? 3,
          template: {
            metadata: { labels: { 'app.kubernetes.io/name': 'tempered' } },
            spec: {
              restartPolicy: 'Never',
              containers: [
                container(['run-piece', podDir, '--stage', stage.name, '--index-env', 'JOB_COMPLETION_INDEX', '--quiet'], o.gpusPerTask),
              ],
              volumes,
            },
          },
        },
      },
    });
  });
  const reportName = `${prefix}-report`;
  jobs.push({
    file: `${String(plan.stages.length + 1).padStart(2, '0')}-report.json`,
    jobName: reportName,
    manifest: {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: metadata(reportName, 'report'),
      spec: {
        completions: 1,
        parallelism: 1,
        backoffLimit: o.retries ?? 3,
        template: {
          metadata: { labels: { 'app.kubernetes.io/name': 'tempered' } },
          spec: { restartPolicy: 'Never', containers: [container(['report', podDir], undefined)], volumes },
        },
      },
    },
  });
  return jobs;
}

/** Writes DIR/k8s/NN-<stage>.json and apply.sh, which applies them in order and waits for each. */
export async function writeK8sManifests(plan: Plan, dir: string, o: K8sOptions): Promise<{ folder: string; jobs: K8sJobFile[] }> {
  const jobs = k8sManifests(plan, dir, o);
  const folder = clusterFolder(dir, 'k8s');
  fs.mkdirSync(folder, { recursive: true });
  for (const j of jobs) await writeFileAtomic(path.join(folder, j.file), JSON.stringify(j.manifest, null, 2) + '\n');
  const ns = o.namespace ? ` -n ${shellQuote(o.namespace)}` : '';
  const apply = [
    '#!/bin/bash',
    "# The stages one after the other: Kubernetes Jobs have no dependencies. Written by 'tempered k8s'.",
    'set -euo pipefail',
    `cd ${shellQuote(folder)}`,
    ...jobs.map((j) => `kubectl${ns} apply -f ${j.file}\nkubectl${ns} wait --for=condition=complete --timeout=-1s job/${j.jobName}`),
    '',
  ].join('\n');
  await writeFileAtomic(path.join(folder, 'apply.sh'), apply);
  fs.chmodSync(path.join(folder, 'apply.sh'), 0o755);
  return { folder, jobs };
}
