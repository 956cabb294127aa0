"""Parameter-server update rules: what the server does with a gradient a worker pushes.

Notation (the notes' and Zheng et al.'s): w is the server's weight vector, version t the
number of updates applied so far, η the learning rate, M the number of workers. A worker m
pulls w at version t − τ, computes a mini-batch gradient g = ∇L(w_{t−τ}) on it and pushes g;
by the time the server applies it, τ other updates have happened: τ is the gradient's
staleness ("delay").

    SyncSGD    w ← w − η · (1/|S|) Σ_{m∈S} g_m(w)        all workers on the same w, τ = 0
    ASGD       w ← w − η · g(w_{t−τ})                     applied at once, whatever τ
    DCASGD     w ← w − η · (g + λ · g ⊙ g ⊙ (w − w_bak(m)))     first-order delay compensation
    Downpour   w ← w − η · g / (ε + √(Σ g²))  per shard       AdaGrad server, local worker steps

A rule holds only the math, on flat float32 slices of the weight vector (one slice per server
shard, all rules here are element-wise, so a shard updates its slice on its own). The backends
(simulated, ray) own the workers, the schedule, staleness bookkeeping and checkpoints:

    state = rule.init_state(w, num_workers)   arrays the server keeps (saved in checkpoints)
    rule.pulled(state, m, w)                  worker m just copied w (DC-ASGD keeps a backup)
    d = rule.delta(state, w, g, m, tmp)       the update Δ of worker m's push g: w ← w − Δ
    rule.apply(state, w, g, m, tmp)           the same, applied: w updated in place

`tmp` is scratch space of shape (2, len(w)), so an update allocates nothing; Δ is a view into
it. The backends compute Δ, check that it is finite (a NaN or an overflow in the pushed gradient
or in the rule's arithmetic shows in Δ) and only then subtract it, so a diverging run stops with
the last finite weights. `delta` may already have advanced the rule's own state (DC-ASGD's
MeanSquare, Downpour's accumulator); a server that refuses a Δ is closed, never used again.
Overflow inside `delta` is silent (np.errstate): the check reports it.
"""
import numpy as np

from tidu._checks import check_int, check_positive

__all__ = ["Rule", "SyncSGD", "ASGD", "DCASGD", "Downpour", "diverged", "get"]


class Rule:
    """Base class: validates the learning rate; subclasses define the update.

    `synchronous` rules are applied once per round to the mean of the workers' gradients;
    the others once per push. `n_fetch`/`n_push` say how often a worker pulls and pushes
    (every step for all rules but Downpour); `local_steps` whether a worker updates its own
    copy between pulls.
    """

    name = None
    synchronous = False
    n_fetch = 1
    n_push = 1
    local_steps = False

    def __init__(self, learning_rate=0.01):
        self.learning_rate = check_positive(type(self).__name__, "learning_rate", learning_rate)

    def init_state(self, w, num_workers):
        return {}

    def pulled(self, state, m, w):
        """Worker m has just copied the server's w (its next gradient is computed on it)."""

    def delta(self, state, w, g, m, tmp):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must define delta (abstract)")

    def apply(self, state, w, g, m, tmp):
        """w ← w − Δ, without the finiteness check the backends make."""
        with np.errstate(over="ignore", invalid="ignore"):
            w -= self.delta(state, w, g, m, tmp)

    def get_config(self):
        return {"learning_rate": self.learning_rate}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class ASGD(Rule):
    """Asynchronous SGD: the server applies each pushed gradient at once.

        w_{t+1} = w_t − η · g(w_{t−τ})

    where g(w_{t−τ}) was computed on the weights the worker pulled τ updates ago (Dean et
    al. 2012's Downpour without AdaGrad; Recht et al.'s Hogwild! on a server). The delay τ
    grows with the number of workers, and with it the error of using a stale gradient.
    """

    name = "asgd"

    def delta(self, state, w, g, m, tmp):
        return np.multiply(g, self.learning_rate, out=tmp[0])   # Δ = η g


class SyncSGD(Rule):
    """Synchronous SGD: wait for the workers, average their gradients, update, broadcast.

        w_{t+1} = w_t − η · (1/|S_t|) Σ_{m∈S_t} g_m(w_t)

    Every worker computes its gradient on the same w_t, so there is no staleness; a round
    takes as long as the slowest worker in S_t. With `backup_workers=b` (Chen et al. 2016,
    "Revisiting Distributed Synchronous SGD") S_t is the first M − b workers to finish and
    the stragglers' gradients are dropped. The backend averages; `apply` gets the mean.
    """

    name = "sync"
    synchronous = True

    def __init__(self, learning_rate=0.01, backup_workers=0):
        super().__init__(learning_rate)
        self.backup_workers = check_int("SyncSGD", "backup_workers", backup_workers, 0)

    def delta(self, state, w, g, m, tmp):
        return np.multiply(g, self.learning_rate, out=tmp[0])   # Δ = η g

    def get_config(self):
        return {"learning_rate": self.learning_rate, "backup_workers": self.backup_workers}


class DCASGD(Rule):
    """ASGD with delay compensation (Zheng et al., "Asynchronous Stochastic Gradient Descent
    with Delay Compensation", ICML 2017).

    The gradient the server should use is g(w_t), the one it gets is g(w_bak), computed on
    the copy w_bak(m) that worker m pulled. A first-order Taylor expansion,

        g(w_t) ≈ g(w_bak) + H(w_bak) · (w_t − w_bak),

    with the Hessian approximated by the outer product of gradients (an unbiased estimate of
    it for the log-likelihood loss, via the Fisher information) kept to its diagonal and
    scaled by λ, H ≈ λ · diag(g ⊙ g), gives the update

        w_{t+1} = w_t − η · (g + λ · g ⊙ g ⊙ (w_t − w_bak(m))).

    The server keeps one backup per worker: on every pull of worker m, w_bak(m) ← w_t (with
    M workers it holds M + 1 copies of the weights, as the notes say).

    variant='constant' (DC-ASGD-c): λ = lam (0.04).
    variant='adaptive' (DC-ASGD-a): λ varies per weight with the gradient's magnitude, from a
    running mean of g ⊙ g (m = ms_decay, 0.95; λ0 = lambda0, 2.0), updated with the pushed
    gradient before it is used. `form` says whose formula:

      form='authors' (default), one MeanSquare per worker, ε under the root:
        MeanSquare(m) ← m · MeanSquare(m) + (1 − m) · g ⊙ g
        λ = λ0 / √(MeanSquare(m) + ε)
      form='paper', one MeanSquare on the server, ε outside the root:
        MeanSquare ← m · MeanSquare + (1 − m) · g ⊙ g
        λ = λ0 / (√MeanSquare + ε)

    The defaults (λ = 0.04, λ0 = 2, m = 0.95) are those of the paper's experiments; ε = 1e-7
    that of the authors' code. Under the root, ε bounds λ by λ0/√ε where a weight's gradients
    have been ~0; outside it, λ can reach λ0/ε there.

    cap (None: off, as in every reference below): the most η · λ · g ⊙ g may be, per weight.
    The correction takes η · λ · g ⊙ g of the drift w_t − w_bak(m) back in one update; past 1 it
    takes back more than the drift itself, which no first-order correction means, and the
    update overshoots. With MeanSquare updated by the pushed g first, λ · g ⊙ g can reach
    λ0 · |g| / √(1 − m), about 4.5 λ0 |g|, on a gradient much larger than the weight's recent
    ones, so large λ0 and learning rates diverge early in training (measured in the setting of
    examples/dcasgd_mnist.py, lr 0.5: without the cap, λ0 = 2 diverged on two seeds of three
    and λ0 = 4 and 6 on two and three; with cap=1, λ0 = 5 trains on all three and closes more
    of ASGD's gap; docs/distributed.md has the tables).

    What each reference does, for worker m's push g (η the learning rate):

      paper (ICML 2017, Algorithm 3 and §5), w_bak(m) ← w_t on m's pull, one MeanSquare:
        w ← w − η (g + λ0/√MeanSquare · g ⊙ g ⊙ (w − w_bak(m)))            (no ε)
      authors' code (Multiverso, dcasgda_updater.h), the worker pushes η g:
        MeanSquare(m) ← m MeanSquare(m) + (1 − m) g ⊙ g   (m = the push's momentum option)
        w ← w − η (g + λ0/√(MeanSquare(m) + 1e-7) · g ⊙ g ⊙ (w − w_bak(m)));  w_bak(m) ← w
      MXNet mx.optimizer.DCASGD (constant λ = lamda, 0.04; wd = weight decay; one w_prev):
        w ← w − η (g + wd w + λ g ⊙ g ⊙ (w − w_prev));  w_prev ← w before this update
      PaddlePaddle (DistributeTranspiler, enable_dc_asgd; w_bak(m) set on m's pull):
        g' = g + g ⊙ g ⊙ (w − w_bak(m)),  then the configured optimizer on g'  (λ = 1)

    The authors' code sets w_bak(m) to the weights just after m's own push (what m gets if
    it pulls at once, as its workers do) and starts it at zeros, so a worker's first push is "compensated"
    against w − 0; here w_bak(m) is the copy m actually pulled, as in the paper, starting at w.
    MXNet's w_prev is overwritten at every update, so its w − w_prev is the change of the last
    update, not the drift since this worker pulled: it compensates a delay of one step.
    """

    name = "dcasgd"

    def __init__(self, learning_rate=0.01, variant="adaptive", lam=0.04, lambda0=2.0,
                 ms_decay=0.95, epsilon=1e-7, form="authors", cap=None):
        super().__init__(learning_rate)
        if variant not in ("adaptive", "constant"):
            raise ValueError(f"DCASGD: expected variant 'adaptive' or 'constant', got {variant!r}")
        if form not in ("authors", "paper"):
            raise ValueError(f"DCASGD: expected form 'authors' (one MeanSquare per worker, "
                             f"λ0/√(MeanSquare + ε)) or 'paper' (one MeanSquare, "
                             f"λ0/(√MeanSquare + ε)), got form={form!r}")
        for name, value in (("lam", lam), ("lambda0", lambda0)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not value >= 0:
                raise ValueError(f"DCASGD: expected {name} >= 0, got {name}={value!r}")
        if not isinstance(ms_decay, (int, float, np.floating)) or not 0.0 <= ms_decay < 1.0:
            raise ValueError(f"DCASGD: expected 0 <= ms_decay < 1, got ms_decay={ms_decay!r}")
        self.variant, self.form = variant, form
        self.lam, self.lambda0 = float(lam), float(lambda0)
        self.ms_decay = float(ms_decay)
        self.epsilon = check_positive("DCASGD", "epsilon", epsilon)
        self.cap = None if cap is None else check_positive("DCASGD", "cap", cap)

    def init_state(self, w, num_workers):
        state = {f"backup/{m}": w.copy() for m in range(num_workers)}
        if self.variant == "adaptive" and self.form == "authors":
            state.update({f"mean_square/{m}": np.zeros_like(w) for m in range(num_workers)})
        elif self.variant == "adaptive":
            state["mean_square"] = np.zeros_like(w)
        return state

    def pulled(self, state, m, w):
        np.copyto(state[f"backup/{m}"], w)                    # w_bak(m) ← w_t

    def delta(self, state, w, g, m, tmp):
        with np.errstate(over="ignore", invalid="ignore"):   # g ⊙ g may overflow: Δ shows it
            return self._delta(state, w, g, m, tmp)

    def _delta(self, state, w, g, m, tmp):
        w_bak, c, k = state[f"backup/{m}"], tmp[0], tmp[1]
        np.multiply(g, g, out=k)                              # g ⊙ g
        if self.variant == "constant":
            k *= self.lam                                     # λ g ⊙ g
        else:
            authors = self.form == "authors"
            ms = state[f"mean_square/{m}" if authors else "mean_square"]
            ms *= self.ms_decay
            np.multiply(k, 1.0 - self.ms_decay, out=c)
            ms += c                                           # MeanSquare ← m MS + (1 − m) g ⊙ g
            if authors:
                np.add(ms, self.epsilon, out=c)
                root = np.sqrt(c, out=c)                      # √(MeanSquare(m) + ε)
            else:
                root = np.sqrt(ms, out=c)
                root += self.epsilon                          # √MeanSquare + ε
            k *= self.lambda0
            k /= root                                         # λ g ⊙ g, λ = λ0 / root
        if self.cap is not None:
            np.minimum(k, self.cap / self.learning_rate, out=k)   # η λ g ⊙ g ≤ cap
        np.subtract(w, w_bak, out=c)                          # w_t − w_bak(m)
        c *= k                                                # λ g ⊙ g ⊙ (w_t − w_bak(m))
        c += g                                                # g + λ g ⊙ g ⊙ (w_t − w_bak(m))
        c *= self.learning_rate
        return c                                              # Δ, w_{t+1} = w_t − Δ

    def get_config(self):
        return {"learning_rate": self.learning_rate, "variant": self.variant, "form": self.form,
                "lam": self.lam, "lambda0": self.lambda0, "ms_decay": self.ms_decay,
                "epsilon": self.epsilon, "cap": self.cap}


class Downpour(Rule):
    """Downpour SGD (Dean et al., "Large Scale Distributed Deep Networks", NIPS 2012).

    Each worker (model replica) keeps its own copy w' of the weights and runs, step after step,

        every n_fetch steps, before the step:   w' ← w                (fetch from the server)
        g = ∇L(w'; next mini-batch);  Δ ← Δ + g;  w' ← w' − η · g    (a local SGD step)
        every n_push steps, after the step:      push Δ;  Δ ← 0

    and the server, split into `num_shards` shards that update their part independently,
    applies AdaGrad per weight (the notes' form, ε outside the root):

        G ← G + Δ ⊙ Δ,     w ← w − η · Δ / (ε + √G)          server='adagrad'
        w ← w − η · Δ                                         server='sgd'

    AdaGrad's step shrinks as G grows, which also damps the harm of stale pushes. With
    n_fetch = n_push = 1 and server='sgd' this is ASGD. Dean et al.'s pseudo-code pushes when
    step mod n_push == 0 (after the very first step too); here every push carries n_push
    gradients.
    """

    name = "downpour"
    local_steps = True

    def __init__(self, learning_rate=0.01, n_fetch=1, n_push=1, server="adagrad", epsilon=1e-7):
        super().__init__(learning_rate)
        self.n_fetch = check_int("Downpour", "n_fetch", n_fetch, 1)
        self.n_push = check_int("Downpour", "n_push", n_push, 1)
        if server not in ("adagrad", "sgd"):
            raise ValueError(f"Downpour: expected server 'adagrad' or 'sgd', got {server!r}")
        self.server = server
        self.epsilon = check_positive("Downpour", "epsilon", epsilon)
        self.local_steps = self.n_fetch > 1   # with a fetch before every step, w' is replaced anyway

    def init_state(self, w, num_workers):
        return {"accumulator": np.zeros_like(w)} if self.server == "adagrad" else {}

    def delta(self, state, w, g, m, tmp):
        with np.errstate(over="ignore", invalid="ignore"):   # Δ ⊙ Δ may overflow: Δ shows it
            return self._delta(state, g, tmp[0])

    def _delta(self, state, g, step):
        if self.server == "sgd":
            np.multiply(g, self.learning_rate, out=step)      # η Δ
        else:
            G = state["accumulator"]
            np.multiply(g, g, out=step)
            G += step                                         # G ← G + Δ ⊙ Δ
            np.sqrt(G, out=step)
            step += self.epsilon                              # ε + √G
            np.divide(g, step, out=step)
            step *= self.learning_rate                        # η Δ / (ε + √G)
        return step

    def get_config(self):
        return {"learning_rate": self.learning_rate, "n_fetch": self.n_fetch, "n_push": self.n_push,
                "server": self.server, "epsilon": self.epsilon}


def diverged(rule, update, worker, staleness, g):
    """The DivergenceError of a refused update: update number `update` (the one that was not
    applied), worker m (None: a synchronous round's mean) with staleness τ, its pushed g."""
    from tidu.errors import DivergenceError

    who = "the synchronous round's mean gradient" if worker is None else \
        f"worker {worker}'s push (staleness τ={staleness})"
    with np.errstate(over="ignore", invalid="ignore"):
        finite_g = bool(np.isfinite(g).all())
    what = ("is finite, but the rule's update Δ is not (overflow in the rule's arithmetic)"
            if finite_g else "holds NaN or inf")
    return DivergenceError(
        f"ParameterServer: training diverged at update {update} with {rule!r}: {who} {what}. "
        f"Update {update} was not applied; the weights are those after update {update - 1}, "
        f"the last finite one. Lower the learning rate or bound the staleness (max_staleness).",
        rule=type(rule).__name__, update=update, worker=worker, staleness=staleness)


_NAMES = {"sgd": SyncSGD, "sync": SyncSGD, "syncsgd": SyncSGD, "asgd": ASGD,
          "dcasgd": DCASGD, "dc-asgd": DCASGD, "downpour": Downpour}


def get(rule):
    """A Rule from a Rule instance or a name: 'sgd'/'sync', 'asgd', 'dcasgd', 'downpour'."""
    if isinstance(rule, Rule):
        return rule
    if isinstance(rule, str):
        cls = _NAMES.get(rule.lower())
        if cls is None:
            raise ValueError(f"tidu.distributed: unknown rule {rule!r}; expected one of "
                             f"'sgd', 'sync', 'asgd', 'dcasgd', 'downpour' or a Rule instance")
        return cls()
    raise TypeError(f"tidu.distributed: expected a rule name or a Rule instance, got {type(rule).__name__}")
