r"""Datasets for the course: read from installed pip packages or generated, never downloaded.

Every function returns numpy arrays (or strings), is deterministic (generated data is a
function of ``seed``), and is small enough to train on a CPU in seconds to a minute.

=============================  ===========================================================================
function                       source
=============================  ===========================================================================
:func:`names_corpus`           first names of the ``names`` package (US Census 1990 name lists)
:func:`digits_sequences`       scikit-learn's bundled 8x8 handwritten digits (UCI), read row by row
:func:`co2_series`             statsmodels' bundled Mauna Loa weekly CO2 record (1958-2001)
:func:`austen_novels`          Jane Austen's six novels, from Debian's ``r-cran-janeaustenr`` (4 million characters)
:func:`agreement_corpus`       generated: subject-verb agreement across a distractor clause
:func:`copy_task`,             generated: random symbol sequences and their copy / reversal
:func:`reverse_task`
:func:`bidirectional_task`     generated: each label depends on the next token
:func:`coin_flips`,            generated: independent coin flips vs. an autocorrelated "temperature"
:func:`temperature_like_series`
:func:`sine_waves`             generated: noisy sine waves with random frequency, phase and amplitude
:func:`number_translation`     generated: numbers 1-999 in English words and in German (a toy translation)
=============================  ===========================================================================

Layouts are batch-major as returned here (``(N, T, ...)``); the functional layer of rnnkit is time-major,
so transpose with ``X.transpose(1, 0, 2)`` (or use a module with ``batch_first=True``).
"""

import struct
import zlib
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = [
    "names_corpus",
    "digits_sequences",
    "co2_series",
    "AUSTEN_TITLES",
    "austen_novels",
    "AgreementData",
    "agreement_corpus",
    "copy_task",
    "reverse_task",
    "bidirectional_task",
    "coin_flips",
    "temperature_like_series",
    "sine_waves",
    "NumberPairs",
    "number_words",
    "number_translation",
]


# ---------------------------------------------------------------------------------------------------
# data read from installed packages
# ---------------------------------------------------------------------------------------------------


def names_corpus(gender="all"):
    """First names for character-level generation, lowercase, sorted, without duplicates.

    Source: the data files bundled with the ``names`` pip package (``dist.female.first`` and
    ``dist.male.first``: the first names of the 1990 US Census, one per line followed by frequency
    columns), read directly. ``gender`` is ``"female"``, ``"male"`` or ``"all"``
    (about 4,300 + 1,200 names, 5,163 distinct in all).
    """
    files = {"female": ["dist.female.first"], "male": ["dist.male.first"]}
    files["all"] = files["female"] + files["male"]
    if gender not in files:
        raise ValueError(f"gender={gender!r}, expected one of {tuple(files)}")
    found = set()
    for filename in files[gender]:
        text = resources.files("names").joinpath(filename).read_text(encoding="utf-8")
        found.update(line.split()[0].lower() for line in text.splitlines() if line.strip())
    return sorted(found)


def digits_sequences(normalize=True):
    """Handwritten digits as sequences: each 8x8 image is read row by row, top to bottom.

    Source: scikit-learn's bundled copy of the UCI optical digits test set (``sklearn.datasets.load_digits``,
    1,797 images). Returns ``(X, y)``: ``X`` of shape ``(N, 8, 8)`` = (image, step = row, feature = pixel
    in the row), float64, divided by 16 into [0, 1] when ``normalize``; ``y`` int64 labels 0-9.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = digits.images.astype(np.float64)
    if normalize:
        X = X / 16.0
    return X, digits.target.astype(np.int64)


def co2_series():
    """Weekly atmospheric CO2 at Mauna Loa (ppm), March 1958 to December 2001, for forecasting.

    Source: statsmodels' bundled dataset ``statsmodels.datasets.co2`` (Scripps / NOAA record). The 59 missing
    weeks are filled by linear interpolation in time. Returns ``(values, dates)``: float64 ``(2284,)`` and
    ``datetime64[D]`` ``(2284,)``.
    """
    from statsmodels.datasets import co2

    frame = co2.load_pandas().data
    values = frame["co2"].to_numpy(dtype=np.float64)
    dates = frame.index.to_numpy().astype("datetime64[D]")
    known = ~np.isnan(values)
    steps = np.arange(values.shape[0])
    values = np.interp(steps, steps[known], values[known])  # weeks are evenly spaced
    return values, dates


#: the novels in the order of publication (Northanger Abbey and Persuasion came out together, 1817)
AUSTEN_TITLES = ("Sense and Sensibility", "Pride and Prejudice", "Mansfield Park", "Emma", "Northanger Abbey",
                 "Persuasion")
AUSTEN_PACKAGE = "r-cran-janeaustenr"  # Debian's package of the R package janeaustenr (MIT licence)
R_LIBRARIES = ("/usr/lib/R/site-library", "/usr/local/lib/R/site-library", "/usr/lib/R/library")


def austen_novels(libraries=R_LIBRARIES):
    """Jane Austen's six completed novels as running text: ``{title: text}`` in :data:`AUSTEN_TITLES` order.

    Source: the data of the R package ``janeaustenr`` (Julia Silge; MIT licence; the texts are Project
    Gutenberg's, in the public domain), installed by Debian's package ``r-cran-janeaustenr``
    (``tools/setup.sh`` installs it) and read here without R. The package keeps each novel as its printed
    lines; here the lines of a paragraph are joined by spaces and paragraphs are separated by ``"\\n"``,
    so a text is prose, not a page layout. About 4.0 million characters and 0.72 million words in all,
    from *Northanger Abbey* (0.43 M characters) to *Emma* and *Mansfield Park* (0.88 M each).
    """
    path = next((Path(lib) / "janeaustenr" / "data" / "Rdata.rdb" for lib in libraries
                 if (Path(lib) / "janeaustenr" / "data" / "Rdata.rdb").is_file()), None)
    if path is None:
        raise FileNotFoundError(
            f"Jane Austen's novels are not installed: expected janeaustenr/data/Rdata.rdb in one of {libraries}. "
            f"Install Debian's package: apt-get install {AUSTEN_PACKAGE} (tools/setup.sh does it as root)")
    novels = {}
    for lines in _r_character_vectors(path.read_bytes()):
        title = next(t for t in AUSTEN_TITLES if t.lower() == lines[0].strip().lower())
        paragraphs = " ".join(line.strip() if line.strip() else "\n" for line in lines).split("\n")
        novels[title] = "\n".join(" ".join(p.split()) for p in paragraphs if p.strip())
    missing = [t for t in AUSTEN_TITLES if t not in novels]
    if missing:
        raise ValueError(f"{path} holds {sorted(novels)}; expected all of {AUSTEN_TITLES}, missing {missing}")
    return {title: novels[title] for title in AUSTEN_TITLES}


def _r_character_vectors(rdb):
    """The character vectors of an R lazy-load database (a package's ``data/Rdata.rdb``), as lists of str.

    Each object is a 4-byte big-endian length and a zlib stream of R's serialization, format ``X\\n``
    (XDR, big-endian): three version integers, the native encoding (length, bytes), then the object:
    its flags (low byte = type; 16 is a character vector), its length, and per element the flags of a
    string (type 9), its length in bytes (-1 for NA) and its UTF-8 bytes.
    """
    vectors, pos = [], 0
    while pos < len(rdb):
        stream = zlib.decompressobj()
        raw = stream.decompress(rdb[pos + 4 :])
        pos = len(rdb) - len(stream.unused_data)
        if raw[:2] != b"X\n":
            raise ValueError(f"not R's XDR serialization: starts with {raw[:2]!r}, expected b'X\\n'")
        at = 14 + 4 + struct.unpack_from(">i", raw, 14)[0]  # header, then the encoding's name
        flags, n = struct.unpack_from(">ii", raw, at)
        if flags & 0xFF != 16:
            continue  # not a character vector
        at, strings = at + 8, []
        for _ in range(n):
            _, size = struct.unpack_from(">ii", raw, at)
            strings.append("" if size < 0 else raw[at + 8 : at + 8 + size].decode("utf-8"))
            at += 8 + max(size, 0)
        vectors.append(strings)
    return vectors


# ---------------------------------------------------------------------------------------------------
# generated tasks
# ---------------------------------------------------------------------------------------------------

# (singular, plural) pairs: the subject's number decides "was" / "were"
_NOUNS = [("cat", "cats"), ("dog", "dogs"), ("bird", "birds"), ("boy", "boys"), ("girl", "girls"),
          ("teacher", "teachers"), ("farmer", "farmers"), ("king", "kings")]  # fmt: skip
_PREPOSITIONS = ["near", "with", "behind"]
_PAST_VERBS = ["saw", "liked", "chased"]  # the same form for singular and plural: no cue
_ADJECTIVES = ["old", "big", "small"]
_ADVERBS = ["here", "outside", "today"]
VERBS = ("was", "were")  # target 0 = singular "was", 1 = plural "were"


class AgreementData(NamedTuple):
    """Output of :func:`agreement_corpus`."""

    sentences: list  # token lists, the verb ("was"/"were") last
    targets: np.ndarray  # (n,) int64: 0 = singular / "was", 1 = plural / "were"
    gaps: np.ndarray  # (n,) int64: number of tokens between the subject noun and the verb


def _noun(rng):
    """A noun with a random number: the distractor nouns carry no information about the verb."""
    return _NOUNS[rng.integers(len(_NOUNS))][rng.integers(2)]


def _phrase(rng, size):
    """One filler phrase of ``size`` tokens (1 to 4); its nouns have a random number."""
    pick = lambda words: words[rng.integers(len(words))]  # noqa: E731
    if size == 1:
        return [pick(_ADVERBS)]  # here
    if size == 2:
        return [pick(_PREPOSITIONS), pick(["it", "them"])]  # near them
    if size == 3:
        return [pick(_PREPOSITIONS), "the", _noun(rng)]  # near the dogs
    kind = rng.integers(3)
    if kind == 0:
        return [pick(_PREPOSITIONS), "the", pick(_ADJECTIVES), _noun(rng)]  # with the old cat
    if kind == 1:
        return ["that", "the", _noun(rng), pick(_PAST_VERBS)]  # that the boys saw
    return ["that", pick(_PAST_VERBS), "the", _noun(rng)]  # that chased the bird


def _distractor(rng, length):
    """Exactly ``length`` tokens of filler phrases."""
    tokens = []
    while len(tokens) < length:
        tokens += _phrase(rng, int(rng.integers(1, min(4, length - len(tokens)) + 1)))
    return tokens


def agreement_corpus(n=2000, min_gap=0, max_gap=10, seed=0):
    """Sentences whose last word must agree in number with a subject far back: the long-range
    "was/were" example.

    Generated: ``the <noun> <distractor of g tokens> was|were``. The subject is singular or plural with
    probability 1/2 and decides the verb; the distractor clause (``g`` uniform in ``[min_gap, max_gap]``
    tokens) contains nouns of random number, e.g. ``the cats that the dog saw near the girl were``, so the
    most recent noun is no clue. A model reads ``sentence[:-1]`` and predicts the verb (``targets``).
    Vocabulary: 34 words. Returns :class:`AgreementData` ``(sentences, targets, gaps)``.
    """
    if not 0 <= min_gap <= max_gap:
        raise ValueError(f"need 0 <= min_gap <= max_gap, got min_gap={min_gap}, max_gap={max_gap}")
    rng = np.random.default_rng(seed)
    sentences, targets, gaps = [], [], []
    for _ in range(n):
        plural = int(rng.integers(2))
        gap = int(rng.integers(min_gap, max_gap + 1))
        subject = _NOUNS[rng.integers(len(_NOUNS))][plural]
        sentences.append(["the", subject] + _distractor(rng, gap) + [VERBS[plural]])
        targets.append(plural)
        gaps.append(gap)
    return AgreementData(sentences, np.array(targets, dtype=np.int64), np.array(gaps, dtype=np.int64))


def copy_task(n=1000, length=8, vocab=8, seed=0):
    """Sequence-to-sequence copying: the target equals the input.

    Generated: ``X`` uniform random symbols ``0 .. vocab-1``, shape ``(n, length)`` int64; returns ``(X, Y)``
    with ``Y = X``. Ids ``vocab`` and above are free for start / end markers of a decoder.
    """
    X = np.random.default_rng(seed).integers(0, vocab, size=(n, length), dtype=np.int64)
    return X, X.copy()


def reverse_task(n=1000, length=8, vocab=8, seed=0):
    """Sequence-to-sequence reversal: the target is the input backwards, ``Y[:, t] = X[:, length-1-t]``.

    Generated like :func:`copy_task`. The first output depends on the last input, so an encoder-decoder must
    carry the whole sequence through its state. Returns ``(X, Y)``, both ``(n, length)`` int64.
    """
    X = np.random.default_rng(seed).integers(0, vocab, size=(n, length), dtype=np.int64)
    return X, X[:, ::-1].copy()


def bidirectional_task(n=1000, length=10, vocab=6, seed=0):
    """Sequence labelling that needs the future: the label of token :math:`t` is the parity of the NEXT token.

    Generated: ``X`` uniform random symbols ``0 .. vocab-1``, shape ``(n, length)``, and
    ``y[:, t] = X[:, t+1] % 2`` for ``t < length-1``; the last token has no successor and gets label 0.
    The next token is independent of everything before it, so a model that reads only the past (a
    unidirectional RNN) is at chance (50 %) on all but the last position, while a bidirectional RNN's
    backward half has just read ``X[:, t+1]`` and can be perfect. Returns ``(X, y)``, both int64.
    """
    if vocab < 2:
        raise ValueError(f"vocab={vocab}, need at least 2 symbols")
    X = np.random.default_rng(seed).integers(0, vocab, size=(n, length), dtype=np.int64)
    y = np.zeros_like(X)
    y[:, :-1] = X[:, 1:] % 2
    return X, y


def coin_flips(n=500, seed=0):
    """Independent fair coin flips (0/1 int64, shape ``(n,)``): a sequence whose order carries no
    information, the contrast to :func:`temperature_like_series`. Generated."""
    return np.random.default_rng(seed).integers(0, 2, size=n, dtype=np.int64)


def temperature_like_series(n=730, seed=0, phi=0.8):
    r"""A synthetic daily temperature (degrees C, float64 ``(n,)``): a yearly cycle plus autocorrelated noise.

    Generated: :math:`x_t = 12 + 8\sin(2\pi t / 365) + e_t` with AR(1) weather noise
    :math:`e_t = \phi\, e_{t-1} + \varepsilon_t`, :math:`\varepsilon_t \sim \mathcal N(0, 1.5^2)`.
    Today predicts tomorrow (lag-1 autocorrelation close to 1), unlike :func:`coin_flips`.
    """
    if not -1 < phi < 1:
        raise ValueError(f"phi={phi}, expected |phi| < 1 for a stationary AR(1) noise")
    rng = np.random.default_rng(seed)
    shocks = rng.normal(0.0, 1.5, size=n)
    noise = np.zeros(n)
    for t in range(n):
        noise[t] = (phi * noise[t - 1] if t > 0 else 0.0) + shocks[t]
    days = np.arange(n)
    return 12.0 + 8.0 * np.sin(2 * np.pi * days / 365.0) + noise


def sine_waves(n=200, length=50, seed=0, noise=0.05, freq_range=(0.02, 0.1)):
    r"""Noisy sine waves for toy forecasting: :math:`x_t = A \sin(2\pi f t + \varphi) + \sigma\varepsilon_t`.

    Generated: per series, frequency :math:`f` uniform in ``freq_range`` (cycles per step), phase uniform in
    :math:`[0, 2\pi)`, amplitude :math:`A` uniform in [0.5, 1.5], Gaussian noise of std ``noise``.
    Returns float64 ``(n, length)``; predict ``x[:, 1:]`` from ``x[:, :-1]``.
    """
    rng = np.random.default_rng(seed)
    freq = rng.uniform(*freq_range, size=(n, 1))
    phase = rng.uniform(0.0, 2 * np.pi, size=(n, 1))
    amplitude = rng.uniform(0.5, 1.5, size=(n, 1))
    t = np.arange(length)
    return amplitude * np.sin(2 * np.pi * freq * t + phase) + noise * rng.standard_normal((n, length))


# ---------------------------------------------------------------------------------------------------
# a toy translation task: number words, English to German
# ---------------------------------------------------------------------------------------------------

_WORDS = {
    "english": {
        "ones": ["", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"],
        "teens": ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
                  "eighteen", "nineteen"],
        "tens": ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"],
        "hundred": "hundred",
    },
    "german": {
        "ones": ["", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"],
        "teens": ["zehn", "elf", "zwölf", "dreizehn", "vierzehn", "fünfzehn", "sechzehn", "siebzehn",
                  "achtzehn", "neunzehn"],
        "tens": ["", "", "zwanzig", "dreißig", "vierzig", "fünfzig", "sechzig", "siebzig", "achtzig", "neunzig"],
        "hundred": "hundert",
    },
}


def number_words(n, language="english"):
    """The number ``n`` (1 to 999) as a list of word tokens.

    English puts the tens before the ones: 342 is ``three hundred forty two``. German writes one word,
    *dreihundertzweiundvierzig*, split here into its parts, the way translation systems split words
    into subword units: ``drei hundert zwei und vierzig``; the ones come before the tens, joined by
    *und*, and 1 is *ein* inside a compound (*einhundert*, *einundzwanzig*) and *eins* at its end.
    """
    if not 1 <= n <= 999:
        raise ValueError(f"n={n}, expected a number from 1 to 999")
    if language not in _WORDS:
        raise ValueError(f"language={language!r}, expected one of {sorted(_WORDS)}")
    w, german = _WORDS[language], language == "german"
    hundreds, rest = divmod(n, 100)
    tokens = []
    if hundreds:
        tokens += ["ein" if german and hundreds == 1 else w["ones"][hundreds], w["hundred"]]
    tens, ones = divmod(rest, 10)
    if tens == 1:
        tokens.append(w["teens"][ones])
    elif tens == 0:
        tokens += [w["ones"][ones]] if ones else []
    elif ones == 0:
        tokens.append(w["tens"][tens])
    elif german:
        tokens += ["ein" if ones == 1 else w["ones"][ones], "und", w["tens"][tens]]
    else:
        tokens += [w["tens"][tens], w["ones"][ones]]
    return tokens


class NumberPairs(NamedTuple):
    numbers: np.ndarray  # (N,) int64
    source: list  # English token lists
    target: list  # German token lists


def number_translation(high=999):
    """A toy translation task: every number from 1 to ``high`` (at most 999) in English words and in
    German (see :func:`number_words`). Generated, in increasing order; split it into training and
    test numbers yourself. Returns ``NumberPairs(numbers, source, target)``."""
    numbers = np.arange(1, high + 1, dtype=np.int64)
    return NumberPairs(numbers, [number_words(int(n), "english") for n in numbers],
                       [number_words(int(n), "german") for n in numbers])
