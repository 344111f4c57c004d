"""Every cell variant rnnkit implements, shared by the cell, sequence and fast-path tests."""

# (cell name, options)
VARIANTS = [
    ("rnn", {"nonlinearity": "tanh"}),
    ("rnn", {"nonlinearity": "relu"}),
    ("gru", {"reset_after": True, "update_weighs": "previous"}),
    ("gru", {"reset_after": True, "update_weighs": "candidate"}),
    ("gru", {"reset_after": False, "update_weighs": "previous"}),
    ("gru", {"reset_after": False, "update_weighs": "candidate"}),
    ("gru_simple", {}),
    ("lstm", {"peephole": False}),
    ("lstm", {"peephole": True}),
]
IDS = [f"{n}-{'-'.join(map(str, o.values()))}" for n, o in VARIANTS]
