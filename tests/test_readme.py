"""The API tour in README.md runs and does what its comments say."""
import re
from pathlib import Path

import numpy as np
import torch

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_api_tour_runs():
    code = re.search(r"## rnnkit in five minutes\n\n```python\n(.*?)```", README.read_text(), re.S).group(1)
    ns = {}
    exec(compile(code, "README.md", "exec"), ns)
    assert ns["out"].shape == (10, 3, 8) and ns["h_n"].shape == (1, 3, 8)
    assert ns["m"].grads["weight_hh_l1_reverse"].shape == (32, 8)
    assert {"x", "h_prev", "weight_ih", "weight_hh"} <= set(ns["grads"])
    with torch.no_grad():
        expected, _ = ns["ref"](torch.from_numpy(ns["x"]).float())
    assert torch.allclose(ns["out"], expected, atol=1e-6)
    assert np.isfinite(ns["dx"]).all()
