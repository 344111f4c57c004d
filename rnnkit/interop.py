"""Conversion between rnnkit modules and torch.nn modules, parameters copied bit for bit.

    m = from_torch(torch.nn.LSTM(4, 8, num_layers=2))    # numpy parameters, dtype kept
    tm = to_torch(m)                                      # a torch.nn.LSTM again

Supported: ``nn.RNN``, ``nn.GRU``, ``nn.LSTM`` (without ``proj_size``) and ``nn.RNNCell``,
``nn.GRUCell``, ``nn.LSTMCell``. rnnkit-only variants (GRU ``reset_after=False``,
``update_weighs="candidate"``, the simplified GRU, peephole LSTMs, merge modes other than
"concat", ``residual``, ``layer_norm``) have no torch.nn counterpart and ``to_torch`` refuses
them. ``dropout`` carries over both ways (the masks are drawn independently on each side, so
the two agree in ``eval()`` mode, or with dropout 0).
"""

from .backend import to_backend
from .modules import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

__all__ = ["from_torch", "to_torch"]


def from_torch(module, backend="numpy"):
    """An rnnkit module equal to the torch module ``module`` (same configuration, same
    dtype, parameters copied exactly), with parameters on ``backend`` ('numpy', or
    'torch' to keep them as tensors on the module's device)."""
    import torch.nn as nn

    params = {name: p for name, p in module.named_parameters()}
    dtype = str(next(iter(params.values())).dtype).replace("torch.", "")
    if isinstance(module, nn.RNNBase):
        if getattr(module, "proj_size", 0):
            raise ValueError(f"LSTM with proj_size={module.proj_size} is not supported (rnnkit has no projections)")
        kwargs = dict(
            bias=module.bias,
            batch_first=module.batch_first,
            dropout=module.dropout,
            bidirectional=module.bidirectional,
            dtype=dtype,
        )
        if isinstance(module, nn.LSTM):
            m = LSTM(module.input_size, module.hidden_size, module.num_layers, **kwargs)
        elif isinstance(module, nn.GRU):
            m = GRU(module.input_size, module.hidden_size, module.num_layers, **kwargs)
        elif isinstance(module, nn.RNN):
            kwargs["nonlinearity"] = module.nonlinearity
            m = RNN(module.input_size, module.hidden_size, module.num_layers, **kwargs)
        else:
            raise TypeError(f"unsupported torch module {type(module).__name__}")
    elif isinstance(module, nn.LSTMCell):
        m = LSTMCell(module.input_size, module.hidden_size, module.bias, dtype=dtype)
    elif isinstance(module, nn.GRUCell):
        m = GRUCell(module.input_size, module.hidden_size, module.bias, dtype=dtype)
    elif isinstance(module, nn.RNNCell):
        m = RNNCell(module.input_size, module.hidden_size, module.bias, nonlinearity=module.nonlinearity, dtype=dtype)
    else:
        raise TypeError(
            "from_torch expects torch.nn.RNN, GRU, LSTM, RNNCell, GRUCell or LSTMCell, "
            f"got {type(module).__module__}.{type(module).__name__}"
        )
    if set(params) != set(m.params):
        raise ValueError(f"parameter names differ: torch has {sorted(params)}, rnnkit expects {sorted(m.params)}")
    device = next(iter(params.values())).device if backend == "torch" else None
    return m.load_state_dict({name: to_backend(p, backend, device=device) for name, p in params.items()})


def to_torch(m):
    """The ``torch.nn`` module equal to the rnnkit module ``m`` (same configuration, dtype
    and device, parameters copied exactly)."""
    import torch
    import torch.nn as nn

    if not isinstance(m, (RNN, GRU, LSTM, RNNCell, GRUCell, LSTMCell)):
        raise TypeError(
            f"to_torch expects an rnnkit RNN, GRU, LSTM, RNNCell, GRUCell or LSTMCell, got {type(m).__name__}"
        )
    options = m.cell_options
    if m.cell.name == "gru_simple":
        raise ValueError("the simplified GRU has no torch.nn counterpart")
    if m.cell.name == "gru" and (options["reset_after"] is not True or options["update_weighs"] != "previous"):
        raise ValueError(
            "torch.nn.GRU is the GRU with reset_after=True and update_weighs='previous', got "
            f"reset_after={options['reset_after']!r}, update_weighs={options['update_weighs']!r}"
        )
    if options.get("peephole"):
        raise ValueError("torch.nn.LSTM has no peephole connections")
    for option in ("residual", "layer_norm"):
        if getattr(m, option, False):
            raise ValueError(f"torch.nn's recurrent modules have no {option} option ({option}=True)")
    if getattr(m, "bidirectional", False) and m.merge_mode != "concat":
        raise ValueError(f"torch concatenates the two directions; merge_mode={m.merge_mode!r} has no counterpart")

    dtype = getattr(torch, m.dtype)
    device = m.device if m.backend == "torch" else "cpu"
    common = dict(bias=m.bias, dtype=dtype, device=device)
    if isinstance(m, (RNN, GRU, LSTM)):
        cls = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[m.cell.name]
        extra = {"nonlinearity": options["nonlinearity"]} if m.cell.name == "rnn" else {}
        tm = cls(
            m.input_size,
            m.hidden_size,
            m.num_layers,
            batch_first=m.batch_first,
            dropout=m.dropout,
            bidirectional=m.bidirectional,
            **extra,
            **common,
        )
    else:
        cls = {"rnn": nn.RNNCell, "gru": nn.GRUCell, "lstm": nn.LSTMCell}[m.cell.name]
        extra = {"nonlinearity": options["nonlinearity"]} if m.cell.name == "rnn" else {}
        tm = cls(m.input_size, m.hidden_size, **extra, **common)
    with torch.no_grad():
        for name, p in tm.named_parameters():
            p.copy_(to_backend(m.params[name], "torch", device=p.device))
    return tm
