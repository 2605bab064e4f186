"""The classic loop as the notebooks write it (Karpathy's min-char-rnn): column vectors, a
one-hot vector per step, per-step dicts, float64. Kept faithful as the reference that
rnnexp is checked against (tests) and timed against (benchmarks); not used by the package.

Only the globals became arguments, so several models can be compared in one process.
"""

import numpy as np


def lossFun(inputs, targets, hprev, Wxh, Whh, Why, bh, by):
    """inputs, targets are lists of integers; hprev is (H, 1).
    Returns the loss, gradients on the model parameters, and the last hidden state."""
    vocab_size = Wxh.shape[1]
    xs, hs, ys, ps = {}, {}, {}, {}
    hs[-1] = np.copy(hprev)
    loss = 0
    # forward pass
    for t in range(len(inputs)):
        xs[t] = np.zeros((vocab_size, 1))  # encode in 1-of-k representation
        xs[t][inputs[t]] = 1
        hs[t] = np.tanh(np.dot(Wxh, xs[t]) + np.dot(Whh, hs[t - 1]) + bh)  # hidden state
        ys[t] = np.dot(Why, hs[t]) + by  # unnormalized log probabilities for next chars
        ps[t] = np.exp(ys[t]) / np.sum(np.exp(ys[t]))  # probabilities for next chars
        loss += -np.log(ps[t][targets[t], 0])  # softmax (cross-entropy loss)
    # backward pass: compute gradients going backwards
    dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
    dbh, dby = np.zeros_like(bh), np.zeros_like(by)
    dhnext = np.zeros_like(hs[0])
    for t in reversed(range(len(inputs))):
        dy = np.copy(ps[t])
        dy[targets[t]] -= 1  # backprop into y
        dWhy += np.dot(dy, hs[t].T)
        dby += dy
        dh = np.dot(Why.T, dy) + dhnext  # backprop into h
        dhraw = (1 - hs[t] * hs[t]) * dh  # backprop through tanh nonlinearity
        dbh += dhraw
        dWxh += np.dot(dhraw, xs[t].T)
        dWhh += np.dot(dhraw, hs[t - 1].T)
        dhnext = np.dot(Whh.T, dhraw)
    for dparam in [dWxh, dWhh, dWhy, dbh, dby]:
        np.clip(dparam, -5, 5, out=dparam)  # clip to mitigate exploding gradients
    return loss, dWxh, dWhh, dWhy, dbh, dby, hs[len(inputs) - 1]


def lossFun_stacked2(inputs, targets, hprev, h2prev, Wxh, Whh, Wh2, Wh2h2, Why, bh, bh2, by):
    """Notebook 000's two-layer net in the same style, with its two bugs fixed (the first
    layer's gradient goes through the second layer's tanh; the second state is carried)."""
    vocab_size = Wxh.shape[1]
    xs, hs, h2s, ys, ps = {}, {}, {}, {}, {}
    hs[-1], h2s[-1] = np.copy(hprev), np.copy(h2prev)
    loss = 0
    for t in range(len(inputs)):
        xs[t] = np.zeros((vocab_size, 1))
        xs[t][inputs[t]] = 1
        hs[t] = np.tanh(np.dot(Wxh, xs[t]) + np.dot(Whh, hs[t - 1]) + bh)
        h2s[t] = np.tanh(np.dot(Wh2, hs[t]) + np.dot(Wh2h2, h2s[t - 1]) + bh2)
        ys[t] = np.dot(Why, h2s[t]) + by
        ps[t] = np.exp(ys[t]) / np.sum(np.exp(ys[t]))
        loss += -np.log(ps[t][targets[t], 0])
    dWxh, dWhh, dWh2, dWh2h2 = [np.zeros_like(w) for w in (Wxh, Whh, Wh2, Wh2h2)]
    dWhy, dbh, dbh2, dby = [np.zeros_like(w) for w in (Why, bh, bh2, by)]
    dhnext, dh2next = np.zeros_like(hs[0]), np.zeros_like(h2s[0])
    for t in reversed(range(len(inputs))):
        dy = np.copy(ps[t])
        dy[targets[t]] -= 1
        dWhy += np.dot(dy, h2s[t].T)
        dby += dy
        dh2 = np.dot(Why.T, dy) + dh2next
        dh2raw = (1 - h2s[t] * h2s[t]) * dh2
        dbh2 += dh2raw
        dWh2 += np.dot(dh2raw, hs[t].T)
        dWh2h2 += np.dot(dh2raw, h2s[t - 1].T)
        dh2next = np.dot(Wh2h2.T, dh2raw)
        dh = np.dot(Wh2.T, dh2raw) + dhnext
        dhraw = (1 - hs[t] * hs[t]) * dh
        dbh += dhraw
        dWxh += np.dot(dhraw, xs[t].T)
        dWhh += np.dot(dhraw, hs[t - 1].T)
        dhnext = np.dot(Whh.T, dhraw)
    grads = [dWxh, dWhh, dWh2, dWh2h2, dWhy, dbh, dbh2, dby]
    for dparam in grads:
        np.clip(dparam, -5, 5, out=dparam)
    return loss, grads, hs[len(inputs) - 1], h2s[len(inputs) - 1]


def lossFun_srn(inputs, targets, hprev, Wxh, Whh, Why, bh, by):
    """Notebook 003's Elman net in the same style: sigmoid units, the context (hprev) an
    input that receives no gradient."""
    vocab_size = Wxh.shape[1]
    xs, hs, ys, ps = {}, {}, {}, {}
    hs[-1] = np.copy(hprev)
    loss = 0
    for t in range(len(inputs)):
        xs[t] = np.zeros((vocab_size, 1))
        xs[t][inputs[t]] = 1
        hs[t] = 1 / (1 + np.exp(-(np.dot(Wxh, xs[t]) + np.dot(Whh, hs[t - 1]) + bh)))
        ys[t] = np.dot(Why, hs[t]) + by
        ps[t] = np.exp(ys[t]) / np.sum(np.exp(ys[t]))
        loss += -np.log(ps[t][targets[t], 0])
    dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
    dbh, dby = np.zeros_like(bh), np.zeros_like(by)
    for t in reversed(range(len(inputs))):
        dy = np.copy(ps[t])
        dy[targets[t]] -= 1
        dWhy += np.dot(dy, hs[t].T)
        dby += dy
        dh = np.dot(Why.T, dy)  # no dhnext: nothing flows back through the context
        dhraw = hs[t] * (1 - hs[t]) * dh
        dbh += dhraw
        dWxh += np.dot(dhraw, xs[t].T)
        dWhh += np.dot(dhraw, hs[t - 1].T)
    grads = [dWxh, dWhh, dWhy, dbh, dby]
    for dparam in grads:
        np.clip(dparam, -5, 5, out=dparam)
    return loss, grads, hs[len(inputs) - 1]


def init(kind, vocab_size, hidden_size, seed=0):
    """The notebooks' parameters, min-char-rnn's layout: weights randn * 0.01, biases 0."""
    rs = np.random.RandomState(seed)
    H, V = hidden_size, vocab_size
    params = dict(Wxh=rs.randn(H, V) * 0.01, Whh=rs.randn(H, H) * 0.01)
    if kind == "stacked2":
        params.update(Wh2=rs.randn(H, H) * 0.01, Wh2h2=rs.randn(H, H) * 0.01)
    params["Why"] = rs.randn(V, H) * 0.01
    params["bh"] = np.zeros((H, 1))
    if kind == "stacked2":
        params["bh2"] = np.zeros((H, 1))
    params["by"] = np.zeros((V, 1))
    return params


class Classic:
    """min-char-rnn's main loop for `kind` (rnn, stacked2, srn), one step per call:
    pointer, reset, lossFun, smooth loss, update (Adagrad, or SGD as notebook 003)."""

    def __init__(self, kind, data, vocab_size, hidden_size, seq_length, learning_rate, sgd=False):
        self.kind, self.data, self.seq_length, self.lr, self.sgd = (
            kind,
            data,
            seq_length,
            learning_rate,
            sgd,
        )
        self.params = init(kind, vocab_size, hidden_size)
        self.mems = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.H = hidden_size
        self.n, self.p = 0, 0
        self.smooth_loss = -np.log(1.0 / vocab_size) * seq_length

    def step(self):
        P, T, data = self.params, self.seq_length, self.data
        if self.p + T + 1 >= len(data) or self.n == 0:
            self.hprev = np.zeros((self.H, 1))
            self.h2prev = np.zeros((self.H, 1))
            self.p = 0
        inputs = [int(i) for i in data[self.p : self.p + T]]
        targets = [int(i) for i in data[self.p + 1 : self.p + T + 1]]
        if self.kind == "rnn":
            loss, *grads, self.hprev = lossFun(inputs, targets, self.hprev, *P.values())
        elif self.kind == "srn":
            loss, grads, self.hprev = lossFun_srn(inputs, targets, self.hprev, *P.values())
        else:
            loss, grads, self.hprev, self.h2prev = lossFun_stacked2(
                inputs, targets, self.hprev, self.h2prev, *P.values()
            )
        self.smooth_loss = self.smooth_loss * 0.999 + loss * 0.001
        for param, dparam, mem in zip(P.values(), grads, self.mems.values()):
            if self.sgd:
                param += -self.lr * dparam
            else:
                mem += dparam * dparam
                param += -self.lr * dparam / np.sqrt(mem + 1e-8)
        self.p += T
        self.n += 1
        return loss


def train(data, vocab_size, hidden_size, seq_length, learning_rate, steps, seed=0):
    """min-char-rnn's main loop (sampling left out) for `steps` iterations.
    Returns (params, smooth_loss) with params as min-char-rnn lays them out."""
    rs = np.random.RandomState(seed)
    Wxh = rs.randn(hidden_size, vocab_size) * 0.01  # input to hidden
    Whh = rs.randn(hidden_size, hidden_size) * 0.01  # hidden to hidden
    Why = rs.randn(vocab_size, hidden_size) * 0.01  # hidden to output
    bh = np.zeros((hidden_size, 1))  # hidden bias
    by = np.zeros((vocab_size, 1))  # output bias
    n, p = 0, 0
    mWxh, mWhh, mWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
    mbh, mby = np.zeros_like(bh), np.zeros_like(by)  # memory variables for Adagrad
    smooth_loss = -np.log(1.0 / vocab_size) * seq_length  # loss at iteration 0
    while n < steps:
        if p + seq_length + 1 >= len(data) or n == 0:
            hprev = np.zeros((hidden_size, 1))  # reset RNN memory
            p = 0  # go from start of data
        inputs = [int(i) for i in data[p : p + seq_length]]
        targets = [int(i) for i in data[p + 1 : p + seq_length + 1]]
        loss, dWxh, dWhh, dWhy, dbh, dby, hprev = lossFun(
            inputs, targets, hprev, Wxh, Whh, Why, bh, by
        )
        smooth_loss = smooth_loss * 0.999 + loss * 0.001
        for param, dparam, mem in zip(
            [Wxh, Whh, Why, bh, by], [dWxh, dWhh, dWhy, dbh, dby], [mWxh, mWhh, mWhy, mbh, mby]
        ):
            mem += dparam * dparam
            param += -learning_rate * dparam / np.sqrt(mem + 1e-8)  # adagrad update
        p += seq_length  # move data pointer
        n += 1  # iteration counter
    return dict(Wxh=Wxh, Whh=Whh, Why=Why, bh=bh, by=by), smooth_loss
