"""TrainingConfig and its 8-character hash (docs/lifecycle.md, "Training config and its hash")."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

FIELDS = ("model_type", "hyperparameters", "dataset_version", "feature_set", "random_seed")


@dataclass(frozen=True)
class TrainingConfig:
    """Immutable training configuration; the hash recipe is fixed (docs/lifecycle.md)."""

    model_type: str
    hyperparameters: dict[str, Any]
    dataset_version: str
    feature_set: str
    random_seed: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_type": self.model_type,
            "hyperparameters": self.hyperparameters,
            "dataset_version": self.dataset_version,
            "feature_set": self.feature_set,
            "random_seed": self.random_seed,
        }

    def config_hash(self) -> str:
        config_str = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(config_str.encode()).hexdigest()[:8]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingConfig:
        """ValueError naming missing / unknown keys."""
        missing = [k for k in FIELDS if k not in data]
        unknown = [k for k in data if k not in FIELDS]
        if missing or unknown:
            raise ValueError(f"training_config: missing {missing or '-'}, unknown {unknown or '-'}")
        if not isinstance(data["hyperparameters"], dict):
            raise ValueError("training_config: hyperparameters must be a mapping")
        return cls(**{k: data[k] for k in FIELDS})
