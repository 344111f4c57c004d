"""rnnkit against torch, measured side by side in one run (``make bench``).

Three comparisons, each the median of ``--repeats`` timed runs after a warm-up, with the same
weights, shapes and dtype on both sides:

1. rnnkit on numpy, forward + hand-written BPTT, against torch.nn (forward + autograd backward)
   for LSTM, GRU and vanilla RNN in float32 and float64;
2. a sweep over sequence length: time, and the memory kept for BPTT per step (rnnkit: the arrays
   in its cache; torch: the tensors autograd saves for backward, each storage counted once);
3. rnnkit on torch tensors (no autograd) against a plain Python-loop LSTM written with torch
   autograd (and, with ``--device cuda``, against cuDNN's nn.LSTM on the GPU).

Prints a table of ratios (rnnkit / reference: below 1 means rnnkit is faster or smaller), writes
it to ``bench/results/bench.json`` and draws the sweep to ``bench/results/sweep.png``.
Timings never go into tests.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import rnnkit

RESULTS = Path(__file__).resolve().parent / "results"
KINDS = {"LSTM": (rnnkit.LSTM, torch.nn.LSTM), "GRU": (rnnkit.GRU, torch.nn.GRU), "RNN": (rnnkit.RNN, torch.nn.RNN)}


def median_time(fn, repeats: int, warmup: int = 2, sync=lambda: None) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs, after ``warmup`` untimed runs."""
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def pair(kind: str, I: int, H: int, dtype: str, seed: int = 0):
    """A torch module and the rnnkit module with exactly its weights."""
    torch.manual_seed(seed)
    ref = KINDS[kind][1](I, H).to(getattr(torch, dtype))
    return ref, rnnkit.from_torch(ref)


def torch_step(ref, x_t, d_out_t):
    """Forward + autograd backward of a torch module; the loss is <out, d_out>."""
    def run():
        ref.zero_grad(set_to_none=True)
        x = x_t.detach().requires_grad_(True)
        out, _ = ref(x)
        out.backward(d_out_t)
    return run


def rnnkit_step(m, x, d_out):
    def run():
        m(x)
        m.backward(d_out)
    return run


def cache_bytes(obj, seen=None) -> int:
    """Bytes of all arrays/tensors reachable from rnnkit's cache, each counted once."""
    seen = set() if seen is None else seen
    if isinstance(obj, np.ndarray):
        base = obj if obj.base is None else obj.base
        key = id(base)
        if key in seen:
            return 0
        seen.add(key)
        return base.nbytes if isinstance(base, np.ndarray) else obj.nbytes
    if torch.is_tensor(obj):
        key = obj.untyped_storage().data_ptr()
        if key in seen:
            return 0
        seen.add(key)
        return obj.untyped_storage().nbytes()
    if isinstance(obj, dict):
        return sum(cache_bytes(v, seen) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(cache_bytes(v, seen) for v in obj)
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        return cache_bytes(vars(obj), seen)
    return 0


def rnnkit_kept_bytes(m, x) -> int:
    """Memory rnnkit keeps between forward and backward (its cache), minus the parameters."""
    m(x)
    params = set()
    for p in m.params.values():
        params.add(id(p if p.base is None else p.base))
    return cache_bytes(m._cache, params)


def torch_kept_bytes(ref, x_t) -> int:
    """Memory autograd saves for backward, each storage once, parameters and input excluded."""
    seen = {p.untyped_storage().data_ptr() for p in ref.parameters()}
    seen.add(x_t.untyped_storage().data_ptr())
    total = 0

    def pack(t):
        nonlocal total
        key = t.untyped_storage().data_ptr()
        if key not in seen:
            seen.add(key)
            total += t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        x = x_t.detach().requires_grad_(False)
        ref(x)
    return total


def python_loop_lstm(W_ih, W_hh, b_ih, b_hh):
    """An LSTM written step by step with torch autograd: the usual hand-rolled reference."""
    def forward(x):
        T, B, _ = x.shape
        H = W_hh.shape[1]
        h = x.new_zeros(B, H)
        c = x.new_zeros(B, H)
        outs = []
        for t in range(T):
            gates = x[t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh
            i, f, g, o = gates.chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        return torch.stack(outs)
    return forward


def compare_cells(args, rows):
    B, T, I, H = args.batch, args.steps, args.inputs, args.hidden
    rng = np.random.default_rng(0)
    for dtype in ("float32", "float64"):
        for kind in KINDS:
            ref, m = pair(kind, I, H, dtype)
            x = rng.standard_normal((T, B, I)).astype(dtype)
            d_out = rng.standard_normal((T, B, H)).astype(dtype)
            t_ref = median_time(torch_step(ref, torch.from_numpy(x), torch.from_numpy(d_out)), args.repeats)
            t_kit = median_time(rnnkit_step(m, x, d_out), args.repeats)
            rows.append({"comparison": f"{kind} {dtype}: rnnkit numpy vs torch.nn", "rnnkit_s": t_kit,
                         "reference_s": t_ref, "ratio": t_kit / t_ref})


def sweep(args, rows):
    B, I, H = args.batch, args.inputs, args.hidden
    rng = np.random.default_rng(1)
    ref, m = pair("LSTM", I, H, "float32")
    points = []
    for T in args.sweep:
        x = rng.standard_normal((T, B, I)).astype("float32")
        d_out = rng.standard_normal((T, B, H)).astype("float32")
        xt, dt = torch.from_numpy(x), torch.from_numpy(d_out)
        point = {
            "T": T,
            "rnnkit_s": median_time(rnnkit_step(m, x, d_out), args.repeats),
            "torch_s": median_time(torch_step(ref, xt, dt), args.repeats),
            "rnnkit_bytes_per_step": rnnkit_kept_bytes(m, x) / T,
            "torch_bytes_per_step": torch_kept_bytes(ref, xt) / T,
        }
        points.append(point)
        rows.append({"comparison": f"LSTM float32 T={T}: time", "rnnkit_s": point["rnnkit_s"],
                     "reference_s": point["torch_s"], "ratio": point["rnnkit_s"] / point["torch_s"]})
        rows.append({"comparison": f"LSTM float32 T={T}: BPTT memory per step",
                     "rnnkit_bytes": point["rnnkit_bytes_per_step"], "reference_bytes": point["torch_bytes_per_step"],
                     "ratio": point["rnnkit_bytes_per_step"] / point["torch_bytes_per_step"]})
    return points


def torch_backend(args, rows, device: str):
    B, T, I, H = args.batch, args.steps, args.inputs, args.hidden
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    ref, m = pair("LSTM", I, H, "float32")
    ref = ref.to(device)
    m.to(backend="torch", device=device)
    x = torch.randn(T, B, I, device=device)
    d_out = torch.randn(T, B, H, device=device)
    params = [p.detach().clone().requires_grad_(True) for p in (ref.weight_ih_l0, ref.weight_hh_l0, ref.bias_ih_l0, ref.bias_hh_l0)]
    loop = python_loop_lstm(*params)

    def loop_step():
        for p in params:
            p.grad = None
        loop(x).backward(d_out)

    t_kit = median_time(rnnkit_step(m, x, d_out), args.repeats, sync=sync)
    t_loop = median_time(loop_step, args.repeats, sync=sync)
    rows.append({"comparison": f"LSTM float32 on torch {device}: rnnkit vs Python-loop autograd LSTM",
                 "rnnkit_s": t_kit, "reference_s": t_loop, "ratio": t_kit / t_loop})
    if device == "cuda":
        t_cudnn = median_time(torch_step(ref, x, d_out), args.repeats, sync=sync)
        rows.append({"comparison": "LSTM float32 on cuda: rnnkit vs cuDNN nn.LSTM",
                     "rnnkit_s": t_kit, "reference_s": t_cudnn, "ratio": t_kit / t_cudnn})


def plot(points, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    T = [p["T"] for p in points]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    a.plot(T, [1e3 * p["rnnkit_s"] for p in points], "o-", label="rnnkit (numpy)")
    a.plot(T, [1e3 * p["torch_s"] for p in points], "s-", label="torch.nn.LSTM")
    a.set(xlabel="sequence length T", ylabel="forward + backward (ms)", title="Time", xscale="log", yscale="log")
    b.plot(T, [p["rnnkit_bytes_per_step"] / 1024 for p in points], "o-", label="rnnkit cache")
    b.plot(T, [p["torch_bytes_per_step"] / 1024 for p in points], "s-", label="torch saved tensors")
    b.set(xlabel="sequence length T", ylabel="KiB kept per step", title="Memory kept for BPTT", xscale="log")
    for ax in (a, b):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--inputs", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--sweep", type=int, nargs="*", default=[25, 50, 100, 200, 400])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--only", choices=["cells", "sweep", "torch"], nargs="*")
    args = parser.parse_args(argv)
    only = set(args.only or ["cells", "sweep", "torch"])

    rows, points = [], []
    if "cells" in only:
        compare_cells(args, rows)
    if "sweep" in only:
        points = sweep(args, rows)
    if "torch" in only:
        torch_backend(args, rows, "cpu")
        if args.device == "cuda":
            torch_backend(args, rows, "cuda")

    width = max(len(r["comparison"]) for r in rows)
    print(f"batch {args.batch}, {args.steps} steps, {args.inputs} inputs, {args.hidden} hidden; "
          f"median of {args.repeats}; torch {torch.__version__}, numpy {np.__version__}, "
          f"{torch.get_num_threads()} torch threads")
    print(f"{'comparison':<{width}}  {'rnnkit':>10}  {'reference':>10}  {'ratio':>6}")
    for r in rows:
        if "rnnkit_s" in r:
            a, b = f"{1e3 * r['rnnkit_s']:.2f} ms", f"{1e3 * r['reference_s']:.2f} ms"
        else:
            a, b = f"{r['rnnkit_bytes'] / 1024:.1f} KiB", f"{r['reference_bytes'] / 1024:.1f} KiB"
        print(f"{r['comparison']:<{width}}  {a:>10}  {b:>10}  {r['ratio']:6.2f}")
    RESULTS.mkdir(exist_ok=True)
    meta = {"machine": platform.platform(), "processor": platform.processor(), "args": vars(args)}
    (RESULTS / "bench.json").write_text(json.dumps({"meta": meta, "rows": rows, "sweep": points}, indent=2))
    if points:
        plot(points, RESULTS / "sweep.png")
    print(f"wrote {RESULTS / 'bench.json'}" + (f" and {RESULTS / 'sweep.png'}" if points else ""))


if __name__ == "__main__":
    main()
