#!/usr/bin/python3
"""Peer for `npm run bench -- collectives`: torch.distributed with the gloo backend.

Runs all_reduce, all_gather and reduce_scatter on float32 buffers over 127.0.0.1 with N
processes (torch.multiprocessing) and prints one JSON line per (op, bytes) with the median
seconds per call. Prints {"skip": reason} and exits 0 when PyTorch or gloo is missing, so the
TypeScript bench can say so and go on.

usage: gloo_collectives.py --ranks N --port P --sizes 4096,16384,... [--ops all_reduce,...]
       [--budget-s S]
"""
import argparse
import json
import os
import statistics
import sys
import time


def iterations_for(nbytes, budget_s):
    # Small messages are noisy, so take more samples; big ones are slow, so fewer (at least 3).
    if nbytes <= 1 << 20:
        return 20
    if nbytes <= 16 << 20:
        return 7
    return 3 if budget_s < 60 else 5


def run_op(dist, torch, op, buf, world):
    if op == "all_reduce":
        dist.all_reduce(buf)
    elif op == "all_gather":
        # Each rank contributes 1/N of the total so that `bytes` is the gathered size, as in
        # nccl-tests. gloo in torch 1.13 has no all_gather_into_tensor, so use the list form.
        chunk = buf.numel() // world
        parts = list(buf[: chunk * world].split(chunk))
        dist.all_gather(parts, parts[dist.get_rank()].clone())
    elif op == "reduce_scatter":
        chunk = buf.numel() // world
        out = torch.empty(chunk)
        dist.reduce_scatter(out, list(buf[: chunk * world].split(chunk)))
    else:
        raise ValueError(op)


def worker(rank, world, port, sizes, ops, budget_s, queue):
    import torch
    import torch.distributed as dist

    torch.set_num_threads(2)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    results = []
    for op in ops:
        supported = True
        for nbytes in sizes:
            if not supported:
                break
            buf = torch.ones(nbytes // 4, dtype=torch.float32)
            try:
                run_op(dist, torch, op, buf, world)  # warm-up, also detects unsupported ops
            except RuntimeError as err:
                supported = False
                if rank == 0:
                    results.append({"op": op, "skip": str(err).splitlines()[0]})
                break
            times = []
            for _ in range(iterations_for(nbytes, budget_s)):
                dist.barrier()
                t0 = time.perf_counter()
                run_op(dist, torch, op, buf, world)
                # The slowest rank defines the time of a collective: take the max over ranks.
                elapsed = torch.tensor([time.perf_counter() - t0], dtype=torch.float64)
                dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)
                times.append(float(elapsed[0]))
            if rank == 0:
                results.append({"op": op, "bytes": nbytes, "ranks": world, "seconds": statistics.median(times)})
    dist.barrier()
    dist.destroy_process_group()
    if rank == 0:
        queue.put(results)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ranks", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sizes", required=True)
    parser.add_argument("--ops", default="all_reduce,all_gather,reduce_scatter")
    parser.add_argument("--budget-s", type=float, default=120)
    args = parser.parse_args()
    try:
        import torch
        import torch.distributed as dist
        import torch.multiprocessing as mp
    except ImportError as err:
        print(json.dumps({"skip": f"PyTorch is not installed for {sys.executable}: {err}"}))
        return 0
    if not dist.is_available() or not dist.is_gloo_available():
        print(json.dumps({"skip": "this PyTorch was built without torch.distributed gloo"}))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    ops = args.ops.split(",")
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(r, args.ranks, args.port, sizes, ops, args.budget_s, queue)) for r in range(args.ranks)]
    for p in procs:
        p.start()
    results = queue.get()
    for p in procs:
        p.join()
    for r in results:
        print(json.dumps(r), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
