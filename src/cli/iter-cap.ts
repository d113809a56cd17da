// ATSCALE_MAX_ITERS caps every training run's steps (train, demo, launched workers), so the
// README's commands can be run end to end quickly (the README test does) without editing them.

export function capIters(maxIters: number): number {
  const raw = process.env.ATSCALE_MAX_ITERS;
  if (raw === undefined || raw === '') return maxIters;
  const cap = Number(raw);
  if (!(Number.isInteger(cap) && cap >= 1)) throw new Error(`ATSCALE_MAX_ITERS must be a positive integer, got '${raw}'`);
  return Math.min(maxIters, cap);
}
