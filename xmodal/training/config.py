"""What one training run is told (TrainConfig) and what it reports (FitResult)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from xmodal.errors import DataError
from xmodal.presets import PRESETS
from xmodal.training.probe import PROBE_C

_V2S = PRESETS["series", "v2s"].settings
SELECTION_CRITERIA = ("accuracy", "loss")


@dataclass
class TrainConfig:
    """epochs: upper bound (0: no training, the start state is the model); patience: epochs
    without a better validation score before stopping; val_fraction: share of the training
    data held out to select the epoch (0: select on the training loss); head_init "probe":
    the linear head starts as a logistic-regression probe of the frozen features, and that
    start competes as epoch 0, so training is kept only where it beats it; select_on: what
    "best" means on validation, "accuracy" (ties go to the lower loss) or "loss" (log-loss
    alone: smoother on small validation sets, and the criterion a probe's C is chosen by);
    start_competes False: the best trained epoch is kept even where the start scores better
    (the filtered-tones bridge reads its trained state beside its start, so the start is never
    lost; with epochs 1 that epoch is kept unscored, its validation rows not read); head_lr_ratio:
    the head's learning rate as a share of lr; probe_penalty: a probe head trains under the
    probe's own L2 term (LinearHead.penalty); probe_blocks: the (start, end) column ranges probed
    one by one, their probes averaged (a fused source's parts, and a trained view of one of them
    beside its start; None: one probe); refit_start False: the probe start is not refitted on
    every training sample after training (a kernel head reads the trained view out instead);
    probe_c_rows: the linear probe's C is chosen on at most this many training samples (None: on
    all; xmodal.training.probe.fit_probe; a kernel probe's C is chosen on all)."""

    # Without the estimators (which pass a preset's values), the training of the v2s preset.
    epochs: int = _V2S["epochs"]
    lr: float = _V2S["lr"]
    batch_size: int = _V2S["batch_size"]
    val_fraction: float = _V2S["val_fraction"]
    patience: int = _V2S["patience"]
    seed: int = 0
    progress: bool = True
    head_init: str = "random"
    select_on: str = "accuracy"
    probe_cs: tuple[float, ...] = PROBE_C  # the probe's candidate C values (xmodal.training.probe)
    start_competes: bool = True
    head_lr_ratio: float = 1.0
    probe_penalty: bool = False
    probe_blocks: tuple[tuple[int, int], ...] | None = None
    refit_start: bool = True
    probe_c_rows: int | None = None

    def __post_init__(self):
        if self.probe_penalty and self.probe_blocks is not None:
            raise DataError("probe_penalty needs one probe's C, and probe_blocks fits one per block: set one of them")
        if self.select_on not in SELECTION_CRITERIA:
            raise DataError(f"select_on must be one of {', '.join(SELECTION_CRITERIA)}, got {self.select_on!r}")
        if self.head_init not in ("probe", "random"):
            raise DataError(f"head_init must be 'probe' or 'random', got {self.head_init!r}")
        if self.probe_c_rows is not None and self.probe_c_rows < 2:
            raise DataError(f"'probe_c_rows' must be at least 2 (or None: every sample), got {self.probe_c_rows}")
        for name, least in (("epochs", 0), ("batch_size", 1), ("patience", 1)):
            if int(getattr(self, name)) < least:
                raise DataError(f"'{name}' must be at least {least}, got {getattr(self, name)}")
        if not self.lr > 0 or not self.head_lr_ratio > 0:
            raise DataError(f"'lr' and 'head_lr_ratio' must be positive, got {self.lr} and {self.head_lr_ratio}")
        if not 0 <= self.val_fraction < 1:
            raise DataError(f"'val_fraction' must be in [0, 1), got {self.val_fraction}")


@dataclass
class FitResult:
    """best_epoch 0 is the start state (the probe, when the head starts as one).
    probe_val_accuracy: the probe start's validation accuracy (None without a probe or a
    validation part); queries: source queries spent (black-box training only);
    beside_start: the trained bridge is read beside its start under one refitted probe
    (trained_view): its best trained epoch is always kept, and val_accuracy and val_loss are
    that probe's, fitted on the fit part; under a kernel head (sequences) the kernel head on both
    readings competes with the one on the start's reading alone (history's epoch 0), and where the
    start wins beside_start is False and best_epoch 0. For a fused source's trained view (the series best
    preset) the validation fields and history are that member's alone, against its own probe
    start; start_state is the sources' probes alone (with their window slices' members, where
    slice_copies adds them)."""

    best_epoch: int
    epochs_run: int
    val_accuracy: float | None
    val_loss: float | None
    selection: str
    n_fit: int
    n_val: int
    seconds: float
    probe_c: float | tuple[float, ...] | None = None  # a tuple: one C per block (probe_blocks)
    probe_val_accuracy: float | None = None
    stopped_by: str = "epochs"  # "epochs", "patience", "budget" or "no training"
    queries: int | None = None
    history: list[dict] = field(default_factory=list)
    beside_start: bool = False
    # theta and omega at the start (untrained theta; the probe head, refitted on every training
    # sample when it had a validation part, or the prepared label map): the model "without
    # reprogramming". Not saved; None for a random head.
    start_state: dict | None = field(default=None, repr=False, compare=False)

    @property
    def reprogramming_kept(self) -> bool | None:
        """Whether a trained epoch beat the start state on validation (beside_start: whether the
        probe of both readings has a lower validation log-loss than the probe start); None when no
        start state competed (a random head, or no validation part)."""
        if not self.history or self.history[0]["epoch"] != 0:
            return None if self.epochs_run else False
        if self.beside_start:
            return self.val_loss < self.history[0]["val_loss"]
        return self.best_epoch > 0

    def to_dict(self, history: bool = True) -> dict:
        record = {k: v for k, v in asdict(self).items() if k != "start_state"}
        if not history:
            record.pop("history")
        return record

    @classmethod
    def from_dict(cls, record: dict) -> "FitResult":
        return cls(**{k: v for k, v in record.items() if k in cls.__dataclass_fields__})
