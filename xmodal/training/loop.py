"""White-box training: backpropagation through the frozen source model.

Adam on theta and omega only, mini-batches, cross-entropy on the mapped
scores. Model selection and early stopping use a stratified validation split
carved from the training data; test data never enters `fit_reprogrammer`.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split
from tqdm.auto import tqdm

from xmodal.errors import DataError
from xmodal.reprogrammer import Reprogrammer

SELECTION_CRITERIA = ("accuracy", "loss")


@dataclass
class TrainConfig:
    """epochs: upper bound; patience: epochs without a better validation score
    before stopping; val_fraction: share of the training data held out for
    model selection (0 = select on the training loss); select_start: the untrained
    starting state competes as epoch 0 in validation selection (for starts that are a
    fitted model already, such as a probe head: training must beat it to be kept);
    select_on: what "best" means on validation, "accuracy" (ties go to the lower
    loss) or "loss" (the log-loss alone: smoother on small or imbalanced validation
    sets, where accuracy barely moves, and the criterion a probe start's C is chosen by)."""

    epochs: int = 100
    lr: float = 0.05
    batch_size: int = 32
    val_fraction: float = 0.2
    patience: int = 25
    seed: int = 0
    progress: bool = True
    select_start: bool = False
    select_on: str = "accuracy"

    def __post_init__(self):
        if self.select_on not in SELECTION_CRITERIA:
            raise DataError(f"select_on must be one of {', '.join(SELECTION_CRITERIA)}, got {self.select_on!r}")
        for name in ("epochs", "batch_size", "patience"):
            if int(getattr(self, name)) < 1:
                raise DataError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise DataError(f"lr must be positive, got {self.lr}")
        if not 0 <= self.val_fraction < 1:
            raise DataError(f"val_fraction must be in [0, 1), got {self.val_fraction}")


@dataclass
class FitResult:
    best_epoch: int
    epochs_run: int
    val_accuracy: float | None
    val_loss: float | None
    selection: str  # "validation" or "training loss"
    n_fit: int
    n_val: int
    seconds: float
    history: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def validation_split(targets: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (fit, val) indices. At least one validation sample per class;
    if a class has fewer than 2 samples no stratified split exists and every
    sample is used for fitting (val empty)."""
    indices = np.arange(len(targets))
    counts = np.bincount(targets)
    counts = counts[counts > 0]
    if fraction <= 0 or counts.min() < 2:
        return indices, indices[:0]
    n_val = max(int(round(fraction * len(targets))), len(counts))
    if len(targets) - n_val < len(counts):
        return indices, indices[:0]
    fit_idx, val_idx = train_test_split(indices, test_size=n_val, stratify=targets, random_state=seed)
    return np.sort(fit_idx), np.sort(val_idx)


@torch.no_grad()
def _evaluate(model: Reprogrammer, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> tuple[float, float]:
    model.eval()
    scores = torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    return F.cross_entropy(scores, y).item(), (scores.argmax(dim=1) == y).float().mean().item()


@torch.no_grad()
def source_outputs(model: Reprogrammer, x: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """What the output map reads (Reprogrammer.source_logits), for a whole set, in batches."""
    model.eval()
    return torch.cat([model.source_logits(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


def _batches(order: torch.Tensor, batch_size: int, lengths: torch.Tensor | None,
             generator: torch.Generator) -> list[torch.Tensor]:
    """Mini-batches of a shuffled order. With `lengths` (variable-length samples, whose
    cost is set by the longest in a batch) each window of 50 batches is sorted by
    length before cutting, and the batches are shuffled again: similar lengths
    share a batch, the batch order stays random."""
    if lengths is None:
        return list(order.split(batch_size))
    window = batch_size * 50
    parts = [chunk[torch.argsort(lengths[chunk], stable=True)] for chunk in order.split(window)]
    batches = list(torch.cat(parts).split(batch_size))
    return [batches[i] for i in torch.randperm(len(batches), generator=generator)]


def fit_reprogrammer(model: Reprogrammer, x: torch.Tensor, y: torch.Tensor, config: TrainConfig,
                     validation: tuple[torch.Tensor, torch.Tensor] | None = None,
                     lengths: torch.Tensor | None = None) -> FitResult:
    """Train theta and omega in place; on return the model holds the selected epoch's state.
    `validation`: a given (x, y) selection set (e.g. a dataset's own eval split) used
    instead of carving `val_fraction` out of the training data. `lengths`: per-sample
    lengths of variable-length inputs (token sequences), to batch similar lengths."""
    if len(x) != len(y):
        raise DataError(f"{len(x)} series but {len(y)} labels; give one label per series")
    start = time.perf_counter()
    torch.manual_seed(config.seed)  # dropout on delta
    if validation is None:
        fit_idx, val_idx = validation_split(y.numpy(), config.val_fraction, config.seed)
        if lengths is not None:  # evaluated in length order: less padding per batch, same scores
            val_idx = val_idx[np.argsort(np.asarray(lengths)[val_idx], kind="stable")]
        x_fit, y_fit, x_val, y_val = x[fit_idx], y[fit_idx], x[val_idx], y[val_idx]
    else:
        x_fit, y_fit, (x_val, y_val) = x, y, validation
        fit_idx, val_idx = np.arange(len(x)), np.arange(len(x_val))
    fit_lengths = None if lengths is None else torch.as_tensor(lengths)[fit_idx]
    if model.output_map.needs_source_outputs:
        model.output_map.prepare(source_outputs(model, x_fit, config.batch_size), y_fit)

    parameters = model.trainable_parameters()
    optimizer = torch.optim.Adam(parameters, lr=config.lr)
    shuffle = torch.Generator().manual_seed(config.seed)
    use_val = len(val_idx) > 0
    best_key, best_state, best_epoch, best = None, None, 0, (None, None)
    history = []

    def record_epoch(record: dict) -> None:
        """Log the epoch; keep its state when it is the best so far (validation, else training loss)."""
        nonlocal best_key, best_state, best_epoch, best
        if use_val:
            record["val_loss"], record["val_accuracy"] = _evaluate(model, x_val, y_val, config.batch_size)
            key = ((-record["val_loss"],) if config.select_on == "loss"
                   else (record["val_accuracy"], -record["val_loss"]))
        else:
            key = (-record["train_loss"],)
        history.append(record)
        if best_key is None or key > best_key:
            best_key, best_epoch = key, record["epoch"]
            best_state = copy.deepcopy(model.trainable_state())
            best = (record.get("val_accuracy"), record.get("val_loss"))

    if config.select_start and use_val:
        record_epoch({"epoch": 0})
    bar = tqdm(range(1, config.epochs + 1), desc="fit", unit="epoch", disable=not config.progress, leave=False)
    for epoch in bar:
        # Iterative maps (ILM-VP, BLM) are re-estimated through the current theta.
        remap = {}
        if model.output_map.remap_due(epoch):
            changed = model.output_map.prepare(source_outputs(model, x_fit, config.batch_size), y_fit)
            remap = {"remapped": True, "map_changed": changed}
        model.train()
        order = torch.randperm(len(x_fit), generator=shuffle)
        total = 0.0
        for batch in _batches(order, config.batch_size, fit_lengths, shuffle):
            loss = F.cross_entropy(model(x_fit[batch]), y_fit[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            model.constrain()
            total += loss.item() * len(batch)
        record = {"epoch": epoch, "train_loss": total / len(x_fit), **remap}
        record_epoch(record)
        bar.set_postfix({k: round(v, 4) for k, v in record.items() if k not in ("epoch", *remap)})
        if epoch - best_epoch >= config.patience:
            break
    model.load_state_dict(best_state, strict=False)
    model.eval()
    return FitResult(
        best_epoch=best_epoch,
        epochs_run=sum(record["epoch"] > 0 for record in history),
        val_accuracy=best[0],
        val_loss=best[1],
        selection="validation" if use_val else "training loss",
        n_fit=len(fit_idx),
        n_val=len(val_idx),
        seconds=time.perf_counter() - start,
        history=history,
    )
