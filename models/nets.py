"""Torch networks of the deep model and their seeded training loops.

Both networks take *raw* features: the training mean and standard deviation are
buffers of the module, so the exported ONNX graph standardizes by itself and the
serving path never needs a separate scaler. Both return the probability of the
positive class with shape ``[batch, 1]``.

torch is for training and export only; the serving path (``models.serving``) never
imports this module.
"""

from __future__ import annotations

import copy
import io
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

logger = logging.getLogger(__name__)

__all__ = [
    "FraudNet",
    "RawFeatureNet",
    "SequenceNet",
    "TrainResult",
    "ffnn_weights",
    "finetune_ffnn",
    "heavy_tailed",
    "load_ffnn",
    "train_ffnn",
    "train_sequence",
    "torch_threads",
]


def _standardization(X: npt.NDArray[np.floating]) -> tuple[torch.Tensor, torch.Tensor]:
    """Column mean and std of ``X`` (NaN ignored); zero or missing std becomes 1."""
    flat = np.asarray(X, dtype=np.float64).reshape(-1, X.shape[-1])
    mean = np.nanmean(flat, axis=0) if flat.size else np.zeros(flat.shape[1])
    std = np.nanstd(flat, axis=0) if flat.size else np.ones(flat.shape[1])
    mean = np.nan_to_num(mean, nan=0.0)
    std = np.where(np.isfinite(std) & (std > 1e-12), std, 1.0)
    return torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)


def heavy_tailed(feature_names: Sequence[str]) -> tuple[int, ...]:
    """Indices of the amount and count features (long right tails): log inputs.

    >>> heavy_tailed(["TX_AMOUNT", "TX_DURING_NIGHT", "CUSTOMER_ID_NB_TX_1DAY_WINDOW"])
    (0, 2)
    """
    return tuple(i for i, name in enumerate(feature_names) if "AMOUNT" in name or "NB_TX" in name)


class RawFeatureNet(nn.Module):
    """Base of the networks: input transform, stored standardization, sigmoid output.

    Columns in ``log_columns`` enter as ``log1p(max(x, 0))`` (amounts and counts:
    the model study found this lifts AUC and AP); the transform is part of the graph,
    so the exported ONNX model takes raw features like the torch one.
    """

    mean: torch.Tensor
    std: torch.Tensor
    log_mask: torch.Tensor

    def __init__(self, n_features: int, log_columns: Sequence[int] = ()) -> None:
        super().__init__()
        self.n_features = n_features
        mask = torch.zeros(n_features, dtype=torch.bool)
        mask[list(log_columns)] = True
        self.has_log_columns = bool(log_columns)
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.register_buffer("log_mask", mask)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """Raw features to model inputs (before standardization)."""
        if not self.has_log_columns:
            return x
        return torch.where(self.log_mask, torch.log1p(torch.clamp(x, min=0.0)), x)

    def standardized(self, x: torch.Tensor) -> torch.Tensor:
        """Transformed and standardized inputs."""
        return (self.transform(x) - self.mean) / self.std

    def set_standardization(self, X: npt.NDArray[np.floating]) -> None:
        """Store the per-feature mean and standard deviation of the transformed ``X``.

        ``X`` is ``[n, n_features]`` or ``[n, seq_len, n_features]`` of raw features
        (NaN ignored); a constant feature gets a standard deviation of 1.
        """
        with torch.no_grad():
            transformed = self.transform(torch.as_tensor(np.asarray(X, dtype=np.float32)))
        mean, std = _standardization(transformed.numpy())
        self.mean.copy_(mean)
        self.std.copy_(std)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Return the pre-sigmoid output, shape ``[batch, 1]``."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the positive-class probability of raw inputs, shape ``[batch, 1]``."""
        return torch.sigmoid(self.logits(x))


class FraudNet(RawFeatureNet):
    """Feed-forward network over one transaction's feature vector.

    Raw features are standardized with stored training statistics, pass through
    ``len(hidden)`` ReLU layers with dropout, and end in a sigmoid.

    Parameters
    ----------
    n_features
        Width of the feature vector.
    hidden
        Sizes of the hidden layers.
    dropout
        Dropout after each hidden layer (active in training mode only).

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> net = FraudNet(3, hidden=(8, 4)).eval()
    >>> net.set_standardization(np.array([[0.0, 1.0, 2.0], [2.0, 3.0, 4.0]]))
    >>> net.mean.tolist(), net.std.tolist()
    ([1.0, 2.0, 3.0], [1.0, 1.0, 1.0])
    >>> tuple(net(torch.zeros(5, 3)).shape)
    (5, 1)
    """

    def __init__(
        self,
        n_features: int,
        hidden: Sequence[int] = (64, 32),
        dropout: float = 0.1,
        log_columns: Sequence[int] = (),
    ) -> None:
        super().__init__(n_features, log_columns)
        self.dropout = dropout
        layers: list[nn.Module] = []
        width = n_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, 1))
        self.body = nn.Sequential(*layers)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Return the pre-sigmoid output, shape ``[batch, 1]``."""
        out: torch.Tensor = self.body(self.standardized(x))
        return out


class SequenceNet(RawFeatureNet):
    """GRU over a customer's last ``seq_len`` feature vectors, oldest first.

    Input ``[batch, seq_len, n_features]`` of raw features; rows of a short history
    are left-padded with NaN, which becomes zero after standardization (the
    training mean). The last hidden state feeds a linear head and a sigmoid.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> net = SequenceNet(3, hidden=8).eval()
    >>> x = torch.zeros(2, 4, 3)
    >>> x[0, :2] = float("nan")  # a customer with two transactions of history
    >>> p = net(x)
    >>> tuple(p.shape), bool(torch.isfinite(p).all())
    ((2, 1), True)
    """

    def __init__(self, n_features: int, hidden: int = 64, layers: int = 1) -> None:
        super().__init__(n_features)
        self.gru = nn.GRU(n_features, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Return the pre-sigmoid output, shape ``[batch, 1]``."""
        z = self.standardized(x)
        z = torch.where(torch.isnan(z), torch.zeros_like(z), z)
        _, h = self.gru(z)
        out: torch.Tensor = self.head(h[-1])
        return out


EpochCallback = Callable[[int, float, float], None]
"""Receives (epoch from 0, mean training loss, validation loss) after each epoch."""


@dataclass
class TrainResult:
    """What a training run produced: the best model and its learning curve."""

    model: RawFeatureNet
    """The model at the epoch with the lowest validation loss, in eval mode."""
    best_epoch: int
    """Index (from 0) of that epoch."""
    best_val_loss: float
    """Its weighted validation log loss."""
    history: list[tuple[float, float]] = field(default_factory=list)
    """Per epoch: (training loss, validation loss)."""


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)``, restoring the old value after."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _pos_weight(
    y: npt.NDArray[np.bool_], class_weight: Literal["balanced"] | float | None
) -> float:
    if class_weight is None:
        return 1.0
    if class_weight == "balanced":
        n_pos = int(y.sum())
        return (len(y) - n_pos) / n_pos if n_pos else 1.0
    return float(class_weight)


def _fit(
    model: RawFeatureNet,
    X: npt.NDArray[np.floating],
    y: npt.ArrayLike,
    *,
    X_val: npt.NDArray[np.floating] | None,
    y_val: npt.ArrayLike | None,
    val_fraction: float,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    patience: int,
    class_weight: Literal["balanced"] | float | None,
    seed: int,
    on_epoch: EpochCallback | None = None,
    standardize: bool = True,
    select_best: bool = True,
) -> TrainResult:
    """Train ``model`` (which has ``logits``) with Adam and early stopping on val loss.

    ``standardize=False`` keeps the model's stored standardization (fine-tuning: the
    weights were learned on that scale). ``select_best=False`` runs every epoch and
    keeps the last weights (the validation loss is then only reported).
    """
    X = np.asarray(X, dtype=np.float32)
    yb = np.asarray(y).astype(bool)
    if X_val is None:
        # The tail, not a random subset: training data is in event time, and a random
        # split would leak the future into training.
        n_val = max(1, int(math.ceil(len(X) * val_fraction)))
        X, X_val, yb, yv = X[:-n_val], X[-n_val:], yb[:-n_val], yb[-n_val:]
    else:
        X_val = np.asarray(X_val, dtype=np.float32)
        yv = np.asarray(y_val).astype(bool)
    if len(X) == 0:
        raise ValueError("no training rows left after the validation split")
    pos_weight = torch.tensor(_pos_weight(yb, class_weight))
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    generator = torch.Generator().manual_seed(seed)
    if standardize:
        model.set_standardization(X)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    xt, yt = torch.from_numpy(X), torch.from_numpy(yb.astype(np.float32)).reshape(-1, 1)
    xv, yvt = torch.from_numpy(X_val), torch.from_numpy(yv.astype(np.float32)).reshape(-1, 1)
    best_state, best_loss, best_epoch, since_best = None, math.inf, -1, 0
    history: list[tuple[float, float]] = []
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(xt), generator=generator)
        total = 0.0
        for start in range(0, len(xt), batch_size):
            idx = order[start : start + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model.logits(xt[idx]), yt[idx])
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        model.eval()
        with torch.no_grad():
            val_loss = float(loss_fn(model.logits(xv), yvt))
        history.append((total / len(xt), val_loss))
        logger.debug("epoch %d train %.5f val %.5f", epoch, history[-1][0], val_loss)
        if on_epoch is not None:
            on_epoch(epoch, history[-1][0], val_loss)
        if not select_best:
            best_loss, best_epoch = val_loss, epoch
        elif val_loss < best_loss - 1e-6:
            best_state, best_loss, best_epoch, since_best = (
                copy.deepcopy(model.state_dict()),
                val_loss,
                epoch,
                0,
            )
        else:
            since_best += 1
            if since_best >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return TrainResult(model, best_epoch, best_loss, history)


def train_ffnn(
    X: npt.NDArray[np.floating],
    y: npt.ArrayLike,
    *,
    X_val: npt.NDArray[np.floating] | None = None,
    y_val: npt.ArrayLike | None = None,
    hidden: Sequence[int] = (64, 32),
    dropout: float = 0.1,
    epochs: int = 30,
    batch_size: int = 256,
    lr: float = 1e-3,
    weight_decay: float = 1e-5,
    val_fraction: float = 0.2,
    patience: int = 3,
    class_weight: Literal["balanced"] | float | None = "balanced",
    seed: int = 0,
    num_threads: int | None = 1,
    on_epoch: EpochCallback | None = None,
    log_columns: Sequence[int] = (),
) -> TrainResult:
    """Train a :class:`FraudNet` on raw features with early stopping.

    Parameters
    ----------
    X, y
        Training rows ``[n, n_features]`` in event-time order, and their labels.
    X_val, y_val
        Validation set; when absent the last ``val_fraction`` of ``X`` is held out.
    class_weight
        Weight of positive examples in the loss: ``"balanced"`` (negatives/positives),
        a number, or ``None`` for 1.
    patience
        Epochs without a validation improvement before training stops; the model of
        the best epoch is returned.
    seed
        Seeds initialization and shuffling: same data, seed and ``num_threads`` give
        the same weights.
    num_threads
        ``torch.set_num_threads`` during training (restored after); ``None`` keeps it.
    on_epoch
        Called after each epoch with (epoch, training loss, validation loss), e.g. to
        show progress.
    log_columns
        Columns that enter the network as ``log1p`` (see :func:`heavy_tailed`).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(600, 4)).astype(np.float32)
    >>> y = X[:, 0] + 0.3 * rng.normal(size=600) > 1.0
    >>> result = train_ffnn(X, y, hidden=(8,), epochs=20, lr=1e-2, seed=1)
    >>> len(result.history), result.best_epoch
    (20, 19)
    >>> p = result.model(torch.from_numpy(X)).detach().numpy().ravel()
    >>> bool(p[y].mean() > p[~y].mean() + 0.3)
    True
    """
    with torch_threads(num_threads):
        torch.manual_seed(seed)  # initialization and dropout draw from the global generator
        model = FraudNet(np.shape(X)[1], hidden=hidden, dropout=dropout, log_columns=log_columns)
        return _fit(
            model,
            X,
            y,
            X_val=X_val,
            y_val=y_val,
            val_fraction=val_fraction,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            patience=patience,
            class_weight=class_weight,
            seed=seed,
            on_epoch=on_epoch,
        )


def finetune_ffnn(
    model: FraudNet,
    X: npt.NDArray[np.floating],
    y: npt.ArrayLike,
    *,
    epochs: int = 1,
    batch_size: int = 256,
    lr: float = 1e-3,
    weight_decay: float = 1e-5,
    class_weight: Literal["balanced"] | float | None = None,
    seed: int = 0,
    num_threads: int | None = 1,
    on_epoch: EpochCallback | None = None,
    report_fraction: float = 0.2,
) -> TrainResult:
    """Continue training a copy of ``model`` for ``epochs`` on every row of ``X``.

    The warm start of the daily retrain: the weights and the stored standardization
    of ``model`` are kept (the weights were learned on that scale), a fresh Adam runs
    ``epochs`` passes over all rows, newest included, and the last weights are
    returned. Nothing is held out: the loss on the newest ``report_fraction`` of the
    rows is reported per epoch (in-sample) for progress only. ``model`` is unchanged.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(600, 4)).astype(np.float32)
    >>> y = X[:, 0] > 1.0
    >>> base = train_ffnn(X, y, hidden=(8,), epochs=3, seed=1).model
    >>> tuned = finetune_ffnn(base, X, y, epochs=2, seed=1)
    >>> len(tuned.history), tuned.best_epoch, bool(torch.equal(tuned.model.mean, base.mean))
    (2, 1, True)
    """
    X = np.asarray(X, dtype=np.float32)
    yb = np.asarray(y).astype(bool)
    n_report = max(1, int(math.ceil(len(X) * report_fraction)))
    with torch_threads(num_threads):
        torch.manual_seed(seed)
        return _fit(
            copy.deepcopy(model),
            X,
            yb,
            X_val=X[-n_report:],
            y_val=yb[-n_report:],
            val_fraction=report_fraction,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            patience=epochs + 1,
            class_weight=class_weight,
            seed=seed,
            on_epoch=on_epoch,
            standardize=False,
            select_best=False,
        )


_DROPOUT_KEY = "__dropout__"


def ffnn_weights(model: FraudNet) -> bytes:
    """The parameters and buffers of ``model`` as an ``.npz`` archive (plain arrays).

    Stored beside the ONNX file so the trainer can warm-start from a published model;
    :func:`load_ffnn` reads it back without unpickling anything.
    """
    arrays = {name: t.detach().cpu().numpy() for name, t in model.state_dict().items()}
    arrays[_DROPOUT_KEY] = np.asarray(model.dropout, dtype=np.float64)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def load_ffnn(data: bytes) -> FraudNet:
    """Rebuild the :class:`FraudNet` whose :func:`ffnn_weights` are ``data`` (eval mode).

    Raises
    ------
    ValueError
        Not such an archive, or its arrays do not make a feed-forward network.

    Examples
    --------
    >>> net = FraudNet(3, hidden=(4,), log_columns=(0,)).eval()
    >>> again = load_ffnn(ffnn_weights(net))
    >>> x = torch.rand(2, 3)
    >>> bool(torch.equal(net(x), again(x))), again.dropout
    (True, 0.1)
    """
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        dropout = float(arrays.pop(_DROPOUT_KEY))
        linear = sorted(
            (k for k in arrays if k.startswith("body.") and k.endswith(".weight")),
            key=lambda k: int(k.split(".")[1]),
        )
        shapes = [arrays[k].shape for k in linear]
        log_columns = tuple(int(i) for i in np.flatnonzero(arrays["log_mask"]))
        net = FraudNet(
            int(shapes[0][1]),
            hidden=tuple(int(s[0]) for s in shapes[:-1]),
            dropout=dropout,
            log_columns=log_columns,
        )
        net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()})
    except (OSError, KeyError, IndexError, RuntimeError, ValueError, TypeError) as exc:
        raise ValueError(f"not the weights of a feed-forward network: {exc}") from None
    return net.eval()


def train_sequence(
    X: npt.NDArray[np.floating],
    y: npt.ArrayLike,
    *,
    hidden: int = 64,
    layers: int = 1,
    epochs: int = 10,
    batch_size: int = 256,
    lr: float = 1e-3,
    val_fraction: float = 0.2,
    patience: int = 2,
    class_weight: Literal["balanced"] | float | None = "balanced",
    seed: int = 0,
    num_threads: int | None = 1,
) -> TrainResult:
    """Train a :class:`SequenceNet` on ``[n, seq_len, n_features]`` histories.

    The same loop as :func:`train_ffnn` (Adam, weighted log loss, early stopping on
    the held-out tail); the label is the one of each sequence's last transaction.
    """
    with torch_threads(num_threads):
        torch.manual_seed(seed)
        model = SequenceNet(np.shape(X)[2], hidden=hidden, layers=layers)
        return _fit(
            model,
            X,
            y,
            X_val=None,
            y_val=None,
            val_fraction=val_fraction,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            weight_decay=0.0,
            patience=patience,
            class_weight=class_weight,
            seed=seed,
        )
