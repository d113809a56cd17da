// Kubernetes glue: one pod per node, run as an Indexed Job with a headless Service.
//
// The master-address convention (the same one `atscale launch --emit kubernetes` sets up):
// an Indexed Job's pod gets the host name `<job>-<index>`, and a pod whose `subdomain` names a
// headless Service in its namespace is resolvable as `<hostname>.<service>`. So node 0 is
//
//     <job>-0.<service>
//
// where <job> comes from ATSCALE_K8S_JOB (else from HOSTNAME with its `-<index>` suffix
// removed) and <service> from ATSCALE_K8S_SERVICE (else the job name). The Service must set
// publishNotReadyAddresses, because pods are not Ready while they wait for each other.

export type Env = Record<string, string | undefined>;

/** The job name, from ATSCALE_K8S_JOB or from the pod's host name `<job>-<index>`. */
export function kubernetesJobName(env: Env, index: number): string {
  if (env.ATSCALE_K8S_JOB) return env.ATSCALE_K8S_JOB;
  const host = env.HOSTNAME ?? '';
  const suffix = `-${index}`;
  if (host.length > suffix.length && host.endsWith(suffix)) return host.slice(0, -suffix.length);
  throw new Error(
    `cannot find the Kubernetes job name: set ATSCALE_K8S_JOB, or run in an Indexed Job pod whose HOSTNAME is '<job>-${index}' (HOSTNAME is '${host}'), or pass --master-addr`,
  );
}

/** Node 0's address under the convention above. */
export function kubernetesMasterAddr(env: Env, index: number): string {
  const job = kubernetesJobName(env, index);
  const service = env.ATSCALE_K8S_SERVICE || job;
  return `${job}-0.${service}`;
}
