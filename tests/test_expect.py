"""The comparisons every check uses explain a difference in the student's terms."""
import numpy as np
import pytest

from course.checks.expect import expect_array, expect_close
from course.verdict import CheckFailure


def test_expect_close_explains_axes_scales_and_known_mistakes():
    want = np.arange(24.0).reshape(2, 3, 4) + 1
    with pytest.raises(CheckFailure, match=r"has shape \(B, T, H\), expected \(T, B, H\)"):
        expect_close(want.transpose(1, 0, 2), want, "out", axes=("T", "B", "H"))
    with pytest.raises(CheckFailure, match="3 times .*summed instead of averaged"):
        expect_close(3 * want, want, "dW", scales={3: "summed instead of averaged"})
    with pytest.raises(CheckFailure, match="forget gate multiplies c_t"):
        expect_close(want + 1, want, "c", mistakes={"the forget gate multiplies c_t": want + 1})
    with pytest.raises(CheckFailure, match="contains NaN"):
        expect_close(np.full_like(want, np.nan), want, "h")


def test_an_unknown_difference_shows_the_first_differing_entry():
    want = np.arange(24.0).reshape(2, 3, 4) + 1
    bad = want.copy()
    bad[1, 2, 3] += 5
    bad[1, 0, 0] += 1
    with pytest.raises(CheckFailure, match=r"first difference is at index \(1, 0, 0\): yours 14, expected 13 "
                                           r"\(2 of 24 entries differ\)"):
        expect_close(bad, want, "h")


@pytest.mark.parametrize("value, message", [([1.0, 2.0], "is a list; return a numpy array"),
                                            (None, "got None"), (np.array(["a"]), "should hold numbers")])
def test_expect_array_names_what_came(value, message):
    with pytest.raises(CheckFailure, match=message):
        expect_array(value, "h")
