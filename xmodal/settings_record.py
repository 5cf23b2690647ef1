"""Settings dataclasses that are saved in reprogrammer.json."""

from __future__ import annotations

from dataclasses import asdict, fields


class SettingsRecord:
    """Mixin for a dataclass saved as JSON: `to_dict`, and a `from_dict` that
    tolerates unknown keys, so files written by newer versions still load."""

    @classmethod
    def from_dict(cls, values: dict):
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def to_dict(self) -> dict:
        return asdict(self)
