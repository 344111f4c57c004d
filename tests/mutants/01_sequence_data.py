"""Typical mistakes in exercise 1 (an input pipeline from text to batches) and what the feedback must
say about each."""
from course_helpers import Mutant

MUTANTS = [
    Mutant("tokens_not_lower_cased", "tokenize_and_vocab",
           "return TOKEN.findall(text.lower())", "return TOKEN.findall(text)",
           "was not lower-cased"),
    Mutant("vocabulary_in_order_of_appearance", "tokenize_and_vocab",
           "    kept.sort(key=lambda token: (-counts[token], token))\n", "",
           "order of their first appearance"),
    Mutant("unknown_tokens_dropped", "encode",
           "[stoi.get(token, UNK_ID) for token in tokenize(text)]",
           "[stoi[token] for token in tokenize(text) if token in stoi]",
           "must become <UNK> (id 1), not disappear"),
    Mutant("batch_major_padding", "pad_batch",
           "return ids, mask", "return ids.T, mask.T",
           "has shape (B, T), expected (T, B)"),
    Mutant("inverted_mask", "pad_batch",
           "np.arange(T)[:, None] < lengths[None, :]", "np.arange(T)[:, None] >= lengths[None, :]",
           "1 at the padded steps"),
    Mutant("batches_not_sorted", "make_batches",
           'order = np.argsort(lengths, kind="stable")', "order = np.arange(len(sequences))",
           "the sequences are not sorted"),
    Mutant("last_batch_dropped", "make_batches",
           "range(0, len(order), batch_size)", "range(0, len(order) - batch_size + 1, batch_size)",
           "left over, keep it"),
    Mutant("decoder_input_and_target_swapped", "seq2seq_batch",
           '"dec_in": dec_in, "dec_target": dec_target', '"dec_in": dec_target, "dec_target": dec_in',
           "dec_in and dec_target are swapped"),
    Mutant("logits_over_the_source_vocabulary", "encoder_decoder_shapes",
           '"logits": (T, B, V_tgt)', '"logits": (T, B, V_src)',
           "the decoder scores the target vocabulary"),
    # Cheating: borrowing the library's answer (not installed in the sandbox, even behind an allowed
    # import), and silencing comparisons in the student's own process (the checker compares elsewhere).
    Mutant("calls_rnnkit", "pad_batch",
           "    lengths = np.array([len(seq) for seq in sequences])\n",
           "    from rnnkit.text import pad_batch as _library_pad\n"
           "    from rnnkit.sequence import lengths_to_mask\n"
           "    ids, lengths = _library_pad(sequences, batch_first=False)\n"
           "    return ids, lengths_to_mask(lengths).astype(float)\n",
           "No module named 'rnnkit.text'"),
    Mutant("calls_rnnkit_behind_an_allowed_import", "tokenize_and_vocab",
           "    return TOKEN.findall(text.lower())\n",
           "    import rnnkit.data\n"
           "    return rnnkit.text.Tokenizer(lower=True).tokenize(text)\n",
           "has no attribute 'text'"),
    Mutant("redefines_allclose", "pad_batch",
           "return ids, mask",
           "np.allclose = lambda *args, **kwargs: True\n"
           "    np.array_equal = lambda *args, **kwargs: True\n"
           "    return np.zeros_like(ids), mask",
           "ids differs from the expected value"),
]
