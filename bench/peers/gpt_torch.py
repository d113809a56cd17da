#!/usr/bin/python3
"""PyTorch reference ("peer") of atscale's GPT: same layout, same parameter names, same maths.

Modes:
  grads  load atscale's weights (safetensors), compute loss and gradients on one batch, write them
  bench  random init, random batches, full AdamW training steps; prints one JSON line

Linear weights are stored [in, out] like GPT-2's Conv1D (y = x @ W + b), so a checkpoint moves
between atscale and this file without transposes. Run with /usr/bin/python3 (Debian python3-torch).
"""

import argparse
import json
import math
import os
import sys
import time


def _flag(argv, name, default):
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return default


# Two thread pools share the cores: OpenBLAS's pthreads (the GEMMs) and ATen's OpenMP pool (every
# other kernel). Both are sized when torch loads, so the counts go into the environment before
# `import torch`, overriding the caller's. On a 2-core machine the two pools fight: with 2 + 2
# threads the OpenMP workers (spinning or waking) steal the cores OpenBLAS is using, and the step
# was 20% slower than nanoGPT's train.py, which runs here with torch's default of 1 OpenMP thread
# and OpenBLAS on all cores. So by default the GEMMs get --threads and the rest --omp-threads 1.
if __name__ == "__main__":
    os.environ["OPENBLAS_NUM_THREADS"] = _flag(sys.argv[1:], "--threads", "2")
    os.environ["OMP_NUM_THREADS"] = _flag(sys.argv[1:], "--omp-threads", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

MODEL_KEYS = ("n_layer", "n_head", "n_embd", "block_size", "vocab_size", "bias", "dropout")
CAMEL = {"nLayer": "n_layer", "nHead": "n_head", "nEmbd": "n_embd", "blockSize": "block_size", "vocabSize": "vocab_size"}

# atscale's presets (src/models/presets.ts), which nanoGPT's shakespeare_char and CPU configs share:
# no biases. The train benchmark passes atscale's config itself; these serve runs by hand.
PRESETS = {
    "cpu-small": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, vocab_size=65, bias=False, dropout=0.0,
                      batch_size=12, lr=1e-3, beta1=0.9, beta2=0.99, weight_decay=0.1),
    "shakespeare-char": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, vocab_size=65, bias=False, dropout=0.2,
                             batch_size=64, lr=1e-3, beta1=0.9, beta2=0.99, weight_decay=0.1),
}


class ConfigError(ValueError):
    pass


def parse_config(raw, where):
    """Validates the model part of a config dict; keys may be snake_case or camelCase."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: config must be a JSON object, got {type(raw).__name__}")
    if "n_layer" not in raw and "nLayer" not in raw and isinstance(raw.get("model"), dict):
        raw = raw["model"]  # a training config that nests the model config
    cfg = {CAMEL.get(k, k): v for k, v in raw.items()}
    out = {}
    for key in ("n_layer", "n_head", "n_embd", "block_size", "vocab_size"):
        v = cfg.get(key)
        if v is None:
            raise ConfigError(f"{where}: config key {key!r} is missing (need {', '.join(MODEL_KEYS)})")
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise ConfigError(f"{where}: config key {key!r} must be a positive integer, got {v!r}")
        out[key] = v
    bias = cfg.get("bias", True)
    if not isinstance(bias, bool):
        raise ConfigError(f"{where}: config key 'bias' must be true or false, got {bias!r}")
    out["bias"] = bias
    dropout = cfg.get("dropout", 0.0)
    if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0 <= dropout < 1:
        raise ConfigError(f"{where}: config key 'dropout' must be a number in [0, 1), got {dropout!r}")
    out["dropout"] = float(dropout)
    if out["n_embd"] % out["n_head"]:
        raise ConfigError(f"{where}: config key 'n_embd' ({out['n_embd']}) must be divisible by 'n_head' ({out['n_head']})")
    return out


def read_json_arg(text, flag):
    """A flag value that is either inline JSON or the path of a JSON file."""
    try:
        if text.lstrip().startswith("{"):
            return json.loads(text)
        with open(text) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"{flag}: expected inline JSON or a JSON file path ({e})") from None


# ---- the model, in the order data flows ----


class Linear(nn.Module):
    """GPT-2 Conv1D layout: weight [in, out], y = x @ W + b."""

    def __init__(self, n_in, n_out, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out)) if bias else None

    def forward(self, x):
        # F.linear wants [out, in]; the transposed view lets it fuse the bias into one addmm
        return F.linear(x, self.weight.t(), self.bias)


class LayerNorm(nn.Module):
    """nn.LayerNorm of torch 1.13 cannot drop the bias, which bias=False configs need."""

    def __init__(self, n, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.bias = nn.Parameter(torch.zeros(n)) if bias else None

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.n_head = c["n_head"]
        self.c_attn = Linear(c["n_embd"], 3 * c["n_embd"], c["bias"])
        self.c_proj = Linear(c["n_embd"], c["n_embd"], c["bias"])
        self.attn_dropout = nn.Dropout(c["dropout"])
        self.resid_dropout = nn.Dropout(c["dropout"])
        n = c["block_size"]
        # True above the diagonal: the future positions each query must not see
        self.register_buffer("future", torch.ones(n, n, dtype=torch.bool).triu(1), persistent=False)

    def forward(self, x):
        B, T, C = x.shape
        hs = C // self.n_head
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
        att = att.masked_fill(self.future[:T, :T], float("-inf"))
        att = self.attn_dropout(F.softmax(att, dim=-1))
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c_fc = Linear(c["n_embd"], 4 * c["n_embd"], c["bias"])
        self.c_proj = Linear(4 * c["n_embd"], c["n_embd"], c["bias"])
        self.dropout = nn.Dropout(c["dropout"])

    def forward(self, x):
        # approximate='tanh' is 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3))), GPT-2's GELU
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln_1 = LayerNorm(c["n_embd"], c["bias"])
        self.attn = CausalSelfAttention(c)
        self.ln_2 = LayerNorm(c["n_embd"], c["bias"])
        self.mlp = MLP(c)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.config = c
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(c["vocab_size"], c["n_embd"]),
            wpe=nn.Embedding(c["block_size"], c["n_embd"]),
            drop=nn.Dropout(c["dropout"]),
            h=nn.ModuleList([Block(c) for _ in range(c["n_layer"])]),
            ln_f=LayerNorm(c["n_embd"], c["bias"]),
        ))

    def init_weights(self, generator=None):
        """GPT-2 init: N(0, 0.02) weights and embeddings, residual projections scaled by 1/sqrt(2L)."""
        proj_std = 0.02 / math.sqrt(2 * self.config["n_layer"])
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name.endswith("ln_f.weight"):
                    p.fill_(1.0)
                elif name.endswith(".bias"):
                    p.zero_()
                else:
                    p.normal_(0.0, proj_std if name.endswith("c_proj.weight") else 0.02, generator=generator)

    def forward(self, idx, targets=None):
        B, T = idx.shape
        if T > self.config["block_size"]:
            raise ValueError(f"sequence length {T} exceeds block_size {self.config['block_size']}")
        t = self.transformer
        x = t.drop(t.wte(idx) + t.wpe(torch.arange(T, device=idx.device)))
        for block in t.h:
            x = block(x)
        logits = t.ln_f(x) @ t.wte.weight.t()  # LM head tied to the token embedding
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        return logits, loss


# ---- grads mode: the correctness peer ----


def load_weights(model, tensors, path, allow_extra=False):
    params = dict(model.named_parameters())
    missing = [n for n in params if n not in tensors]
    extra = [] if allow_extra else [n for n in tensors if n not in params]
    if missing:
        raise ConfigError(f"{path}: missing weight(s) {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    if extra:
        raise ConfigError(f"{path}: unexpected weight(s) {', '.join(extra[:5])} (config says bias={model.config['bias']}, "
                          f"n_layer={model.config['n_layer']}; --allow-extra ignores tensors that are not parameters)")
    with torch.no_grad():
        for name, p in params.items():
            t = tensors[name]
            if tuple(t.shape) != tuple(p.shape):
                raise ConfigError(f"{path}: weight {name} has shape {list(t.shape)}, the config needs {list(p.shape)}")
            if not t.is_floating_point():
                raise ConfigError(f"{path}: weight {name} has dtype {t.dtype}, expected a float type")
            p.copy_(t)


def load_batch(path, config):
    tensors, _ = safetensors_io.load(path)
    out = []
    for name in ("idx", "targets"):
        t = tensors.get(name)
        if t is None:
            raise ConfigError(f"{path}: batch needs a tensor named {name!r} (found {', '.join(tensors) or 'none'})")
        if t.dtype not in (torch.int32, torch.int64) or t.dim() != 2:
            raise ConfigError(f"{path}: {name} must be a 2-D I32 or I64 tensor [B, T], got {t.dtype} {list(t.shape)}")
        out.append(t.long())
    idx, targets = out
    V, n = config["vocab_size"], config["block_size"]
    if idx.shape != targets.shape:
        raise ConfigError(f"{path}: idx {list(idx.shape)} and targets {list(targets.shape)} differ in shape")
    if idx.shape[1] > n:
        raise ConfigError(f"{path}: sequence length {idx.shape[1]} exceeds block_size {n}")
    if idx.numel() and (idx.min() < 0 or idx.max() >= V):
        raise ConfigError(f"{path}: idx has token ids outside [0, {V})")
    if targets.numel() and (targets.min() < -1 or targets.max() >= V):
        raise ConfigError(f"{path}: targets have ids outside [-1, {V}) (-1 means ignore)")
    return idx, targets


def cmd_grads(args):
    tensors, meta = safetensors_io.load(args.weights)
    if args.config is not None:
        raw, where = read_json_arg(args.config, "--config"), "--config"
    elif "config" in meta:
        try:
            raw = json.loads(meta["config"])
        except json.JSONDecodeError as e:
            raise ConfigError(f"{args.weights}: __metadata__.config is not JSON ({e})") from None
        where = f"{args.weights} __metadata__.config"
    else:
        raise ConfigError(f"{args.weights} has no __metadata__.config; pass the model config with --config JSON")
    config = parse_config(raw, where)
    requested_dropout = config["dropout"]
    config["dropout"] = 0.0  # gradients can only be compared with dropout off
    dtype = torch.float64 if args.double else torch.float32
    model = GPT(config).to(dtype)
    load_weights(model, tensors, args.weights, args.allow_extra)
    idx, targets = load_batch(args.batch, config)
    model.eval()
    _, loss = model(idx, targets)
    loss.backward()
    out_dtype = torch.float64 if args.out_dtype == "f64" else torch.float32
    grads = {n: p.grad.detach().to(out_dtype) for n, p in model.named_parameters()}
    grads["loss"] = loss.detach().reshape(1).to(out_dtype)
    meta_out = {"config": json.dumps(config), "compute_dtype": str(dtype).replace("torch.", ""),
                "torch_version": torch.__version__, "requested_dropout": str(requested_dropout)}
    safetensors_io.save(args.out, grads, meta_out)
    print(json.dumps({"impl": "pytorch", "mode": "grads", "loss": loss.item(), "out": args.out,
                      "compute_dtype": meta_out["compute_dtype"], "n_params": sum(p.numel() for p in model.parameters()),
                      "torch_version": torch.__version__, "threads": blas_threads(), "omp_threads": torch.get_num_threads()}))
    return 0


# ---- bench mode: the speed peer ----


def make_optimizer(model, lr, betas, weight_decay, decay_embeddings, foreach):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        is_embedding = name.startswith("transformer.wte.") or name.startswith("transformer.wpe.")
        wants_decay = p.dim() == 2 and (decay_embeddings or not is_embedding)
        (decay if wants_decay else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, foreach=foreach)


def peak_rss_mb():
    # VmHWM is this process's own high-water mark; getrusage's ru_maxrss survives exec on Linux
    # and so can report the parent's RSS instead.
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def blas_threads():
    return int(os.environ.get("OPENBLAS_NUM_THREADS", "0")) or os.cpu_count()


def blas_library():
    """The BLAS this process actually loaded (torch.__config__ says only BLAS_INFO=generic for
    Debian's build, which links libblas.so.3 through the alternatives system)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.lower() and "/" in line}
    except OSError:
        return "unknown"
    real = sorted({os.path.realpath(p) for p in libs})
    main = [p for p in real if "openblas" in os.path.basename(p)] or real
    return ", ".join(main) if main else "unknown"


def blas_core():
    """The kernel set the loaded OpenBLAS runs (its openblas_get_corename), or "unknown"."""
    import ctypes
    for path in blas_library().split(", "):
        try:
            corename = ctypes.CDLL(path).openblas_get_corename
        except (OSError, AttributeError):
            continue
        corename.restype = ctypes.c_char_p
        return corename().decode()
    return "unknown"


def median_of(xs):
    ordered = sorted(xs)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def cmd_bench(args):
    if (args.preset is None) == (args.config is None):
        raise ConfigError("bench: pass exactly one of --preset (cpu-small|shakespeare-char) or --config JSON")
    if args.preset is not None:
        settings = dict(PRESETS[args.preset])
        preset = args.preset
    else:
        settings = dict(read_json_arg(args.config, "--config"))
        preset = "custom"
    config = parse_config(settings, args.preset or "--config")
    batch_size = args.batch_size or settings.get("batch_size") or settings.get("batchSize")
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ConfigError("bench: batch size missing; pass --batch-size N or put batch_size in the config")
    if args.iters <= 0 or args.warmup < 0:
        raise ConfigError(f"bench: --iters must be > 0 and --warmup >= 0 (got {args.iters}, {args.warmup})")
    lr = args.lr if args.lr is not None else settings.get("lr", 1e-3)
    betas = (args.beta1 if args.beta1 is not None else settings.get("beta1", 0.9),
             args.beta2 if args.beta2 is not None else settings.get("beta2", 0.99))
    wd = args.weight_decay if args.weight_decay is not None else settings.get("weight_decay", 0.1)

    gen = torch.Generator().manual_seed(args.seed)
    model = GPT(config)
    model.init_weights(gen)
    model.train()
    opt = make_optimizer(model, lr, betas, wd, args.decay_embeddings, args.foreach)
    B, T, V = batch_size, config["block_size"], config["vocab_size"]

    times, cpu_times, losses = [], [], []
    for i in range(args.warmup + args.iters):
        seq = torch.randint(0, V, (B, T + 1), generator=gen)
        c0, t0 = time.process_time(), time.perf_counter()
        _, loss = model(seq[:, :-1], seq[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
        # progress on stderr: a shakespeare-char step takes seconds, stdout stays one JSON line
        kind = "warmup" if i < args.warmup else "iter"
        print(f"gpt_torch bench {preset}: {kind} {i + 1}/{args.warmup + args.iters} "
              f"{(time.perf_counter() - t0) * 1e3:.1f} ms loss {losses[-1]:.4f}", file=sys.stderr, flush=True)
    median = median_of(times)
    print(json.dumps({
        "impl": "pytorch", "preset": preset, "ms_per_iter": median * 1e3, "tokens_per_s": B * T / median,
        "peak_rss_mb": peak_rss_mb(), "torch_version": torch.__version__, "threads": blas_threads(),
        "omp_threads": torch.get_num_threads(), "blas": blas_library(), "blas_core": blas_core(),
        "batch_size": B, "block_size": T, "n_params": sum(p.numel() for p in model.parameters()),
        "iters": args.iters, "warmup": args.warmup, "ms_all": [t * 1e3 for t in times], "last_loss": losses[-1],
        # CPU seconds of all threads per step: on a machine shared with other jobs this moves less than wall time
        "cpu_ms_per_iter": median_of(cpu_times) * 1e3, "load_avg_1m": os.getloadavg()[0],
        "config": config, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
    }))
    return 0


def main(argv):
    ap = argparse.ArgumentParser(prog="gpt_torch.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    g = sub.add_parser("grads", help="loss and gradients of atscale's weights on one batch")
    g.add_argument("--weights", required=True, help="safetensors with the model parameters (config in __metadata__.config)")
    g.add_argument("--batch", required=True, help="safetensors with I32/I64 tensors idx and targets, [B, T]")
    g.add_argument("--out", required=True, help="safetensors to write: a gradient per parameter, plus loss")
    g.add_argument("--config", help="model config as inline JSON or a JSON file (overrides the weights' metadata)")
    g.add_argument("--double", action="store_true", help="compute in float64")
    g.add_argument("--out-dtype", choices=("f32", "f64"), default="f32", help="dtype of the written gradients (default f32)")
    g.add_argument("--allow-extra", action="store_true", help="ignore tensors that are not model parameters (e.g. optimizer moments)")
    g.add_argument("--threads", type=int, default=2, help="OpenBLAS threads (the GEMMs)")
    g.add_argument("--omp-threads", type=int, default=1, help="ATen OpenMP threads (all other kernels)")
    b = sub.add_parser("bench", help="time full training steps")
    b.add_argument("--preset", choices=sorted(PRESETS))
    b.add_argument("--config", help="model config (+ optional batch_size, lr, beta1, beta2, weight_decay) as JSON or a file")
    b.add_argument("--iters", type=int, default=5)
    b.add_argument("--warmup", type=int, default=2)
    b.add_argument("--threads", type=int, default=2, help="OpenBLAS threads (the GEMMs)")
    b.add_argument("--omp-threads", type=int, default=1, help="ATen OpenMP threads (all other kernels)")
    b.add_argument("--batch-size", type=int)
    b.add_argument("--lr", type=float)
    b.add_argument("--beta1", type=float)
    b.add_argument("--beta2", type=float)
    b.add_argument("--weight-decay", type=float)
    b.add_argument("--decay-embeddings", action=argparse.BooleanOptionalAction, default=True,
                   help="apply weight decay to wte/wpe (default yes, as nanoGPT)")
    b.add_argument("--grad-clip", type=float, default=1.0)
    b.add_argument("--foreach", action="store_true", help="use AdamW's multi-tensor (foreach) implementation")
    b.add_argument("--seed", type=int, default=1337)
    args = ap.parse_args(argv)
    if args.threads <= 0 or args.omp_threads <= 0:
        raise ConfigError(f"--threads and --omp-threads must be positive integers, got {args.threads}, {args.omp_threads}")
    torch.set_num_threads(args.omp_threads)
    return cmd_grads(args) if args.mode == "grads" else cmd_bench(args)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (ConfigError, safetensors_io.SafetensorsError, OSError) as e:
        print(f"gpt_torch.py: error: {e}", file=sys.stderr)
        sys.exit(2)
