"""rnnkit: recurrent networks written out by hand, on numpy or torch tensors."""

# losses, heads, embeddings, optimizers, clipping, gradient checking, text and data utilities
from .clip import clip_grad_norm, clip_grad_value
from .embedding import Embedding, embedding_backward, embedding_forward, one_hot
from .gradcheck import grad_check, numerical_gradient
from .heads import Linear, MLPHead, linear_backward, linear_forward, softmax_head_backward, softmax_head_forward
from .losses import cross_entropy, log_softmax, softmax, softmax_backward, squared_error
from .optim import SGD, Adam, AdamW
from .text import Tokenizer, Vocabulary, pad_batch, sample, sample_from_logits

# the recurrent core: cells (forward and backward by hand), unrolling and BPTT, torch-like modules
from .cells import (
    gru_simple_step_backward,
    gru_simple_step_forward,
    gru_step_backward,
    gru_step_forward,
    lstm_step_backward,
    lstm_step_forward,
    rnn_step_backward,
    rnn_step_forward,
)
from .interop import from_torch, to_torch
from .modules import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from .params import Parameters
from .sequence import lengths_to_mask, sequence_backward, sequence_forward
from .stacked import merge_backward, merge_forward, stacked_backward, stacked_forward

# models for each input/output type
from .attention import AdditiveAttention
from .models import AttentionSeq2Seq, ManyToMany, ManyToOne, OneToMany, Seq2Seq
