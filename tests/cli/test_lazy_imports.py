"""The CLI answers at once: importing it and asking any command for --help loads no heavy library.

A fresh interpreter is needed (the test session itself has imported torch long ago), so
each check runs ``python -c`` in a subprocess and reads back the modules it loaded.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from encore.cli.main import app

HEAVY = (
    "torch",
    "torchaudio",
    "matplotlib",
    "sqlalchemy",
    "alembic",
    "sklearn",
    "pandas",
    "numpy",
    "scipy",
    "pyarrow",
    "librosa",
    "soundfile",
    "av",
    "fastapi",
    "starlette",
    "uvicorn",
    "optuna",
    "onnxruntime",
    "onnx",
)
SRC = Path(__file__).resolve().parents[2] / "src"


def _loaded_heavy(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter and return the heavy top-level packages it loaded."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    return sorted(loaded & set(HEAVY))


def _command_paths() -> list[list[str]]:
    """Every command and sub-command of the CLI, as argument lists."""
    import typer.main

    paths: list[list[str]] = []

    def walk(command, prefix):
        paths.append(prefix)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*prefix, name])

    walk(typer.main.get_command(app), [])
    return paths


def test_importing_the_cli_loads_no_heavy_library():
    assert _loaded_heavy("import encore.cli.main") == []


def test_the_probe_sees_a_heavy_import():
    """The check above can fail: the same probe notices numpy when it is imported."""
    assert _loaded_heavy("import encore.cli.main, numpy") == ["numpy"]


def test_every_commands_help_loads_no_heavy_library():
    paths = _command_paths()
    assert len(paths) > 15  # the walk found the commands and their sub-commands
    code = (
        "from encore.cli.main import app\n"
        f"for args in {paths!r}:\n"
        "    try:\n"
        "        app([*args, '--help'], standalone_mode=False)\n"
        "    except SystemExit:\n"
        "        pass\n"
    )
    assert _loaded_heavy(code) == []


def test_the_explain_methods_in_the_help_are_the_library_s():
    from encore.cli.explain import AUDIO
    from encore.cli.explain import METHODS as CLI_METHODS
    from encore.explain import AUDIO_METHOD, METHODS

    assert CLI_METHODS == (*METHODS, AUDIO_METHOD) and AUDIO == AUDIO_METHOD


@pytest.mark.parametrize("args", _command_paths(), ids=lambda a: " ".join(a) or "encore")
def test_every_command_help_still_reads_well(args):
    result = CliRunner().invoke(app, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
