// Learning-rate schedules, evaluated on the host once per step (the value is fed to the graph).

export interface CosineSchedule {
  lr: number;
  minLr: number;
  warmupIters: number;
  decayIters: number;
}

/** Linear warmup, then cosine decay to minLr at decayIters, then flat (nanoGPT's get_lr). */
export function cosineLr(s: CosineSchedule, iter: number): number {
  if (iter < s.warmupIters) return (s.lr * (iter + 1)) / (s.warmupIters + 1);
  if (iter > s.decayIters) return s.minLr;
  const ratio = (iter - s.warmupIters) / Math.max(1, s.decayIters - s.warmupIters);
  return s.minLr + 0.5 * (1 + Math.cos(Math.PI * ratio)) * (s.lr - s.minLr);
}
