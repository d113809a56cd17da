#!/usr/bin/python3
"""PyTorch LoRA peer: atscale's base GPT weights plus a LoRA adapter, in plain PyTorch.

Modes:
  grads  load base weights, adapter (PEFT names) and a batch (safetensors); compute the loss and
         the gradients of the adapter's A and B; write them (safetensors) and print one JSON line
  bench  time LoRA training steps (AdamW over the adapter only) on random batches; one JSON line

The base is frozen (requires_grad False) exactly as atscale freezes it in the compiled graph.
Run with /usr/bin/python3 (Debian python3-torch).
"""

import argparse
import json
import math
import os
import sys
import time

# Thread pools are sized when torch loads, so --threads must reach the environment first.
if __name__ == "__main__":
    _t = next((sys.argv[i + 1] for i, a in enumerate(sys.argv[:-1]) if a == "--threads"), "2")
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[_var] = _t
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt_torch  # noqa: E402  (the project's GPT peer: same layout and parameter names)
import safetensors_io  # noqa: E402
import torch  # noqa: E402

PEFT_PREFIX = "base_model.model."


class LoraLinear(torch.nn.Module):
    """y = base(x) + scale * (x A^T) B^T with A [r, in], B [out, r]; the base stays frozen."""

    def __init__(self, base, a, b, scale):
        super().__init__()
        self.base = base
        self.lora_A = torch.nn.Parameter(a.clone())
        self.lora_B = torch.nn.Parameter(b.clone())
        self.scale = scale

    def forward(self, x):
        return self.base(x) + (x @ self.lora_A.t()) @ self.lora_B.t() * self.scale


def attach(model, adapter, cfg):
    scale = cfg["lora_alpha"] / (math.sqrt(cfg["r"]) if cfg.get("use_rslora") else cfg["r"])
    for p in model.parameters():
        p.requires_grad_(False)
    wrapped = {}
    for name, module in list(model.named_modules()):
        if name.split(".")[-1] not in cfg["target_modules"]:
            continue
        a = adapter[f"{PEFT_PREFIX}{name}.lora_A.weight"]
        b = adapter[f"{PEFT_PREFIX}{name}.lora_B.weight"]
        parent = model.get_submodule(name.rsplit(".", 1)[0])
        lora = LoraLinear(module, a.float(), b.float(), scale)
        setattr(parent, name.rsplit(".", 1)[1], lora)
        wrapped[name] = lora
    if not wrapped:
        raise SystemExit(f"no module matches target_modules {cfg['target_modules']}")
    return wrapped


def load(args):
    base, meta = safetensors_io.load(args.weights)
    config = gpt_torch.parse_config(json.loads(meta["config"]), f"{args.weights} __metadata__.config")
    config["dropout"] = 0.0
    model = gpt_torch.GPT(config)
    gpt_torch.load_weights(model, base, args.weights, allow_extra=True)
    adapter, _ = safetensors_io.load(args.adapter)
    with open(args.adapter_config) as f:
        cfg = json.load(f)
    wrapped = attach(model, adapter, cfg)
    return model, config, wrapped


def cmd_grads(args):
    model, config, wrapped = load(args)
    idx, targets = gpt_torch.load_batch(args.batch, config)
    model.eval()
    _, loss = model(idx, targets)
    loss.backward()
    out = {"loss": loss.detach().reshape(1)}
    for name, m in wrapped.items():
        out[f"{name}.lora_A.weight"] = m.lora_A.grad.detach()
        out[f"{name}.lora_B.weight"] = m.lora_B.grad.detach()
    safetensors_io.save(args.out, out, {"torch_version": torch.__version__})
    print(json.dumps({"impl": "pytorch", "mode": "lora-grads", "loss": loss.item(), "torch_version": torch.__version__,
                      "blas_core": gpt_torch.blas_core()}))
    return 0


def cmd_bench(args):
    model, config, wrapped = load(args)
    params = [p for m in wrapped.values() for p in (m.lora_A, m.lora_B)]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0)
    g = torch.Generator().manual_seed(args.seed)
    B, T, V = args.batch_size, config["block_size"], config["vocab_size"]
    times = []
    model.train()
    for i in range(args.warmup + args.iters):
        idx = torch.randint(0, V, (B, T), generator=g)
        t0 = time.perf_counter()
        _, loss = model(idx, torch.roll(idx, -1, 1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    times.sort()
    ms = 1000 * times[len(times) // 2]
    print(json.dumps({"impl": "pytorch", "mode": "lora-bench", "ms_per_iter": ms, "tokens_per_s": B * T / (ms / 1000),
                      "torch_version": torch.__version__, "threads": torch.get_num_threads(),
                      "blas_core": gpt_torch.blas_core(), "trainable": sum(p.numel() for p in params)}))
    return 0


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("mode", choices=["grads", "bench"])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--adapter", required=True)
    ap.add_argument("--adapter-config", required=True)
    ap.add_argument("--batch")
    ap.add_argument("--out")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    return cmd_grads(args) if args.mode == "grads" else cmd_bench(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
