"""rnnkit.data: shapes, determinism, and the properties each dataset claims."""

from collections import defaultdict

import numpy as np
import pytest

from rnnkit import data
from rnnkit.data import VERBS, _NOUNS


def test_names_corpus():
    names = data.names_corpus()
    assert len(names) == 5163 and names == sorted(set(names))
    assert all(name.isalpha() and name == name.lower() for name in names)
    assert {"mary", "james", "linda"} <= set(names)
    female, male = data.names_corpus("female"), data.names_corpus("male")
    assert (len(female), len(male)) == (4275, 1219) and set(female) | set(male) == set(names)
    with pytest.raises(ValueError, match="gender"):
        data.names_corpus("other")


def test_digits_sequences():
    X, y = data.digits_sequences()
    assert X.shape == (1797, 8, 8) and X.dtype == np.float64 and y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0 and set(y.tolist()) == set(range(10))
    from sklearn.datasets import load_digits

    np.testing.assert_array_equal(X[5, 2], load_digits().data[5, 16:24] / 16)  # step 2 = pixel row 2


def test_co2_series():
    values, dates = data.co2_series()
    assert values.shape == dates.shape == (2284,) and values.dtype == np.float64
    assert not np.isnan(values).any() and 310 < values.min() and values.max() < 380
    assert dates[0] == np.datetime64("1958-03-29") and np.all(np.diff(dates) == np.timedelta64(7, "D"))
    assert values[-52:].mean() > values[:52].mean() + 40  # the trend the forecaster must follow


def test_austen_novels_are_running_text():
    novels = data.austen_novels()
    assert tuple(novels) == data.AUSTEN_TITLES
    sizes = {title: len(text) for title, text in novels.items()}
    assert sizes["Northanger Abbey"] == 432174 and sizes["Emma"] == 880028, sizes
    assert 4_000_000 < sum(sizes.values()) < 4_010_000
    pride = novels["Pride and Prejudice"]
    assert pride.startswith("PRIDE AND PREJUDICE\nBy Jane Austen\nChapter 1\nIt is a truth universally "
                            "acknowledged, that a single man in possession of a good fortune, must be in want")
    paragraphs = [p for text in novels.values() for p in text.split("\n")]
    assert all(p and p == " ".join(p.split()) for p in paragraphs)  # joined lines, no empty paragraph
    assert max(len(p) for p in paragraphs) > 2000  # paragraphs, not the package's printed lines
    assert sum(len(text.split()) for text in novels.values()) == 717537


def test_austen_novels_say_how_to_install_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install r-cran-janeaustenr"):
        data.austen_novels(libraries=(str(tmp_path),))


def test_r_character_vectors_reads_r_serialization():
    """A character vector written by hand in R's XDR format, with an NA, as a lazy-load record."""
    import struct
    import zlib

    def string(s):
        raw = s.encode("utf-8")
        return struct.pack(">ii", 0x00040009, len(raw)) + raw

    body = (b"X\n" + struct.pack(">iii", 3, 0x040201, 0x030500) + struct.pack(">i", 5) + b"UTF-8"
            + struct.pack(">ii", 16, 3) + string("ab") + struct.pack(">ii", 9, -1) + string("£ c"))
    record = struct.pack(">I", len(body)) + zlib.compress(body)
    assert data._r_character_vectors(record + record) == [["ab", "", "£ c"]] * 2
    with pytest.raises(ValueError, match="XDR"):
        bad = b"A\n" + body[2:]
        data._r_character_vectors(struct.pack(">I", len(bad)) + zlib.compress(bad))


@pytest.mark.parametrize("min_gap,max_gap", [(0, 4), (3, 12), (7, 7)])
def test_agreement_corpus_subject_decides_the_verb_across_the_gap(min_gap, max_gap):
    corpus = data.agreement_corpus(n=3000, min_gap=min_gap, max_gap=max_gap, seed=1)
    singular = {s for s, _ in _NOUNS}
    plural = {p for _, p in _NOUNS}
    last_noun_agrees = []
    for sentence, target, gap in zip(*corpus):
        assert sentence[0] == "the" and sentence[-1] == VERBS[target]
        subject = sentence[1]
        assert (subject in plural) == (target == 1) and (subject in singular) == (target == 0)
        assert len(sentence) - 3 == gap and min_gap <= gap <= max_gap
        assert "was" not in sentence[:-1] and "were" not in sentence[:-1]
        nouns = [w for w in sentence[2:-1] if w in singular | plural]
        if nouns:  # the noun nearest the verb is a distractor of random number
            last_noun_agrees.append((nouns[-1] in plural) == (target == 1))
    assert set(np.unique(corpus.gaps)) == set(range(min_gap, max_gap + 1))
    assert abs(corpus.targets.mean() - 0.5) < 0.05
    if max_gap >= 3:
        assert len(last_noun_agrees) > 500 and abs(np.mean(last_noun_agrees) - 0.5) < 0.05


def test_agreement_corpus_is_deterministic_and_small():
    a, b = data.agreement_corpus(200, 0, 10, seed=3), data.agreement_corpus(200, 0, 10, seed=3)
    assert a.sentences == b.sentences and np.array_equal(a.targets, b.targets)
    assert data.agreement_corpus(200, 0, 10, seed=4).sentences != a.sentences
    assert len({w for s in data.agreement_corpus(3000, 0, 12).sentences for w in s}) == 34
    with pytest.raises(ValueError, match="min_gap"):
        data.agreement_corpus(10, 5, 2)


def test_copy_and_reverse_tasks():
    X, Y = data.copy_task(n=50, length=6, vocab=5, seed=0)
    assert X.shape == Y.shape == (50, 6) and X.dtype == np.int64 and np.array_equal(X, Y) and X.max() < 5
    X, Y = data.reverse_task(n=50, length=6, vocab=5, seed=0)
    np.testing.assert_array_equal(Y, X[:, ::-1])
    assert np.array_equal(data.reverse_task(50, 6, 5, seed=0)[0], X)


def test_bidirectional_task_needs_the_future():
    n, T = 4000, 8
    X, y = data.bidirectional_task(n=n, length=T, vocab=6, seed=0)
    assert X.shape == y.shape == (n, T) and set(np.unique(y)) == {0, 1}
    np.testing.assert_array_equal(y[:, :-1], X[:, 1:] % 2)  # the label is read off the next token
    assert np.all(y[:, -1] == 0)
    for t in range(T - 1):
        # the label is NOT a function of the prefix X[:, :t+1]: group the sequences by their prefix ...
        groups = defaultdict(list)
        for prefix, label in zip(map(tuple, X[:, : t + 1]), y[:, t]):
            groups[prefix].append(label)
        assert any(len(set(labels)) == 2 for labels in groups.values())  # ... the same past, both labels
        if t <= 1:  # enough sequences per prefix to measure: the best guess from the past is a coin flip
            best = sum(max(labels.count(0), labels.count(1)) for labels in groups.values()) / n
            assert best < 0.56
    # while the next token alone determines it
    assert all(len(set(y[X[:, 1] == v, 0])) == 1 for v in range(6))


def test_coin_flips_vs_temperature_like_series():
    def lag1(x):
        return np.corrcoef(x[:-1], x[1:])[0, 1]

    coins = data.coin_flips(2000, seed=0)
    temps = data.temperature_like_series(730, seed=0)
    assert coins.shape == (2000,) and set(np.unique(coins)) == {0, 1} and abs(coins.mean() - 0.5) < 0.05
    assert temps.shape == (730,) and temps.dtype == np.float64
    assert abs(lag1(coins)) < 0.1 and lag1(temps) > 0.9
    assert np.array_equal(data.coin_flips(100, seed=5), data.coin_flips(100, seed=5))
    assert np.array_equal(data.temperature_like_series(100, seed=5), data.temperature_like_series(100, seed=5))


def test_sine_waves():
    x = data.sine_waves(n=30, length=40, seed=0, noise=0.0)
    assert x.shape == (30, 40) and np.abs(x).max() <= 1.5
    assert np.array_equal(x, data.sine_waves(n=30, length=40, seed=0, noise=0.0))
    noisy = data.sine_waves(n=30, length=40, seed=1)
    assert not np.array_equal(noisy, data.sine_waves(n=30, length=40, seed=2))


def test_number_translation():
    pairs = data.number_translation()
    assert len(pairs.numbers) == 999 and pairs.numbers[0] == 1 and pairs.numbers[-1] == 999
    cases = {7: ("seven", "sieben"), 16: ("sixteen", "sechzehn"), 21: ("twenty one", "ein und zwanzig"),
             100: ("one hundred", "ein hundert"), 101: ("one hundred one", "ein hundert eins"),
             342: ("three hundred forty two", "drei hundert zwei und vierzig"),
             970: ("nine hundred seventy", "neun hundert siebzig")}
    for n, (english, german) in cases.items():
        assert " ".join(pairs.source[n - 1]) == english and " ".join(pairs.target[n - 1]) == german
    # German compounds: the parts joined give the written word
    assert "".join(data.number_words(342, "german")) == "dreihundertzweiundvierzig"
    assert len({" ".join(t) for t in pairs.target}) == 999  # one translation per number
    assert max(map(len, pairs.source)) == 4 and max(map(len, pairs.target)) == 5
    with pytest.raises(ValueError, match="from 1 to 999"):
        data.number_words(1000)
    with pytest.raises(ValueError, match="language"):
        data.number_words(5, "french")
