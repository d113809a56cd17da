#!/usr/bin/python3
"""Independent PyTorch reference of the Llama-family decoder (Llama 2/3, SmolLM, Qwen2, Mistral),
written from the published architecture, reading a Hugging Face model folder directly.

    llama_torch.py --model DIR --batch batch.safetensors --out out.safetensors [--threads 2] [--float32]
    llama_torch.py --cases '[{"model": DIR, "batch": FILE, "out": FILE}, ...]'   (one torch start for many)

DIR holds config.json and model.safetensors in HF's names and [out, in] layouts. The batch file
holds I32 `idx` and `targets` [B, T]. The output holds `logits` [B, T, V], `loss` [] and the
gradient of the mean cross-entropy for every weight, under the weight's own name. It prints one
JSON line. Computes in float64 by default, so differences measure atscale's float32 alone.
"""

import argparse
import json
import math
import os
import sys

if __name__ == "__main__":
    threads = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "2"
    os.environ["OMP_NUM_THREADS"] = threads
    os.environ["OPENBLAS_NUM_THREADS"] = threads

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402


def inverse_frequencies(cfg, head_dim):
    """theta^(-2i/d); with rope_scaling llama3, long wavelengths are slowed by `factor`,
    short ones kept, and the band between blended linearly in (original context / wavelength)."""
    theta = cfg.get("rope_theta", 10000.0)
    inv = [1.0 / theta ** (2 * i / head_dim) for i in range(head_dim // 2)]
    s = cfg.get("rope_scaling")
    if not s:
        return inv
    factor, lo, hi, old = s["factor"], s["low_freq_factor"], s["high_freq_factor"], s["original_max_position_embeddings"]
    out = []
    for f in inv:
        wavelength = 2 * math.pi / f
        if wavelength > old / lo:
            out.append(f / factor)
        elif wavelength < old / hi:
            out.append(f)
        else:
            t = (old / wavelength - lo) / (hi - lo)
            out.append((1 - t) * f / factor + t * f)
    return out


def rotate(x, cos, sin):
    """Rotates pairs (i, i + d/2) of the last axis by the position's angles."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


def rms_norm(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def linear(x, w, b=None):
    y = x @ w.t()
    return y if b is None else y + b


def forward(cfg, p, idx):
    n_layer, n_head = cfg["num_hidden_layers"], cfg["num_attention_heads"]
    n_kv = cfg.get("num_key_value_heads", n_head)
    hidden = cfg["hidden_size"]
    hd = cfg.get("head_dim", hidden // n_head)
    eps = cfg.get("rms_norm_eps", 1e-6)
    B, T = idx.shape
    dtype = p["model.embed_tokens.weight"].dtype

    pos = torch.arange(T, dtype=torch.float64)
    freqs = torch.outer(pos, torch.tensor(inverse_frequencies(cfg, hd), dtype=torch.float64))
    angles = torch.cat([freqs, freqs], dim=-1)
    cos, sin = angles.cos().to(dtype), angles.sin().to(dtype)
    causal = torch.ones(T, T, dtype=torch.bool).tril()

    x = p["model.embed_tokens.weight"][idx.long()]
    for i in range(n_layer):
        pre = f"model.layers.{i}."
        get = lambda name: p.get(pre + name)  # noqa: E731
        h = rms_norm(x, get("input_layernorm.weight"), eps)
        q = linear(h, get("self_attn.q_proj.weight"), get("self_attn.q_proj.bias")).view(B, T, n_head, hd).transpose(1, 2)
        k = linear(h, get("self_attn.k_proj.weight"), get("self_attn.k_proj.bias")).view(B, T, n_kv, hd).transpose(1, 2)
        v = linear(h, get("self_attn.v_proj.weight"), get("self_attn.v_proj.bias")).view(B, T, n_kv, hd).transpose(1, 2)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        # Grouped-query attention: query head j reads kv head j // (n_head / n_kv).
        k = k.repeat_interleave(n_head // n_kv, dim=1)
        v = v.repeat_interleave(n_head // n_kv, dim=1)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        att = scores.masked_fill(~causal, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, n_head * hd)
        x = x + linear(y, get("self_attn.o_proj.weight"), get("self_attn.o_proj.bias"))
        h = rms_norm(x, get("post_attention_layernorm.weight"), eps)
        gate = linear(h, get("mlp.gate_proj.weight"), get("mlp.gate_proj.bias"))
        up = linear(h, get("mlp.up_proj.weight"), get("mlp.up_proj.bias"))
        x = x + linear(F.silu(gate) * up, get("mlp.down_proj.weight"), get("mlp.down_proj.bias"))
    x = rms_norm(x, p["model.norm.weight"], eps)
    tied = cfg.get("tie_word_embeddings", False) or "lm_head.weight" not in p
    return x @ p["model.embed_tokens.weight" if tied else "lm_head.weight"].t()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--batch")
    ap.add_argument("--out")
    ap.add_argument("--cases", help="JSON list of {model, batch, out}")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--float32", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dtype = torch.float32 if args.float32 else torch.float64
    cases = json.loads(args.cases) if args.cases else [{"model": args.model, "batch": args.batch, "out": args.out}]
    for case in cases:
        if not all(case.get(k) for k in ("model", "batch", "out")):
            raise SystemExit("each case needs model, batch and out (or pass --model, --batch and --out)")
        run_case(argparse.Namespace(**case), dtype)


def run_case(args, dtype):
    with open(os.path.join(args.model, "config.json")) as f:
        cfg = json.load(f)
    if cfg["model_type"] not in ("llama", "qwen2", "mistral"):
        raise SystemExit(f"{args.model}/config.json: model_type {cfg['model_type']!r} is not a Llama-family model")
    weights, _ = safetensors_io.load(os.path.join(args.model, "model.safetensors"))
    p = {k: v.to(dtype).requires_grad_(True) for k, v in weights.items()}
    batch, _ = safetensors_io.load(args.batch)
    logits = forward(cfg, p, batch["idx"])
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["targets"].long().reshape(-1), ignore_index=-1)
    loss.backward()
    out = {"logits": logits.detach(), "loss": loss.detach()}
    for k, v in p.items():
        out[k] = v.grad.detach()
    safetensors_io.save(args.out, out)
    print(json.dumps({"loss": loss.item(), "dtype": str(dtype), "torch_version": torch.__version__, "n_params": sum(v.numel() for v in p.values())}))


if __name__ == "__main__":
    main()
