"""rnnkit.viz helpers that need no browser: the text progress bar."""
from rnnkit.viz import progress_bar


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
