// tempered k8s DIR: DIR/plan.json as Kubernetes Indexed Jobs, one per stage (lib/cluster/k8s.ts).
import * as path from 'path';
import { Command } from 'commander';
import { type K8sOptions, writeK8sManifests } from '../../cluster/k8s';
import { readPlan } from '../../experiment';
import { output, parseInteger } from '../common';

type K8sCliOptions = K8sOptions & { json?: boolean };

export function k8sCommand(): Command {
  return new Command('k8s')
    .description(
      'write one Kubernetes Indexed Job (batch/v1) per stage of DIR/plan.json, pod k running piece k, and apply.sh that applies them in order; the folder lives on the claim --pvc',
    )
    .argument('<dir>', "the folder holding plan.json ('study --plan' or 'reproduce --plan')")
    .requiredOption('--image <image>', 'a container image with tempered installed')
    .requiredOption('--pvc <name>', 'the PersistentVolumeClaim holding the study folder, mounted by every pod')
    .option('--mount-path <path>', 'where the claim is mounted in the pods', '/data')
    .option('--pod-dir <path>', 'the study folder inside the pods (default <mount-path>/<basename of DIR>)')
    .option('--tempered <command>', 'how the image starts tempered', 'tempered')
    .option('--max-parallel <k>', 'pods of a stage at once', parseInteger('--max-parallel', 1))
    .option('--gpus-per-task <n>', 'nvidia.com/gpu limit of each pod', parseInteger('--gpus-per-task', 1))
    .option('--retries <n>', 'retries of one index (backoffLimitPerIndex)', parseInteger('--retries', 0))
    .option('--namespace <name>', 'namespace of the Jobs')
    .option('--name <prefix>', 'Job names start with this (default tempered-<basename of DIR>)')
    .option('--json', 'machine-readable output')
    .action(async (dir: string, o: K8sCliOptions) => {
      const plan = await readPlan(path.resolve(dir));
      const { folder, jobs } = await writeK8sManifests(plan, dir, o);
      output(o, { folder, jobs: jobs.map((j) => ({ file: j.file, jobName: j.jobName })) }, [
        `wrote ${jobs.length} Job manifests and apply.sh in ${folder}:`,
        ...jobs.map((j) => `  ${j.file}: job ${j.jobName}`),
        `apply in order with: bash ${path.join(folder, 'apply.sh')}`,
      ]);
    });
}
