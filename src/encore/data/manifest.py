"""The manifest: the one on-disk contract between targets and training.

A manifest is a CSV with one row per song (``track_id, path, artist, title, split,
label, label_confidence, appeal, appeal_sd, n_events, n_listeners``, one ``tag:<name>`` column of
soft targets per tag and ``tag_support``, the listeners behind them) and a JSON sidecar naming the classes, tags and scores, with a
digest of the table so a checkpoint can say exactly which data trained it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from encore.exceptions import ParameterError

__all__ = ["TAG_PREFIX", "Manifest"]

TAG_PREFIX = "tag:"
REQUIRED_COLUMNS = ("track_id", "path", "artist", "split")
SPLITS = ("train", "val", "test")


@dataclass
class Manifest:
    """Songs with their targets and split.

    Attributes:
        frame: One row per song (see module docstring).
        label_names: Class names; ``label`` holds one of them or is empty.
        tag_names: Tag names; ``tag:<name>`` columns hold soft targets in [0, 1].
        regression_names: Score columns (``appeal``).
        info: Free-form provenance (how targets were made).
    """

    frame: pd.DataFrame
    label_names: list[str]
    tag_names: list[str] = field(default_factory=list)
    regression_names: list[str] = field(default_factory=lambda: ["appeal"])
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [c for c in REQUIRED_COLUMNS if c not in self.frame.columns]
        if missing:
            raise ParameterError(f"manifest is missing columns {missing}; found {list(self.frame.columns)}")
        bad = sorted(set(self.frame["split"].dropna()) - set(SPLITS))
        if bad:
            raise ParameterError(f"manifest split values {bad} are unknown; use {list(SPLITS)}")
        self.frame = self.frame.reset_index(drop=True)

    def subset(self, split: str) -> pd.DataFrame:
        if split not in SPLITS:
            raise ParameterError(f"split={split!r} must be one of {list(SPLITS)}")
        return self.frame[self.frame["split"] == split].reset_index(drop=True)

    def class_targets(self, frame: pd.DataFrame) -> np.ndarray:
        """Class indices, -1 where the song is unlabelled."""
        index = {name: i for i, name in enumerate(self.label_names)}
        labels = frame["label"] if "label" in frame else pd.Series([None] * len(frame))
        return np.array([index.get(v, -1) if isinstance(v, str) else -1 for v in labels], dtype=np.int64)

    def tag_targets(self, frame: pd.DataFrame) -> np.ndarray:
        """(n_songs, n_tags) soft targets, NaN rows where a song has no tag evidence."""
        if not self.tag_names:
            return np.zeros((len(frame), 0), dtype=np.float32)
        cols = [TAG_PREFIX + t for t in self.tag_names]
        return frame[cols].to_numpy(dtype=np.float32)

    def regression_targets(self, frame: pd.DataFrame) -> np.ndarray:
        """(n_songs, n_scores), NaN where missing."""
        if not self.regression_names:
            return np.zeros((len(frame), 0), dtype=np.float32)
        return frame[self.regression_names].to_numpy(dtype=np.float32)

    def target_noise(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Sampling variance of each song's observed targets, NaN where the manifest can't say.

        A tag share ``p`` voted by ``n`` listeners (``tag_support``) has variance
        ``p(1 - p) / n``, with ``p`` the tag's mean share over ``frame`` (a song's own share
        is 0 or 1 too often on few votes). A score has the square of its ``<name>_sd``
        column (``appeal_sd``, the appeal's standard error).

        Returns:
            ``(n_songs, n_tags)`` and ``(n_songs, n_scores)`` variances.
        """
        tags = self.tag_targets(frame)
        tag_noise = np.full(tags.shape, np.nan)
        if tags.size and "tag_support" in frame:
            support = pd.to_numeric(frame["tag_support"], errors="coerce").to_numpy(dtype=float)
            support = np.where(support > 0, support, np.nan)
            share = np.nan_to_num(np.nanmean(tags, axis=0)) if np.isfinite(tags).any() else np.zeros(tags.shape[1])
            tag_noise = (share * (1 - share))[None, :] / support[:, None]
        score_noise = np.full((len(frame), len(self.regression_names)), np.nan)
        for j, name in enumerate(self.regression_names):
            if f"{name}_sd" in frame:
                score_noise[:, j] = pd.to_numeric(frame[f"{name}_sd"], errors="coerce").to_numpy(dtype=float) ** 2
        return tag_noise, score_noise

    def digest(self) -> str:
        """sha256 of the table's canonical CSV and the name lists."""
        h = hashlib.sha256(self.frame.to_csv(index=False).encode("utf-8"))
        h.update(json.dumps([self.label_names, self.tag_names, self.regression_names]).encode("utf-8"))
        return h.hexdigest()

    def summary(self) -> dict[str, Any]:
        frame = self.frame
        return {
            "songs": int(len(frame)),
            "artists": int(frame["artist"].nunique()),
            "songs_without_artist": int(frame["artist"].isna().sum()),
            "labelled": int(frame["label"].notna().sum()) if "label" in frame else 0,
            "splits": {s: int((frame["split"] == s).sum()) for s in SPLITS},
            "label_counts": {k: int(v) for k, v in frame["label"].value_counts().items()} if "label" in frame else {},
            "tags": len(self.tag_names),
            **{k: v for k, v in self.info.items() if isinstance(v, (int, float, str))},
        }

    def write(self, path: str | os.PathLike) -> Path:
        """Write ``path`` (CSV) and ``path.json`` (names, info, digest)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.frame.to_csv(path, index=False)
        sidecar = {
            "label_names": self.label_names,
            "tag_names": self.tag_names,
            "regression_names": self.regression_names,
            "info": self.info,
            "digest": self.digest(),
        }
        path.with_suffix(".json").write_text(json.dumps(sidecar, indent=2), encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: str | os.PathLike) -> Manifest:
        path = Path(path)
        sidecar_path = path.with_suffix(".json")
        if not path.is_file() or not sidecar_path.is_file():
            raise ParameterError(f"manifest {str(path)!r} (and its .json sidecar) not found; build one with `encore labels`")
        try:
            sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
            frame = pd.read_csv(path, dtype={"track_id": str, "artist": str, "label": "string"}, keep_default_na=True)
            if "label" in frame.columns:
                frame["label"] = frame["label"].astype(object).where(frame["label"].notna(), None)
            return cls(
                frame=frame,
                label_names=list(sidecar["label_names"]),
                tag_names=list(sidecar.get("tag_names", [])),
                regression_names=list(sidecar.get("regression_names", ["appeal"])),
                info=dict(sidecar.get("info", {})),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as err:  # a hand-edited or damaged manifest
            reason = f"no {err}" if isinstance(err, KeyError) else str(err).splitlines()[0]
            raise ParameterError(
                f"manifest {path} (or {sidecar_path.name}) cannot be used: {reason}; rebuild it with `encore labels`"
            ) from err
