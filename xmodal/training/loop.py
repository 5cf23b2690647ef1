"""One training loop for every task, white-box or black-box.

    result = train(model, x, y, TrainConfig(...), gradients=Backprop())

Only theta and omega change; the source is frozen. The validation part is carved from
the training data here (or given, e.g. a dataset's own eval split); test data never
enters. The start state competes as epoch 0 and the epoch with the best validation
score is restored, so training is kept only where it beats where it started: with
head_init "probe" that start is a fitted logistic-regression probe of the frozen
features (unless start_competes is False: the trained-view fit keeps the start's reading
beside the trained one, xmodal.estimators.base). The gradient object
(xmodal.training.gradients) is the only difference between backpropagation and
zeroth-order training within a query budget.
"""

from __future__ import annotations

import copy
import math
import time
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from xmodal.blackbox import BudgetExhausted
from xmodal.devices import module_device, seeded_global_rng
from xmodal.errors import DataError, XmodalError
from xmodal.maps import KernelHead, LinearHead, OutputMap
from xmodal.reprogrammer import Reprogrammer
from xmodal.training.config import FitResult, TrainConfig
from xmodal.training.gradients import Backprop
from xmodal.training.kernel_probe import fit_kernel_probe
from xmodal.training.probe import fit_probe
from xmodal.training.split import selection_split

# How a fit ends where nothing could show that training beats the probe start (xmodal.cli.fit reads it).
NO_VALIDATION_PART = "no validation part: the probe is the model"


@torch.no_grad()
def in_batches(function: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int,
               lengths: torch.Tensor | None = None, progress: str | None = None) -> torch.Tensor:
    """function over mini-batches of x, rows in input order. With `lengths` (variable-length
    samples) batches hold similar lengths: less padding, same result. The batches stay on
    x's device; the order is kept on the CPU, which can index a tensor on any device.
    progress: a progress bar's label (None: no bar)."""
    if len(x) == 0:
        raise DataError("no samples to score")
    order = torch.arange(len(x)) if lengths is None else torch.argsort(torch.as_tensor(lengths).cpu(), stable=True)
    starts = tqdm(range(0, len(x), batch_size), desc=progress, unit="batch", disable=progress is None, leave=False)
    parts = torch.cat([function(x[order[i : i + batch_size]]) for i in starts])
    result = torch.empty_like(parts)
    result[order] = parts
    return result


def _evaluate(model: Reprogrammer, x: torch.Tensor, y: torch.Tensor, batch_size: int,
              lengths: torch.Tensor | None, features: torch.Tensor | None = None) -> tuple[float, float]:
    """Validation log-loss and accuracy; from `features` (the source's reading of x, already
    made while theta is the start's) without reading the source again."""
    model.eval()
    with torch.no_grad():
        scores = model.output_map(features) if features is not None else in_batches(model, x, batch_size, lengths)
    return loss_and_accuracy(scores, y)


def loss_and_accuracy(scores: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """The log-loss and accuracy of class scores (N, K) against labels: what selection compares."""
    return F.cross_entropy(scores, y).item(), (scores.argmax(dim=1) == y).float().mean().item()


def _batches(order: torch.Tensor, batch_size: int, lengths: torch.Tensor | None,
             generator: torch.Generator) -> list[torch.Tensor]:
    """Mini-batches of a shuffled order. With `lengths` each window of 50 batches is sorted
    by length before cutting and the batches are shuffled again: similar lengths share a
    batch (variable-length cost is set by the longest), the batch order stays random."""
    if lengths is None:
        return list(order.split(batch_size))
    parts = [chunk[torch.argsort(lengths[chunk], stable=True)] for chunk in order.split(batch_size * 50)]
    batches = list(torch.cat(parts).split(batch_size))
    return [batches[i] for i in torch.randperm(len(batches), generator=generator)]


def _check_finite(loss: float, epoch: int, lr: float) -> None:
    if not math.isfinite(loss):
        raise DataError(f"the training loss became {loss} in epoch {epoch}: the learning rate {lr:g} is too large "
                        f"for this data (or the data holds extreme values); lower it, e.g. lr={lr / 10:g}")


def _fit_start(head: OutputMap, features: torch.Tensor, targets: torch.Tensor, config: TrainConfig, views: int,
               c: float | None = None):
    """The start's read-out of the frozen features: a kernel probe for a kernel head, else the linear probe
    (C chosen on these rows, or on config.probe_c_rows of them, unless given)."""
    if isinstance(head, KernelHead):
        return fit_kernel_probe(features, targets, config.seed, c)
    return fit_probe(features, targets, config.seed, c, cs=config.probe_cs, views=views, blocks=config.probe_blocks,
                     c_rows=config.probe_c_rows)


def _load_start(head: OutputMap, probe, penalty: float = 0.0) -> None:
    """Set the head to a probe `_fit_start` fitted (a linear head also takes its penalty and bounds)."""
    if isinstance(head, KernelHead):
        head.load_probe(probe)
    else:
        head.load_probe(probe.coef, probe.intercept, probe.mean, probe.scale, penalty=penalty, bounds=probe.bounds)


def train(model: Reprogrammer, x: torch.Tensor, y: torch.Tensor, config: TrainConfig,
          validation: tuple[torch.Tensor, torch.Tensor] | None = None, lengths: torch.Tensor | None = None,
          gradients=None, start_features: torch.Tensor | None = None,
          start_val_features: torch.Tensor | None = None) -> FitResult:
    """Train theta and omega of `model` in place; on return it holds the selected state.

    validation: a given (x, y) selection set instead of carving `val_fraction` from x.
    lengths: per-sample lengths of variable-length inputs (token sequences).
    gradients: Backprop() (default) or a ZerothOrder estimator holding a query budget.
    start_features: `model.source_logits(x)` at the start, when the caller has read it already
    (choosing a fused source's parts did): the probe reads the source no second time; start_val_features,
    likewise, the given validation records' reading."""
    if len(x) != len(y):
        raise DataError(f"{len(x)} samples but {len(y)} labels; give one label per sample")
    if start_features is not None and len(start_features) != len(x):
        raise DataError(f"start_features holds {len(start_features)} rows for {len(x)} samples; give the source's "
                        "reading of exactly these samples")
    if start_val_features is not None and (validation is None or len(start_val_features) != len(validation[1])):
        raise DataError(f"start_val_features holds {len(start_val_features)} rows for "
                        f"{0 if validation is None else len(validation[1])} given validation records; give the "
                        "source's reading of exactly these records, with them")
    start = time.perf_counter()
    gradients = gradients or Backprop()
    # The data goes where the model is (these inputs are small next to the activations);
    # lengths and every index stay on the CPU, so shuffling is the same on any device.
    device = module_device(model)
    lengths = None if lengths is None else torch.as_tensor(lengths).cpu()
    targets = y.cpu().numpy()
    x, y = x.to(device), y.to(device)
    if validation is not None:
        validation = tuple(part.to(device) for part in validation)
    if validation is None:
        fit_idx, val_idx = selection_split(targets, config.val_fraction, config.epochs, config.seed)
        x_fit, y_fit, x_val, y_val = x[fit_idx], y[fit_idx], x[val_idx], y[val_idx]
        fit_lengths, val_lengths = (None, None) if lengths is None else (lengths[fit_idx], lengths[val_idx])
    else:
        (x_val, y_val), x_fit, y_fit, fit_idx = validation, x, y, np.arange(len(x))
        fit_lengths, val_lengths = lengths, None
    use_val = len(y_val) > 0
    head = model.output_map
    probe_start, probe = config.head_init == "probe" and isinstance(head, (LinearHead, KernelHead)), None
    if isinstance(head, KernelHead) and (config.epochs or config.head_init != "probe"):
        raise XmodalError(f"a kernel head is fitted, not trained: it needs epochs 0 and head_init 'probe' (got "
                          f"{config.epochs} and {config.head_init!r}); read out with a linear head to train theta")
    model.eval()  # the probe's features and the label map's preparation: no dropout on delta

    val_features = None  # the validation rows' reading at the start, when the probe has it
    history: list[dict] = []
    best_key, best_state, best_epoch, stopped_by = None, None, 0, "epochs" if config.epochs else "no training"

    # One trained epoch that the start does not compete with is kept whatever it scores: it is not scored,
    # so its validation rows are not read (a trained view reads them through the trained theta itself).
    lone_epoch = config.epochs == 1 and not config.start_competes

    def select(record: dict, reading: torch.Tensor | None = None) -> None:
        """Log the epoch; keep its state when it is the best so far. reading: the source's reading of
        the validation rows, when it is at hand (the start's)."""
        nonlocal best_key, best_state, best_epoch
        if use_val and not (lone_epoch and record["epoch"] > 0):
            record["val_loss"], record["val_accuracy"] = _evaluate(model, x_val, y_val, config.batch_size, val_lengths,
                                                                   reading)
            loss = -record["val_loss"]
            key = (loss,) if config.select_on == "loss" else (record["val_accuracy"], loss)
        else:
            key = (-record["train_loss"],)
        if gradients.queries is not None:  # black-box: what the model so far has cost
            record["queries"] = gradients.queries
        history.append(record)
        competes = record["epoch"] > 0 or config.start_competes
        if competes and (best_key is None or key > best_key):
            best_key, best_epoch, best_state = key, record["epoch"], copy.deepcopy(model.trainable_state())

    shuffle = torch.Generator().manual_seed(config.seed)
    # Dropout on delta can only draw from torch's global RNG (the CPU's, or the GPU's the model
    # is on): seeded here, inside a fork, so the caller's global RNG state is the same after
    # the fit as before it.
    with seeded_global_rng(config.seed, device), gradients.attached(model, config.lr, config.head_lr_ratio):
        # Source queries to prepare the start: the probe reads every training sample, a label map its fit
        # part; scoring the start reads the validation rows, unless the probe's reading holds them (carved).
        per_sample = model.queries_per_sample  # a multi-view bridge sends each sample as several inputs
        start_cost = ((len(x) if probe_start else len(x_fit) if head.needs_source_outputs else 0)
                      + (0 if probe_start and validation is None else len(y_val))) * per_sample
        if not gradients.can_afford(0, start_cost):  # only a query budget refuses: before any query is spent
            raise BudgetExhausted(f"a query budget of {gradients.limit} does not cover preparing the output map and "
                                  f"scoring the start ({start_cost} queries), let alone training; raise it")
        if probe_start:
            # minutes for a slow source or a multi-view bridge (German credit through Lite0: 16 000 images)
            features = start_features.to(device) if start_features is not None else in_batches(
                model.source_logits, x, config.batch_size, lengths,
                progress="probe: reading the source" if config.progress else None)
            probed = features[fit_idx] if validation is None else features
            probe = _fit_start(head, probed, y_fit, config, model.probe_views)
            _load_start(head, probe, penalty=1 / (2 * probe.c * len(probed)) if config.probe_penalty else 0.0)
            # The validation rows' reading at the start: carved, it is part of the probe's; given, it is
            # read once here, scores the start and joins the probe's refit.
            if validation is None:
                val_features = features[val_idx]
            elif use_val:
                val_features = (start_val_features.to(device) if start_val_features is not None
                                else in_batches(model.source_logits, x_val, config.batch_size, val_lengths))
        if head.needs_source_outputs:
            head.prepare(in_batches(model.source_logits, x_fit, config.batch_size, fit_lengths), y_fit)
        # The start competes as epoch 0 when it is a model: a probe head or a prepared label map,
        # never a randomly drawn head (selecting that would return an untrained random model).
        random_head = probe is None and isinstance(head, LinearHead)
        if use_val and not random_head:
            select({"epoch": 0}, val_features)
        start_state = None if random_head else copy.deepcopy(model.trainable_state())
        epochs = config.epochs
        if probe is not None and not use_val:
            # Nothing could show that training beats the probe (a class has a single sample,
            # or val_fraction is 0): the probe on every training sample is the model.
            epochs, stopped_by = 0, NO_VALIDATION_PART
        if probe is not None and epochs:
            # Clipping is the probe's (the start state keeps it): the trained bridge's reading may rightly leave
            # the range the probe was fitted on, and the head trains through it.
            head.unbound()
        n_batches = math.ceil(len(x_fit) / config.batch_size)
        bar = tqdm(total=epochs * n_batches, desc="fit", unit="batch", disable=not config.progress or not epochs,
                   leave=False)
        for epoch in range(1, epochs + 1):
            remap = {}
            if head.remap_due(epoch):  # ILM-VP, BLM: re-estimated through the current theta
                model.eval()
                changed = head.prepare(in_batches(model.source_logits, x_fit, config.batch_size, fit_lengths), y_fit)
                remap = {"remapped": True, "map_changed": changed}
            model.train()
            total, seen = 0.0, 0
            for batch in _batches(torch.randperm(len(x_fit), generator=shuffle), config.batch_size, fit_lengths,
                                  shuffle):
                if not gradients.can_afford(len(batch) * per_sample, len(y_val) * per_sample):
                    stopped_by = "budget"
                    break
                loss = gradients.step(x_fit[batch], y_fit[batch])
                _check_finite(loss, epoch, config.lr)
                model.constrain()
                total, seen = total + loss * len(batch), seen + len(batch)
                bar.update()
                bar.set_postfix(epoch=epoch, loss=round(loss, 4))
            if seen:
                select({"epoch": epoch, "train_loss": total / seen, **remap})
            if stopped_by == "budget":
                break
            if epoch - best_epoch >= config.patience:
                stopped_by = "patience"
                break
        bar.close()
        queries = gradients.queries
    if isinstance(head, LinearHead):  # the probe's penalty shapes training only: a saved head reloads without it
        head.probe_l2 = 0.0
    if best_state is not None:
        model.load_state_dict(best_state, strict=False)
    model.eval()
    selection = "validation" if use_val else ("training loss" if epochs else "none: no training")
    if use_val and lone_epoch and best_epoch:
        selection = "one trained epoch, kept unscored: the start does not compete"
    n_fit = len(y_fit)
    if probe is not None and use_val and config.refit_start:
        # The probe refitted on every training sample with the chosen C (a UCR set of 30 series cannot
        # spare its validation fifth; a given validation split is training data too, and the C was
        # chosen without it: AMP Scanner v2's 708 eval records). It is the model when the start won,
        # else the start the trained model is compared with: the probe a fit without training gives.
        every_x, every_y = (features, y) if validation is None else (torch.cat([features, val_features]),
                                                                     torch.cat([y, y_val]))
        refitted = _fit_start(head, every_x, every_y, config, model.probe_views, probe.c)
        trained = None if best_epoch == 0 else copy.deepcopy(model.trainable_state())
        model.load_state_dict(start_state, strict=False)
        _load_start(head, refitted)
        start_state = copy.deepcopy(model.trainable_state())
        if trained is None:
            selection = "validation: the probe start won, refitted on all training samples" + (
                "" if validation is None else " and the validation split")
            n_fit = len(every_y)
        else:
            model.load_state_dict(trained, strict=False)
    start_record = history[0] if history and history[0]["epoch"] == 0 else {}
    best = next((r for r in history if r["epoch"] == best_epoch), {})
    return FitResult(
        best_epoch=best_epoch, epochs_run=sum(r["epoch"] > 0 for r in history),
        val_accuracy=best.get("val_accuracy"), val_loss=best.get("val_loss"), selection=selection,
        n_fit=n_fit, n_val=len(y_val), seconds=time.perf_counter() - start,
        probe_c=None if probe is None else probe.c,
        probe_val_accuracy=start_record.get("val_accuracy") if probe is not None else None,
        stopped_by=stopped_by, queries=queries, history=history, start_state=start_state,
    )
