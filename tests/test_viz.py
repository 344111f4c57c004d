"""rnnkit.viz helpers that need no browser: the text progress bar."""
import re

from rnnkit.viz import progress_bar


def test_progress_bar_is_one_line_of_text_on_stdout(capsys):
    bar = progress_bar(range(50), desc="training", mininterval=0)
    for i in bar:
        bar.set_postfix(loss=f"{1 / (i + 1):.2f}")
    bar.close()
    out = capsys.readouterr().out
    final = re.sub(r".*\r", "", out.rstrip("\n").split("\n")[-1])  # what a page keeps of the redraws
    assert final.startswith("training: 100%") and "50/50" in final and "loss=0.02" in final
    assert len(final) <= 72
