"""The fitted table encoder: one table row -> D intensities in [0, 1].

Kept apart from the drawing (table_to_image.py) so it can be tested alone and
its statistics saved beside a trained reprogrammer.

- Numeric columns: standardised with the training mean and standard deviation,
  clipped to +-`clip` standard deviations, then mapped linearly onto [0, 1]
  (the mean draws at 0.5). One intensity per column.
- Categorical columns: `encoding="onehot"` (default) gives one intensity per
  training category (1 for the row's category, 0 otherwise);
  `encoding="ordinal"` gives one intensity per column, category i of K (in
  sorted order) at (i + 1) / (K + 1), so 0 is free for "missing/unknown".
- Missing values (NaN / empty cells): `missing="error"` (default) refuses
  them, naming the columns; `missing="impute"` draws a numeric gap at the
  training mean (0.5) and a categorical gap as "no category" (all one-hot
  cells 0, ordinal 0).
- A category not seen in training is drawn like a missing one under
  `unknown="zero"` (default), or refused under `unknown="error"`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from xmodal.errors import DataError
from xmodal.settings_record import SettingsRecord

ENCODINGS = ("onehot", "ordinal")
MISSING_POLICIES = ("error", "impute")
UNKNOWN_POLICIES = ("zero", "error")


@dataclass
class TableEncoder(SettingsRecord):
    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    means: dict[str, float] = field(default_factory=dict)
    scales: dict[str, float] = field(default_factory=dict)
    categories: dict[str, list[str]] = field(default_factory=dict)
    encoding: str = "onehot"
    missing: str = "error"
    unknown: str = "zero"
    clip: float = 3.0

    def __post_init__(self):
        for name, allowed in (("encoding", ENCODINGS), ("missing", MISSING_POLICIES), ("unknown", UNKNOWN_POLICIES)):
            if getattr(self, name) not in allowed:
                raise DataError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if not self.clip > 0:
            raise DataError(f"clip must be positive, got {self.clip}")

    @classmethod
    def fit(cls, frame: pd.DataFrame, encoding: str = "onehot", missing: str = "error",
            unknown: str = "zero", clip: float = 3.0) -> "TableEncoder":
        """Column kinds from dtypes (numeric dtypes are numeric, the rest categorical)."""
        encoder = cls(encoding=encoding, missing=missing, unknown=unknown, clip=clip)
        if not isinstance(frame, pd.DataFrame) or frame.shape[0] == 0 or frame.shape[1] == 0:
            raise DataError("fit the table encoder on a non-empty pandas DataFrame of feature columns")
        encoder.check_missing(frame)
        for column in frame.columns:
            name = str(column)
            values = frame[column]
            if pd.api.types.is_numeric_dtype(values):
                if not np.isfinite(values.dropna().to_numpy(dtype=float)).all():
                    raise DataError(f"column {name!r} holds infinite values; replace them before fitting")
                encoder.numeric.append(name)
                encoder.means[name] = float(values.mean()) if values.notna().any() else 0.0
                scale = float(values.std(ddof=0)) if values.notna().any() else 0.0
                encoder.scales[name] = scale if scale > 0 else 1.0  # a constant column draws at 0.5
            else:
                encoder.categorical.append(name)
                encoder.categories[name] = sorted({str(v) for v in values.dropna()})
        return encoder

    @property
    def columns(self) -> list[str]:
        return self.numeric + self.categorical

    @property
    def feature_names(self) -> list[str]:
        """One name per intensity, in drawing order."""
        names = list(self.numeric)
        for column in self.categorical:
            if self.encoding == "onehot":
                names += [f"{column}={c}" for c in self.categories[column]]
            else:
                names.append(column)
        return names

    @property
    def num_features(self) -> int:
        return len(self.feature_names)

    def check_missing(self, frame: pd.DataFrame) -> None:
        if self.missing == "impute":
            return
        gaps = frame.isna().sum()
        gaps = gaps[gaps > 0]
        if len(gaps):
            listed = ", ".join(f"{c!r} ({n})" for c, n in gaps.items())
            raise DataError(f"missing values in columns {listed}; drop those rows or impute them "
                            "(missing='impute', CLI --impute: numeric gaps at the training mean, "
                            "categorical gaps as no category)")

    def _check_columns(self, frame: pd.DataFrame) -> None:
        absent = [c for c in self.columns if c not in frame.columns]
        if absent:
            raise DataError(f"the table lacks columns {absent} that the encoder was fitted on")

    def _numeric(self, values: pd.Series, column: str) -> np.ndarray:
        try:
            raw = values.to_numpy(dtype=float)
        except (TypeError, ValueError) as exc:
            raise DataError(f"column {column!r} was numeric in training but holds text now ({exc})") from exc
        if np.isinf(raw).any():
            raise DataError(f"column {column!r} holds infinite values; replace them first")
        z = (raw - self.means[column]) / self.scales[column]
        z = np.where(np.isnan(z), 0.0, np.clip(z, -self.clip, self.clip))  # NaN only under "impute"
        return ((z + self.clip) / (2 * self.clip))[:, None]

    def _categorical(self, values: pd.Series, column: str) -> np.ndarray:
        known = self.categories[column]
        index = {c: i for i, c in enumerate(known)}
        codes = np.array([-1 if pd.isna(v) else index.get(str(v), -2) for v in values])
        if self.unknown == "error" and (codes == -2).any():
            unseen = sorted({str(v) for v, c in zip(values, codes) if c == -2})
            raise DataError(f"column {column!r} holds categories {unseen[:5]} not seen in training "
                            f"(known: {known[:10]}); use unknown='zero' to draw them as no category")
        if self.encoding == "onehot":
            out = np.zeros((len(codes), len(known)))
            rows = np.flatnonzero(codes >= 0)
            out[rows, codes[rows]] = 1.0
            return out
        return np.where(codes >= 0, (codes + 1) / (len(known) + 1), 0.0)[:, None]

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """(N, num_features) float32 intensities in [0, 1]."""
        if not isinstance(frame, pd.DataFrame):
            raise DataError(f"encode a pandas DataFrame with columns {self.columns[:8]}..., got {type(frame).__name__}")
        self._check_columns(frame)
        self.check_missing(frame[self.columns])
        parts = [self._numeric(frame[c], c) for c in self.numeric]
        parts += [self._categorical(frame[c], c) for c in self.categorical]
        return np.concatenate(parts, axis=1).astype(np.float32)
