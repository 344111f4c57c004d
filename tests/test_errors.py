"""Bad inputs raise the right exception with a message naming what was expected and what came."""

import numpy as np
import pytest
import torch

from rnnkit.backend import namespace
from rnnkit.cells import get_cell, gru_step_forward, rnn_step_forward
from rnnkit.modules import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from rnnkit.sequence import sequence_backward, sequence_forward

T, B, I, H = 5, 3, 4, 6


@pytest.fixture
def x():
    return np.random.default_rng(0).standard_normal((T, B, I))


def test_wrong_feature_size(x):
    with pytest.raises(ValueError, match=r"x has 5 features, expected input_size=4"):
        RNN(I, H)(np.zeros((T, B, 5)))
    with pytest.raises(ValueError, match=r"x has 5 features, expected input_size=4"):
        LSTMCell(I, H)(np.zeros((B, 5)))
    with pytest.raises(ValueError, match=r"x has 5 features, expected 4"):
        sequence_forward("rnn", np.zeros((T, B, 5)), None, RNN(I, H).layer_params(0))


def test_two_dimensional_input_where_three_are_needed():
    with pytest.raises(ValueError, match=r"x must be 3-D \(T, B, input_size\), got a 2-D array of shape \(5, 4\)"):
        GRU(I, H)(np.zeros((T, I)))
    with pytest.raises(ValueError, match=r"x must be 3-D \(B, T, input_size\), got a 4-D"):
        GRU(I, H, batch_first=True)(np.zeros((1, B, T, I)))
    with pytest.raises(ValueError, match=r"x must be 2-D \(B, input_size\), got a 3-D array"):
        RNNCell(I, H)(np.zeros((T, B, I)))


def test_initial_state_of_wrong_shape(x):
    with pytest.raises(ValueError, match=r"h0 must have shape .* = \(4, 3, 6\), got \(2, 3, 6\)"):
        GRU(I, H, 2, bidirectional=True)(x, np.zeros((2, B, H)))
    with pytest.raises(ValueError, match=r"c0 must have shape .* = \(1, 3, 6\), got \(1, 3, 5\)"):
        LSTM(I, H)(x, (np.zeros((1, B, H)), np.zeros((1, B, 5))))
    with pytest.raises(TypeError, match=r"LSTM expects the initial state as a pair \(h0, c0\) of arrays, got ndarray"):
        LSTM(I, H)(x, np.zeros((1, B, H)))
    with pytest.raises(TypeError, match=r"LSTMCell expects the state as a pair \(h, c\) of arrays, got ndarray"):
        LSTMCell(I, H)(x[0], np.zeros((B, H)))
    with pytest.raises(TypeError, match=r"h0 or as hx, not both"):
        GRU(I, H)(x, np.zeros((1, B, H)), hx=np.zeros((1, B, H)))
    with pytest.raises(TypeError, match=r"GRU expects h0 as one array, got a tuple"):
        GRU(I, H)(x, (np.zeros((1, B, H)), np.zeros((1, B, H))))
    with pytest.raises(ValueError, match=r"h must have shape \(B, hidden_size\) = \(3, 6\), got \(3, 4\)"):
        GRUCell(I, H)(x[0], np.zeros((B, I)))
    with pytest.raises(ValueError, match=r"h0 must have shape \(B, H\) = \(3, 6\), got \(2, 6\)"):
        sequence_forward("gru", x, np.zeros((2, H)), GRU(I, H).layer_params(0))


def test_numpy_and_torch_mixed(x):
    with pytest.raises(TypeError, match=r"got a numpy array and a torch tensor; use one backend"):
        namespace(x, torch.zeros(2))
    with pytest.raises(TypeError, match=r"x is a torch tensor but the parameters are numpy arrays"):
        RNN(I, H)(torch.from_numpy(x))
    with pytest.raises(TypeError, match=r"h0 is a torch tensor but the parameters are numpy arrays"):
        RNN(I, H)(x, torch.zeros((1, B, H), dtype=torch.float64))
    with pytest.raises(TypeError, match=r"x is a numpy array but the parameters are torch tensors"):
        RNN(I, H).to(backend="torch")(x)
    with pytest.raises(TypeError, match=r"got a numpy array and a torch tensor"):
        rnn_step_forward(torch.from_numpy(x[0]), np.zeros((B, H)), RNNCell(I, H).params)


def test_not_an_array():
    with pytest.raises(TypeError, match=r"expected numpy arrays or torch tensors, got list"):
        namespace([1.0, 2.0])
    with pytest.raises(TypeError, match=r"x must be a numpy array or a torch tensor, got list"):
        RNN(I, H)([[[1.0] * I]])


def test_wrong_dtype(x):
    with pytest.raises(TypeError, match=r"x has dtype float32 but the parameters are float64"):
        RNN(I, H)(x.astype(np.float32))
    with pytest.raises(TypeError, match=r"x must have dtype float32 or float64, got int64"):
        RNN(I, H)(np.zeros((T, B, I), dtype=np.int64))
    with pytest.raises(TypeError, match=r"dtype must be float32 or float64, got int32"):
        RNN(I, H, dtype="int32")


def test_empty_sequence():
    with pytest.raises(ValueError, match=r"empty sequence \(T=0 steps\)"):
        LSTM(I, H)(np.zeros((0, B, I)))
    with pytest.raises(ValueError, match=r"empty sequence \(T=0 steps\)"):
        LSTM(I, H, batch_first=True)(np.zeros((B, 0, I)))
    with pytest.raises(ValueError, match=r"empty sequence \(T=0 steps\)"):
        sequence_forward("lstm", np.zeros((0, B, I)), None, LSTM(I, H).layer_params(0))


def test_bad_lengths(x):
    m = GRU(I, H)
    with pytest.raises(ValueError, match=r"lengths must be at most the sequence length T=5, got a length of 7"):
        m(x, lengths=[5, 7, 2])
    with pytest.raises(ValueError, match=r"lengths must have one entry per sequence, shape \(3,\), got shape \(2,\)"):
        m(x, lengths=[5, 2])
    with pytest.raises(ValueError, match=r"lengths must be at least 1, got a length of 0"):
        m(x, lengths=[5, 0, 2])
    with pytest.raises(TypeError, match=r"lengths must be integers, got dtype float64"):
        m(x, lengths=[5.0, 1.0, 2.0])
    with pytest.raises(ValueError, match=r"either lengths or mask, not both"):
        m(x, lengths=[5, 1, 2], mask=np.ones((T, B)))


def test_bad_mask(x):
    with pytest.raises(ValueError, match=r"mask must have shape \(T, B\) = \(5, 3\) .*got \(3, 5\)"):
        GRU(I, H)(x, mask=np.ones((B, T)))
    with pytest.raises(ValueError, match=r"mask must have shape \(B, T\) = \(3, 5\) .*got \(5, 3\)"):
        GRU(I, H, batch_first=True)(np.zeros((B, T, I)), mask=np.ones((T, B)))
    with pytest.raises(ValueError, match=r"mask must contain only 0 and 1"):
        GRU(I, H)(x, mask=np.full((T, B), 0.5))
    with pytest.raises(ValueError, match=r"mask must have shape \(T, B\) = \(5, 3\), got \(5,\)"):
        sequence_forward("gru", x, None, GRU(I, H).layer_params(0), mask=np.ones(T))


def test_unknown_choices():
    with pytest.raises(ValueError, match=r"nonlinearity must be 'tanh' or 'relu', got 'sigmoid'"):
        RNN(I, H, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match=r"nonlinearity must be 'tanh' or 'relu', got 'gelu'"):
        RNNCell(I, H, nonlinearity="gelu")
    with pytest.raises(ValueError, match=r"nonlinearity must be 'tanh' or 'relu', got 'elu'"):
        rnn_step_forward(np.zeros((B, I)), np.zeros((B, H)), RNNCell(I, H).params, nonlinearity="elu")
    with pytest.raises(ValueError, match=r"merge_mode must be 'concat' or 'sum' or 'mul' or 'ave', got 'max'"):
        LSTM(I, H, bidirectional=True, merge_mode="max")
    with pytest.raises(ValueError, match=r"update_weighs must be 'previous' or 'candidate', got 'old'"):
        GRU(I, H, update_weighs="old")
    with pytest.raises(TypeError, match=r"reset_after must be True or False, got 'yes'"):
        gru_step_forward(np.zeros((B, I)), np.zeros((B, H)), GRUCell(I, H).params, reset_after="yes")
    message = r"cell must be one of \['gru', 'gru_simple', 'lstm', 'rnn'\] or a Cell, got 'elman'"
    with pytest.raises(ValueError, match=message):
        get_cell("elman")
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['peephole'\] for the gru cell"):
        sequence_forward("gru", np.zeros((T, B, I)), None, GRU(I, H).layer_params(0), peephole=True)
    with pytest.raises(ValueError, match=r"simplified GRU has no reset gate"):
        GRU(I, H, simplified=True, reset_after=False)
    with pytest.raises(ValueError, match=r"hidden_size must be an integer >= 1, got 0"):
        LSTM(I, 0)
    with pytest.raises(ValueError, match=r"backend must be 'numpy' or 'torch', got 'jax'"):
        RNN(I, H).to(backend="jax")


def test_bad_backward_calls(x):
    m = LSTM(I, H)
    with pytest.raises(RuntimeError, match=r"backward\(\) needs a forward\(\) call first"):
        m.backward(np.zeros((T, B, H)))
    out, _ = m(x)
    with pytest.raises(ValueError, match=r"d_out must have the shape of out, \(5, 3, 6\), got \(5, 3, 5\)"):
        m.backward(np.zeros((T, B, 5)))
    with pytest.raises(ValueError, match=r"d_c_n must have the shape of h_n, \(1, 3, 6\), got \(3, 6\)"):
        m.backward(None, (None, np.zeros((B, H))))
    with pytest.raises(TypeError, match=r"LSTM.backward expects d_h_n=\(d_h_n, d_c_n\), got ndarray"):
        m.backward(None, np.zeros((1, B, H)))
    _, _, cache = sequence_forward("rnn", x, None, RNN(I, H).layer_params(0))
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=rf"truncate must be a positive integer or None, got {bad!r}"):
            sequence_backward(None, None, cache, truncate=bad)


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_check_finite_reports_where(x):
    m = GRU(I, H, batch_first=True)
    bad = np.zeros((B, T, I))
    bad[1, 2, 3] = np.nan
    bad[2, 0, 0] = np.inf
    with pytest.raises(ValueError, match=r"x has 2 non-finite value\(s\); the first is x\[b=1, t=2, i=3\] = nan"):
        m(bad, check_finite=True)
    with np.errstate(invalid="ignore", over="ignore"):  # numpy's own warnings are expected here
        m(bad)  # not checked by default: no error
        m = RNN(I, H, nonlinearity="relu")
        m.weight_hh_l0[...] = 1e300
        message = r"out has \d+ non-finite value\(s\); the first is out\[t=\d, b=\d, j=\d\] = inf"
        with pytest.raises(FloatingPointError, match=message):
            m(np.abs(x) + 1.0, check_finite=True)
    m = LSTM(I, H)
    m.bias_hh_l0[4] = np.nan
    message = r"bias_hh_l0 has 1 non-finite value\(s\); the first is bias_hh_l0\[row=4\] = nan"
    with pytest.raises(ValueError, match=message):
        m(x, check_finite=True)
    message = r"h0 has 1 non-finite value\(s\); the first is h0\[layer\*direction=0, b=2, j=1\] = inf"
    with pytest.raises(ValueError, match=message):
        h0 = np.zeros((1, B, H))
        h0[0, 2, 1] = np.inf
        GRU(I, H)(x, h0, check_finite=True)
