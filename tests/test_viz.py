"""rnnkit.viz helpers that need no browser: the text progress bar, the seed spread."""
import myst_nb
import numpy as np
import pytest

from rnnkit.viz import glue_spread, progress_bar


def test_progress_bar_redraws_on_stderr_and_leaves_its_last_state_on_stdout(capsys):
    bar = progress_bar(range(50), desc="training", mininterval=0)
    for i in bar:
        bar.set_postfix(loss=f"{1 / (i + 1):.2f}")
    out, err = capsys.readouterr()
    lines = out.split("\n")
    assert len(lines) == 2 and lines[1] == ""  # one line on stdout
    assert lines[0].startswith("training: 100%") and "50/50" in lines[0] and "loss=0.02" in lines[0]
    assert len(lines[0]) <= 72 and err.count("\r") > 10  # the redraws went to stderr
    bar.close()  # closing again prints nothing
    assert capsys.readouterr().out == ""


def test_glue_spread_glues_mean_smallest_and_largest(monkeypatch):
    glued = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display: glued.setdefault(name, (value, display)))
    values = glue_spread("ppl", [6.12, 5.95, 6.08])
    assert set(glued) == {"ppl", "ppl_lo", "ppl_hi"}
    assert glued["ppl"][0] == pytest.approx(6.05) and glued["ppl_lo"][0] == 5.95 and glued["ppl_hi"][0] == 6.12
    assert all(display is False for _, display in glued.values())  # glued for the text, not shown
    assert values.dtype == np.float64 and values.tolist() == [6.12, 5.95, 6.08]
