"""Typical mistakes in exercise 10 (sequence to sequence) and what the feedback must say about each."""
from course_helpers import Mutant

MUTANTS = [
    Mutant("generation_does_not_feed_back", "greedy_decode",
           "tokens = np.argmax(logits, axis=1)       # the choice of this step is the next input\n"
           "        for b in range(B):\n"
           "            if finished[b]:\n"
           "                continue\n"
           "            if tokens[b] == eos_id:\n"
           "                finished[b] = True\n"
           "            else:\n"
           "                generated[b].append(int(tokens[b]))",
           "chosen = np.argmax(logits, axis=1)       # tokens stays <BOS>\n"
           "        for b in range(B):\n"
           "            if finished[b]:\n"
           "                continue\n"
           "            if chosen[b] == eos_id:\n"
           "                finished[b] = True\n"
           "            else:\n"
           "                generated[b].append(int(chosen[b]))",
           "feed it back"),
    Mutant("generation_does_not_stop_at_eos", "greedy_decode",
           "if tokens[b] == eos_id:", "if False:",
           "the lists go on after <EOS>"),
    Mutant("teacher_forcing_not_shifted", "teacher_forcing_inputs",
           "return np.concatenate([bos, targets[:-1]], axis=0)", "return targets.copy()",
           "shown the very token it must predict"),
    Mutant("padding_counted_in_loss", "masked_cross_entropy",
           "keep = (targets != pad_id).astype(logits.dtype)", "keep = np.ones(targets.shape)",
           "the padding was counted"),
    Mutant("decoder_not_started_from_encoder", "seq2seq_loss",
           'sequence_forward("gru", x_dec, h_enc,', 'sequence_forward("gru", x_dec, None,',
           "did not start from the encoder's final state"),
    Mutant("no_gradient_into_encoder", "seq2seq_loss",
           "sequence_backward(None, dh_enc, enc_cache)", "sequence_backward(None, None, enc_cache)",
           "the encoder's gradients are all zero"),
    Mutant("loss_averaged", "masked_cross_entropy",
           "    return loss, dlogits", "    return loss / keep.sum(), dlogits / keep.sum()",
           "this exercise sums it"),
    # Cheating: borrowing the library's loss (graded sandboxed, where rnnkit.losses is not installed).
    Mutant("calls_rnnkit", "masked_cross_entropy",
           "shifted = logits - logits.max(axis=-1, keepdims=True)\n",
           "from rnnkit.losses import cross_entropy as _library_loss\n"
           "    return _library_loss(logits, targets, ignore_index=pad_id)\n",
           "No module named 'rnnkit.losses'"),
]
