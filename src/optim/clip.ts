// Global-norm gradient clipping, as torch.nn.utils.clip_grad_norm_: scale by
// min(1, max_norm / (norm + 1e-6)).
import type { Tensor } from '../tensor/tensor.js';

export function globalNorm(flatGrad: Tensor): Tensor {
  return flatGrad.mul(flatGrad).sum().sqrt();
}

export function clipByGlobalNorm(flatGrad: Tensor, maxNorm: number, norm = globalNorm(flatGrad)): Tensor {
  if (!(maxNorm > 0)) return flatGrad;
  return flatGrad.mul(norm.add(1e-6).reciprocal().mul(maxNorm).minimum(1));
}
