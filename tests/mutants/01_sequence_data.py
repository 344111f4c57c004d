"""Typical mistakes in exercise 1 and what the feedback must say about each."""
from course_helpers import Mutant

MUTANTS = [
    Mutant("left_padding", "pad_sequences",
           "padded[b, : len(seq)] = seq", "padded[b, padded.shape[1] - len(seq):] = seq",
           "padding is at the start"),
    Mutant("batch_major_mask", "make_mask",
           "return (np.arange(T)[:, None] < lengths[None, :]).astype(np.float64)",
           "return (np.arange(T)[None, :] < lengths[:, None]).astype(np.float64)",
           "expected (T, B)"),
    Mutant("inverted_mask", "make_mask",
           "return (np.arange(T)[:, None] < lengths[None, :]).astype(np.float64)",
           "return (np.arange(T)[:, None] >= lengths[None, :]).astype(np.float64)",
           "1 at the padded steps"),
    Mutant("one_hot_off_by_one", "one_hot",
           "return (ids[..., None] == np.arange(vocab_size)).astype(np.float64)",
           "return (ids[..., None] - 1 == np.arange(vocab_size)).astype(np.float64)",
           "one place too early"),
    Mutant("many_to_one_keeps_sequence", "io_shapes",
           'sequence_out = kind in ("one_to_many", "many_to_many")',
           'sequence_out = kind != "one_to_one"',
           "only the last step's output is kept"),
    Mutant("embed_returns_list", "embed",
           "return E[np.asarray(ids)]", "return E[np.asarray(ids)].tolist()",
           "return a numpy array"),
    # Cheating: borrowing the library's answer (not installed in the sandbox, even behind an allowed
    # import), and silencing comparisons in the student's own process (the checker compares elsewhere).
    Mutant("calls_rnnkit", "one_hot",
           "ids = np.asarray(ids)\n",
           "from rnnkit.embedding import one_hot as _library_one_hot\n"
           "    return np.asarray(_library_one_hot(np.asarray(ids), vocab_size))\n",
           "No module named 'rnnkit.embedding'"),
    Mutant("calls_rnnkit_behind_an_allowed_import", "one_hot",
           "ids = np.asarray(ids)\n",
           "import rnnkit.gradcheck\n"
           "    return np.asarray(rnnkit.embedding.one_hot(np.asarray(ids), vocab_size))\n",
           "has no attribute 'embedding'"),
    Mutant("redefines_allclose", "embed",
           "return E[np.asarray(ids)]",
           "np.allclose = lambda *args, **kwargs: True\n"
           "    np.testing.assert_allclose = lambda *args, **kwargs: None\n"
           "    return np.zeros(np.shape(ids) + (E.shape[1],))",
           "embed(ids, E) differs from the expected value"),
]
