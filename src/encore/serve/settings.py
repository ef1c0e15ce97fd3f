"""The service's settings: one frozen, validated model, from the environment and the CLI.

Precedence: defaults < ``ENCORE_SERVE_<FIELD>`` environment variables (and
``ENCORE_API_TOKEN`` for the token) < explicit options of ``encore serve``. An unknown
``ENCORE_SERVE_*`` variable is an error, like a misspelt config key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from encore.exceptions import ConfigError

__all__ = ["ENV_PREFIX", "ENV_TOKEN", "ServeSettings", "default_queue_bytes"]

ENV_PREFIX = "ENCORE_SERVE_"
ENV_TOKEN = "ENCORE_API_TOKEN"


QUEUE_MEMORY_SHARE = 0.25
"""The default upload queue may hold this share of the memory available when the server starts."""


def default_queue_bytes() -> int:
    """A quarter of the memory available now (psutil), at least 100 MB."""
    import psutil

    return max(int(psutil.virtual_memory().available * QUEUE_MEMORY_SHARE), 100_000_000)


class ServeSettings(BaseModel):
    """Everything ``encore serve`` can be told.

    Writes (feedback, storing predictions) need ``Authorization: Bearer <token>``; with
    no token configured they are refused unless ``dev`` is set.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    run: Path = Field(description="run folder (checkpoint.pt) or an exported .onnx file")
    workspace: Path | None = Field(None, description="workspace whose store receives feedback and predictions")
    backend: Literal["torch", "onnx"] = "torch"
    device: str = Field(
        "auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$", description="auto (a CUDA GPU when present), cpu, cuda, cuda:N"
    )
    token: SecretStr | None = Field(None, description="bearer token for writes (env ENCORE_API_TOKEN)")
    dev: bool = Field(False, description="development mode: writes need no token (never expose this)")
    max_upload_bytes: int = Field(20_000_000, gt=0, description="largest accepted upload, per file")
    max_seconds: float = Field(600.0, gt=0, description="longest accepted song, seconds (read from the header)")
    max_batch_files: int = Field(8, gt=0, le=64, description="files per /v1/predict/batch request")
    max_events: int = Field(1000, gt=0, description="events per /v1/feedback request")
    max_json_bytes: int = Field(
        5_000_000,
        gt=0,
        description="largest non-upload (JSON) request body; parsing JSON takes ~10x its size in memory",
    )
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, gt=0, description="inference threads")
    decode_workers: int | None = Field(
        None,
        ge=0,
        description="processes decoding a /v1/predict/batch request's files while the model runs on their chunks "
        "(default: up to 8 on a GPU, none on a CPU, as encore predict --jobs)",
    )
    queue_bytes: int = Field(
        default_factory=lambda: default_queue_bytes(),
        gt=0,
        description="most bytes of uploads waiting or running at once before 503 (default: a quarter of the "
        "memory available at start)",
    )
    queue_timeout: float = Field(60.0, gt=0, description="most seconds a request waits for a worker before 503")
    explain: bool = Field(
        True,
        description="allow explain=true on /v1/predict (occlusion: ~50 forward passes of a CNN, 33 predictions of any other model)",
    )

    @property
    def max_body_bytes(self) -> int:
        """Largest request body: a full batch of files plus form overhead."""
        return self.max_upload_bytes * self.max_batch_files + 1_000_000

    @property
    def writes(self) -> str:
        """``"token"``, ``"dev"`` (no token needed) or ``"disabled"``."""
        return "token" if self.token is not None else "dev" if self.dev else "disabled"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **options: Any) -> ServeSettings:
        """Settings from ``ENCORE_SERVE_*`` / ``ENCORE_API_TOKEN`` and explicit ``options``.

        Options that are None are ignored, so CLI defaults do not mask the environment.

        Raises:
            ConfigError: An unknown variable or a bad value, named with the fix.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for key, value in environ.items():
            if key.startswith(ENV_PREFIX):
                values[key[len(ENV_PREFIX) :].lower()] = value
        if environ.get(ENV_TOKEN):
            values["token"] = environ[ENV_TOKEN]
        values.update({k: v for k, v in options.items() if v is not None})
        try:
            return cls(**values)
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in err.errors())
            raise ConfigError(f"invalid serve settings ({problems}); check the options and {ENV_PREFIX}* variables") from None
