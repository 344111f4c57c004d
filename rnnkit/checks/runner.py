"""Entry point of the fresh process that runs one check (``python -m rnnkit.checks.runner``).

Reads ``{"spec", "params", "source", "result"}`` as JSON on stdin, writes
``{"ok": bool, "message": str}`` to the file named by ``result``.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import json
import sys

import numpy as np

from rnnkit.checks import core


def run(request: dict) -> dict:
    module_name, _, spec_name = request["spec"].rpartition(".")
    module = importlib.import_module(f"rnnkit.checks.{module_name}")
    spec = getattr(module, spec_name)
    allowed = core.ALLOWED_RNNKIT + tuple(getattr(module, "ALLOWED", ()))
    forbidden = core.FORBIDDEN + tuple(getattr(module, "FORBIDDEN", ()))

    code = core.definitions(request["source"])
    uses = core.forbidden_uses(code, allowed, forbidden)
    if uses:
        raise core.CheckFailure(
            f"your code uses {', '.join(uses)}; this exercise asks you to write that part yourself "
            "with numpy (only " + ", ".join(allowed) + " may be imported)")

    params = dict(request.get("params") or {})
    seed = params.pop("seed", None)
    rng = np.random.default_rng(seed)
    namespace = {"__name__": core.STUDENT}
    with core.ImportGuard(allowed, forbidden), contextlib.redirect_stdout(io.StringIO()):
        try:
            exec(compile(code, "<your notebook>", "exec"), namespace)
        except Exception as exc:
            raise core.CheckFailure(f"your definitions failed to run on their own: "
                                    f"{type(exc).__name__}: {exc}") from None
        note = spec(namespace, rng, **params)
    return {"ok": True, "message": note or f"{spec_name}: passed"}


def handle(request: dict) -> None:
    """Run the check and write the verdict to the file named by ``request["result"]``."""
    try:
        verdict = run(request)
    except core.CheckFailure as failure:
        verdict = {"ok": False, "message": str(failure)}
    with open(request["result"], "w") as f:
        json.dump(verdict, f)


def main() -> None:
    handle(json.loads(sys.stdin.read()))


if __name__ == "__main__":
    main()
