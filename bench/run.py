"""rnnkit against torch, measured side by side in one run (``make bench``).

Three comparisons, with the same weights, shapes and dtype on every side:

1. rnnkit on numpy, forward + hand-written BPTT, against torch.nn (forward + autograd backward)
   for LSTM, GRU and vanilla RNN in float32 and float64, and in the same interleaved runs against
   two numpy references:

   * the **floor**: the matrix products of forward and BPTT alone, nothing else (see
     :func:`floor_step`); no numpy implementation of this algorithm can be faster, so
     ``rnnkit / floor`` is what rnnkit spends on everything that is not a matrix product;
   * the **plain peer**: the layer written the plain CS231n way (``bench/plain.py``: per-step
     products, a list of caches, a hand-written backward), checked to give rnnkit's numbers;

2. a sweep over sequence length: time, and the memory kept for BPTT per step (rnnkit: the arrays
   in its cache; torch: the tensors autograd saves for backward; each storage counted once, the
   parameters and the input x left out on both sides);
3. rnnkit on torch tensors (no autograd) against a plain Python-loop LSTM written with torch
   autograd (and, with ``--device cuda``, against cuDNN's nn.LSTM on the GPU).

Timing: each comparison alternates the two sides run by run (rnnkit, reference, rnnkit, ...), so
that a change in the machine's load hits both; after ``--warmup`` untimed runs of each, it takes
the median of ``--repeats`` runs, in wall time and in CPU time (``time.process_time``; on a
machine shared with other jobs the CPU time of a single-threaded run is the steadier of the two).
Ratios are rnnkit / reference: below 1 means rnnkit is faster or smaller.

Threads: small matrices are very sensitive to the BLAS thread count, so sides are compared at
equal counts. ``--threads 1 2`` runs everything once per count, each in a fresh process whose
OpenBLAS/MKL/OpenMP pools are set through the environment before numpy and torch load
(``torch.set_num_threads`` as well). The table shows the count and the load average.

Writes the rows to ``bench/results/bench.json`` (``--json`` elsewhere) and the sweep to
``bench/results/sweep.png``. Timings never go into tests.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

# the targets of the performance issues: (comparison, at most this ratio)
TARGETS = {
    "LSTM float32: rnnkit numpy vs torch.nn": 1.0,
    "LSTM float64: rnnkit numpy vs torch.nn": 0.7,
    "GRU float32: rnnkit numpy vs torch.nn": 1.0,
    "RNN float32: rnnkit numpy vs torch.nn": 1.0,
    "LSTM float32 on torch cpu: rnnkit vs Python-loop autograd LSTM": 1 / 3,
    **{f"{kind} {dtype}: rnnkit numpy vs matrix-product floor": 1.3
       for kind in ("LSTM", "GRU") for dtype in ("float32", "float64")},
}
MEMORY_TARGET = 1.0  # BPTT memory per step: rnnkit no larger than torch


def interleaved(fns: dict, repeats: int, warmup: int = 2, sync=lambda: None) -> dict:
    """Run the callables of ``fns`` in turn, ``warmup`` untimed rounds then ``repeats`` timed ones.

    Returns ``{name: {"wall": [...], "cpu": [...]}}`` (seconds). A callable may return a dict of
    named sub-timings (wall seconds, e.g. forward and backward), kept under ``"parts"``.
    """
    out = {name: {"wall": [], "cpu": [], "parts": []} for name in fns}
    for r in range(warmup + repeats):
        for name, fn in fns.items():
            sync()
            w, c = time.perf_counter(), time.process_time()
            parts = fn()
            sync()
            w, c = time.perf_counter() - w, time.process_time() - c
            if r >= warmup:
                out[name]["wall"].append(w)
                out[name]["cpu"].append(c)
                if parts:
                    out[name]["parts"].append(parts)
    return out


def summary(times: dict) -> dict:
    s = {"wall_s": statistics.median(times["wall"]), "cpu_s": statistics.median(times["cpu"]),
         "min_wall_s": min(times["wall"])}
    if times["parts"]:
        for key in times["parts"][0]:
            s[key + "_s"] = statistics.median(p[key] for p in times["parts"])
    return s


def row(comparison: str, kit: dict, ref: dict) -> dict:
    r = {"comparison": comparison, "rnnkit": summary(kit), "reference": summary(ref)}
    r["ratio_wall"] = r["rnnkit"]["wall_s"] / r["reference"]["wall_s"]
    r["ratio_cpu"] = r["rnnkit"]["cpu_s"] / r["reference"]["cpu_s"]
    if comparison in TARGETS:
        r["target"] = TARGETS[comparison]
    return r


# ----------------------------------------------------------------------------- the sides


def pair(kind: str, I: int, H: int, dtype: str, seed: int = 0):
    """A torch module and the rnnkit module with exactly its weights."""
    import rnnkit
    import torch

    torch.manual_seed(seed)
    ref = getattr(torch.nn, kind)(I, H).to(getattr(torch, dtype))
    return ref, rnnkit.from_torch(ref)


def torch_step(ref, x_t, d_out_t):
    """Forward + autograd backward of a torch module; the loss is <out, d_out>."""

    def run():
        start = time.perf_counter()
        ref.zero_grad(set_to_none=True)
        x = x_t.detach().requires_grad_(True)
        out, _ = ref(x)
        mid = time.perf_counter()
        out.backward(d_out_t)
        return {"forward": mid - start, "backward": time.perf_counter() - mid}

    return run


def without_onednn(step):
    import torch

    def run():
        with torch.backends.mkldnn.flags(enabled=False):
            return step()

    return run


def rnnkit_step(m, x, d_out):
    def run():
        start = time.perf_counter()
        m(x)
        mid = time.perf_counter()
        m.backward(d_out)
        return {"forward": mid - start, "backward": time.perf_counter() - mid}

    return run


def floor_step(m, x, d_out):
    """The matrix products of one forward + BPTT of the one-layer module ``m``, and nothing else.

    With G gate blocks (RNN 1, GRU 3, LSTM 4), T steps, B rows, N = T*B, each product done the
    fastest way measured on a 2-core AMD EPYC (OpenBLAS, one thread):

    * input projection of all steps: ``x (N, I) @ W_ihᵀ (I, G*H)``, W_ihᵀ a contiguous copy;
    * each step forward: ``h_{t−1} (B, H) @ W_hkᵀ (H, H)`` for the G gate blocks k, against a
      contiguous (G, H, H) copy of the W_hkᵀ (one (B, H) @ (H, G*H) product, or products against
      transposed views, take 1.3–1.9x longer at these sizes);
    * each step backward: ``dA_t (B, G*H) @ W_hh (G*H, H)``;
    * after the loop: ``dx = dXW (N, G*H) @ W_ih``, ``dW_ihᵀ = xᵀ @ dXW``,
      ``dW_hhᵀ = h_prevᵀ @ dXW`` (xᵀ @ dXW is faster than dXWᵀ @ x in float64).

    Every result goes into an array allocated beforehand; the inputs of the products are random
    (their values do not change the time of a product).
    """
    import numpy as np

    p = m.layer_params(0)
    W_ih, W_hh = p["weight_ih"], p["weight_hh"]
    T, B, I = x.shape
    GH, H = W_hh.shape
    G, N, dt = GH // H, T * B, x.dtype
    rng = np.random.default_rng(0)
    x_rows = x.reshape(N, I)
    W_ih_T = np.ascontiguousarray(W_ih.T)
    W_hk_T = np.ascontiguousarray(W_hh.reshape(G, H, H).transpose(0, 2, 1))
    states = rng.standard_normal((T + 1, B, H)).astype(dt)
    dXW = rng.standard_normal((N, GH)).astype(dt)
    XW, a, dh = np.empty((N, GH), dt), np.empty((G, B, H), dt), np.empty((B, H), dt)
    dx, dW_ih_T, dW_hh_T = np.empty((N, I), dt), np.empty((I, GH), dt), np.empty((H, GH), dt)
    h_rows = states[:-1].reshape(N, H)

    def run():
        start = time.perf_counter()
        np.matmul(x_rows, W_ih_T, out=XW)
        for t in range(T):
            np.matmul(states[t], W_hk_T, out=a)
        mid = time.perf_counter()
        for t in reversed(range(T)):
            np.matmul(dXW[t * B : (t + 1) * B], W_hh, out=dh)
        np.matmul(dXW, W_ih, out=dx)
        np.matmul(x_rows.T, dXW, out=dW_ih_T)
        np.matmul(h_rows.T, dXW, out=dW_hh_T)
        return {"forward": mid - start, "backward": time.perf_counter() - mid}

    return run


def plain_step(kind, m, x, d_out):
    """Forward + backward of the plain CS231n-style layer (``bench/plain.py``), batch-major like
    CS231n (the transposes of x and d_out are made once, outside the timing)."""
    import numpy as np
    import plain

    G, forward, backward = plain.LAYERS[kind]
    weights = plain.from_torch_names(m.params, G)
    xb, db = np.ascontiguousarray(x.transpose(1, 0, 2)), np.ascontiguousarray(d_out.transpose(1, 0, 2))
    h0 = np.zeros((x.shape[1], m.hidden_size), x.dtype)

    def run():
        start = time.perf_counter()
        _, caches = forward(xb, h0, *weights)
        mid = time.perf_counter()
        backward(db, caches)
        return {"forward": mid - start, "backward": time.perf_counter() - mid}

    return run


def check_plain_equals_rnnkit(kind, m, x, d_out):
    """The peer must compute what rnnkit computes: outputs, dx and dW_hh, within rounding."""
    import numpy as np
    import plain

    G, forward, backward = plain.LAYERS[kind]
    weights = plain.from_torch_names(m.params, G)
    h, caches = forward(np.ascontiguousarray(x.transpose(1, 0, 2)), np.zeros((x.shape[1], m.hidden_size), x.dtype),
                        *weights)
    dx, _, _, dWh, *_ = backward(np.ascontiguousarray(d_out.transpose(1, 0, 2)), caches)
    out, _ = m(x)
    m.backward(d_out)
    tol = 1e-4 if x.dtype == np.float32 else 1e-10
    for name, a, b in [("out", h.transpose(1, 0, 2), out), ("dx", dx.transpose(1, 0, 2), np.asarray(m.backward(d_out)[0])),
                       ("dW_hh", dWh.T, m.grads["weight_hh_l0"])]:
        err = np.abs(a - b).max() / max(np.abs(b).max(), 1e-30)
        if err > tol:
            raise SystemExit(f"bench/plain.py {kind} differs from rnnkit in {name}: relative error {err:.1e}")


def cache_bytes(obj, seen=None) -> int:
    """Bytes of all arrays/tensors reachable from rnnkit's cache, each storage counted once."""
    import numpy as np
    import torch

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
    """Memory rnnkit keeps between forward and backward (its cache), minus the parameters and
    the input ``x`` (which the caller holds anyway; torch_kept_bytes leaves it out too)."""
    m(x)
    skip = {id(a if a.base is None else a.base) for a in (*m.params.values(), x)}
    return cache_bytes(m._cache, skip)


def torch_kept_bytes(ref, x_t) -> int:
    """Memory autograd saves for backward, each storage once, parameters and input excluded."""
    import torch

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
    import torch

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


# ----------------------------------------------------------------------------- comparisons


def compare_cells(args, rows):
    import numpy as np
    import torch

    B, T, I, H = args.batch, args.steps, args.inputs, args.hidden
    rng = np.random.default_rng(0)
    for dtype in ("float32", "float64"):
        for kind in ("LSTM", "GRU", "RNN"):
            ref, m = pair(kind, I, H, dtype)
            x = rng.standard_normal((T, B, I)).astype(dtype)
            d_out = rng.standard_normal((T, B, H)).astype(dtype)
            xt, dt = torch.from_numpy(x), torch.from_numpy(d_out)
            check_plain_equals_rnnkit(kind, m, x, d_out)
            fns = {"rnnkit": rnnkit_step(m, x, d_out), "torch": torch_step(ref, xt, dt),
                   "floor": floor_step(m, x, d_out), "plain": plain_step(kind, m, x, d_out)}
            if kind == "LSTM" and dtype == "float32" and torch.backends.mkldnn.is_available():
                # torch.nn.LSTM float32 on the CPU runs oneDNN's fused LSTM kernel (forward and
                # backward); for context, also its plain ATen path, which GRU, RNN and float64 take
                fns["native"] = without_onednn(torch_step(ref, xt, dt))
            t = interleaved(fns, args.repeats, args.warmup)
            rows.append(row(f"{kind} {dtype}: rnnkit numpy vs torch.nn", t["rnnkit"], t["torch"]))
            if "native" in t:
                rows.append(row(f"{kind} {dtype}: rnnkit numpy vs torch.nn without oneDNN", t["rnnkit"], t["native"]))
            rows.append(row(f"{kind} {dtype}: rnnkit numpy vs matrix-product floor", t["rnnkit"], t["floor"]))
            rows.append(row(f"{kind} {dtype}: rnnkit numpy vs plain CS231n-style numpy", t["rnnkit"], t["plain"]))


def sweep(args, rows):
    import numpy as np
    import torch

    B, I, H = args.batch, args.inputs, args.hidden
    rng = np.random.default_rng(1)
    ref, m = pair("LSTM", I, H, "float32")
    points = []
    for T in args.sweep:
        x = rng.standard_normal((T, B, I)).astype("float32")
        d_out = rng.standard_normal((T, B, H)).astype("float32")
        xt, dt = torch.from_numpy(x), torch.from_numpy(d_out)
        t = interleaved({"rnnkit": rnnkit_step(m, x, d_out), "torch": torch_step(ref, xt, dt)}, args.repeats, args.warmup)
        r = row(f"LSTM float32 T={T}: time", t["rnnkit"], t["torch"])
        point = {
            "T": T,
            "rnnkit_s": r["rnnkit"]["wall_s"],
            "torch_s": r["reference"]["wall_s"],
            "rnnkit_bytes_per_step": rnnkit_kept_bytes(m, x) / T,
            "torch_bytes_per_step": torch_kept_bytes(ref, xt) / T,
        }
        points.append(point)
        rows.append(r)
        rows.append({"comparison": f"LSTM float32 T={T}: BPTT memory per step",
                     "rnnkit_bytes": point["rnnkit_bytes_per_step"], "reference_bytes": point["torch_bytes_per_step"],
                     "ratio": point["rnnkit_bytes_per_step"] / point["torch_bytes_per_step"], "target": MEMORY_TARGET})
    return points


def memory(args, rows):
    """BPTT memory per step of each cell at the default length (float32)."""
    import numpy as np
    import torch

    B, T, I, H = args.batch, args.steps, args.inputs, args.hidden
    x = np.random.default_rng(2).standard_normal((T, B, I)).astype("float32")
    for kind in ("LSTM", "GRU", "RNN"):
        ref, m = pair(kind, I, H, "float32")
        kit, tor = rnnkit_kept_bytes(m, x) / T, torch_kept_bytes(ref, torch.from_numpy(x)) / T
        rows.append({"comparison": f"{kind} float32 T={T}: BPTT memory per step", "rnnkit_bytes": kit,
                     "reference_bytes": tor, "ratio": kit / tor, "target": MEMORY_TARGET})


def torch_backend(args, rows, device: str):
    import torch

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

    fns = {"rnnkit": rnnkit_step(m, x, d_out), "loop": loop_step}
    if device == "cuda":
        fns["cudnn"] = torch_step(ref, x, d_out)
    t = interleaved(fns, args.repeats, args.warmup, sync=sync)
    rows.append(row(f"LSTM float32 on torch {device}: rnnkit vs Python-loop autograd LSTM", t["rnnkit"], t["loop"]))
    if device == "cuda":
        rows.append(row("LSTM float32 on cuda: rnnkit vs cuDNN nn.LSTM", t["rnnkit"], t["cudnn"]))


# ----------------------------------------------------------------------------- output


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


def print_table(results):
    # memory does not depend on the thread count: its rows come from the first run only
    rows = [(res["threads"], r) for i, res in enumerate(results) for r in res["rows"] if i == 0 or "rnnkit_bytes" not in r]
    width = max(len(r["comparison"]) for _, r in rows)
    head = f"{'thr':>3}  {'comparison':<{width}}  {'rnnkit':>10}  {'reference':>10}  {'ratio':>6}  {'cpu':>6}  {'target':>7}"
    print(head)
    print("-" * len(head))
    for threads, r in rows:
        if "rnnkit_bytes" in r:
            a, b = f"{r['rnnkit_bytes'] / 1024:.1f} KiB", f"{r['reference_bytes'] / 1024:.1f} KiB"
            ratio, cpu = r["ratio"], ""
        else:
            a, b = f"{1e3 * r['rnnkit']['wall_s']:.2f} ms", f"{1e3 * r['reference']['wall_s']:.2f} ms"
            ratio, cpu = r["ratio_wall"], f"{r['ratio_cpu']:6.2f}"
        target = ""
        if "target" in r and (threads == 1 or "floor" not in r["comparison"]):  # the floor's bound: 1 thread
            held = (r["ratio_cpu"] if "ratio_cpu" in r and threads == 1 else ratio) <= r["target"]
            target = f"{'≤' if held else '>'} {r['target']:.2f}"
        print(f"{threads:>3}  {r['comparison']:<{width}}  {a:>10}  {b:>10}  {ratio:6.2f}  {cpu:>6}  {target:>7}")
    print("ratio: wall-time medians; cpu: CPU-time medians (process_time, all threads). target: the issue's "
          "bound, judged on cpu with 1 thread, on wall with more ('≤' holds, '>' does not)")


def run_here(args) -> dict:
    """All comparisons in this process, at the thread count its environment set."""
    import numpy as np
    import torch

    torch.set_num_threads(args.threads[0])
    only = set(args.only or ["cells", "memory", "sweep", "torch"])
    load_before = os.getloadavg()
    rows, points = [], []
    if "cells" in only:
        compare_cells(args, rows)
    if "memory" in only:
        memory(args, rows)
    if "sweep" in only:
        points = sweep(args, rows)
    if "torch" in only:
        torch_backend(args, rows, "cpu")
        if args.device == "cuda":
            torch_backend(args, rows, "cuda")
    return {"threads": args.threads[0], "torch_threads": torch.get_num_threads(), "numpy": np.__version__,
            "torch": torch.__version__, "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
            "rows": rows, "sweep": points}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--inputs", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="BLAS/OpenMP/torch thread counts, each run in its own process (default: 1 2)")
    parser.add_argument("--sweep", type=int, nargs="*", default=[25, 50, 100, 200, 400])
    parser.add_argument("--device", default=None, help="cpu, or cuda for the GPU comparison (default: cuda if available)")
    parser.add_argument("--only", choices=["cells", "memory", "sweep", "torch"], nargs="*")
    parser.add_argument("--json", type=Path, default=RESULTS / "bench.json", help="where to write the results")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:  # one thread count, in a process started by the parent below
        if args.device is None:
            import torch

            args.device = "cuda" if torch.cuda.is_available() else "cpu"
        print(json.dumps(run_here(args)))
        return

    results = []
    for n in args.threads:
        env = {**os.environ, **{v: str(n) for v in THREAD_VARS}}
        child = [a for a in (argv if argv is not None else sys.argv[1:])]
        cmd = [sys.executable, str(Path(__file__).resolve()), *child, "--child", "--threads", str(n)]
        print(f"running with {n} thread(s) ...", file=sys.stderr, flush=True)
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.stderr.write(done.stderr)
            raise SystemExit(f"the run with {n} thread(s) failed")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))

    first = results[0]
    print(f"batch {args.batch}, {args.steps} steps, {args.inputs} inputs, {args.hidden} hidden; "
          f"median of {args.repeats} interleaved runs; torch {first['torch']}, numpy {first['numpy']}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    for res in results:
        print(f"{res['threads']} thread(s): load average {res['loadavg_before'][0]:.2f} before, "
              f"{res['loadavg_after'][0]:.2f} after")
    print_table(results)
    meta = {"machine": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "child"}}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"meta": meta, "runs": results}, indent=2))
    points = next((res["sweep"] for res in results if res["sweep"]), None)
    if points:
        plot(points, args.json.parent / "sweep.png")
    print(f"wrote {args.json}" + (f" and {args.json.parent / 'sweep.png'}" if points else ""))


if __name__ == "__main__":
    main()
