"""A workspace: one folder holding the store, the feature cache, manifests and runs.

Layout::

    workspace/
      encore.yaml      the workspace settings (store URL)
      encore.sqlite    the embedded store (SQLite, WAL) unless a PostgreSQL URL is set
      cache/           content-addressed decoded audio and features
      manifests/       targets and splits, the contract between labels and training
      runs/            one folder per training run (checkpoint, config, metrics, report)
      uploads/         songs the HTTP service stored (``POST /v1/predict`` with ``store``), by track id
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from encore.exceptions import WorkspaceError

logger = logging.getLogger(__name__)

SETTINGS_FILE = "encore.yaml"
UPLOADS_DIR = "uploads"
ENV_WORKSPACE = "ENCORE_WORKSPACE"


@dataclass(frozen=True)
class Workspace:
    """Paths of one workspace. Build with :meth:`init` or :meth:`open`."""

    root: Path
    store_url: str

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def manifests_dir(self) -> Path:
        return self.root / "manifests"

    @property
    def uploads_dir(self) -> Path:
        return self.root / UPLOADS_DIR

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    def manifest_path(self, name: str = "default") -> Path:
        return self.manifests_dir / f"{name}.csv"

    def new_run_dir(self, name: str) -> Path:
        """A fresh run folder ``runs/<name>``, suffixed ``-2``, ``-3``... if taken."""
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        candidate = self.runs_dir / name
        n = 2
        while candidate.exists():
            candidate = self.runs_dir / f"{name}-{n}"
            n += 1
        candidate.mkdir(parents=True)
        return candidate

    def resolve_run(self, run: str | os.PathLike) -> Path:
        """A run given as a path, or as a name under ``runs/``."""
        path = Path(run)
        if path.is_dir():
            return path
        named = self.runs_dir / str(run)
        if named.is_dir():
            return named
        known = sorted(p.name for p in self.runs_dir.glob("*") if p.is_dir()) if self.runs_dir.exists() else []
        raise WorkspaceError(
            f"run {str(run)!r} not found as a folder or under {self.runs_dir}; known runs: {', '.join(known) or 'none'}"
        )

    @classmethod
    def init(cls, root: str | os.PathLike, *, store_url: str | None = None) -> Workspace:
        """Create (or reopen) a workspace folder and its settings file."""
        root = Path(root).resolve()
        root.mkdir(parents=True, exist_ok=True)
        settings_path = root / SETTINGS_FILE
        if settings_path.exists():
            ws = cls.open(root)
            if store_url and store_url != ws.store_url:
                raise WorkspaceError(
                    f"{root} is already a workspace with store {ws.store_url!r}; edit {settings_path} to switch to {store_url!r}"
                )
            return ws
        url = store_url or f"sqlite:///{root / 'encore.sqlite'}"
        settings_path.write_text(yaml.safe_dump({"store_url": url}), encoding="utf-8")
        ws = cls(root=root, store_url=url)
        for folder in (ws.cache_dir, ws.runs_dir, ws.manifests_dir):
            folder.mkdir(exist_ok=True)
        logger.info("created workspace %s (store %s)", root, url)
        return ws

    @classmethod
    def open(cls, root: str | os.PathLike | None = None) -> Workspace:
        """Open an existing workspace (default: $ENCORE_WORKSPACE or the current folder)."""
        root = Path(root if root is not None else os.environ.get(ENV_WORKSPACE, ".")).resolve()
        settings_path = root / SETTINGS_FILE
        if not settings_path.is_file():
            raise WorkspaceError(
                f"{root} is not an encore workspace (no {SETTINGS_FILE}); "
                f"create one with `encore init -w {root}`, or point -w/--workspace (or $ENCORE_WORKSPACE) at one"
            )
        settings = yaml.safe_load(settings_path.read_text(encoding="utf-8")) or {}
        url = settings.get("store_url")
        if not isinstance(url, str) or not url:
            raise WorkspaceError(f"{settings_path} has no store_url; add e.g. store_url: sqlite:///{root}/encore.sqlite")
        return cls(root=root, store_url=url)

    def open_store(self):
        """The feedback store this workspace points at."""
        from encore.store import Store

        return Store.open(self.store_url)
