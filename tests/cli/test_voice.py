"""One voice: every error the CLI shows a user names the command, option, column or file
to fix, in one line, with a non-zero exit status, and never a Python name.

Each case runs a real command through Typer's ``CliRunner`` on a small workspace made
here (a tiny CNN run, a good song, a corrupt one, tables with a column missing) and
checks the output against patterns of Python leaking through: a call ``name(``, a keyword
``name=value`` (other than the ``--set section.key=value`` syntax a user types), a module
path ``encore.``, an exception class name, a traceback.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from tiny_cnn import SAMPLE_RATE, build_tiny_model, tiny_card
from typer.testing import CliRunner

from encore.cli.main import app

runner = CliRunner()

PYTHON_LEAKS = {
    "a call": re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\((?:\)|[a-z_]+=)"),  # load_audio(), open(encoding=
    "a keyword argument": re.compile(r"(?<![-.\w`])([a-z][a-z0-9_]*)=(?!=)"),  # encoding=, max_json_bytes=
    "a module path": re.compile(r"\bencore\.(?!(?:yaml|sqlite)\b)[a-z_]+"),  # not the workspace's encore.yaml
    "a setting's name": re.compile(r"\bsee [a-z]+_[a-z0-9_]+\b"),  # see max_json_bytes
    "an exception class": re.compile(r"\b[A-Z][A-Za-z]*(?:Error|Exception|Warning)\b"),
    "a traceback": re.compile(r"Traceback \(most recent call last\)|File \".*\", line \d+"),
}
USER_SYNTAX = ("--map ", "--set ", "-s ", "ENCORE_")
"""What a user types: ``--map track_id=song``, ``--set train.epochs=5``."""
SRC = Path(__file__).resolve().parents[2] / "src" / "encore"


def _python_names() -> frozenset[str]:
    """encore's own functions and classes, e.g. import_tracks, load_audio, SongExplanation.

    Only names a person would not type anyway: snake_case with an underscore, or CamelCase
    with two humps; the config's keys (``sample_rate``) and the columns are the user's words.
    """
    from encore.config import EncoreConfig
    from encore.feedback.importers import CANONICAL_COLUMNS

    found = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                if "_" in node.name or re.fullmatch(r"(?:[A-Z][a-z0-9]+){2,}", node.name):
                    found.add(node.name)
    from encore.cli.explain import METHODS
    from encore.cli.train import MODEL_KINDS

    words = set(CANONICAL_COLUMNS) | set(METHODS) | set(MODEL_KINDS)  # values of --method and --model

    def walk(model):
        for key, info in model.model_fields.items():
            words.add(key)
            if isinstance(info.annotation, type) and hasattr(info.annotation, "model_fields"):
                walk(info.annotation)

    walk(EncoreConfig)
    return frozenset(found - words)


PYTHON_NAMES = _python_names()
NAME_PATTERN = re.compile(r"\b(" + "|".join(sorted(map(re.escape, PYTHON_NAMES), key=len, reverse=True)) + r")\b")


def python_leaks(text: str) -> list[str]:
    """What in ``text`` reads as Python rather than as the CLI's words."""
    leaks = []
    for what, pattern in PYTHON_LEAKS.items():
        for m in pattern.finditer(text):
            before = text[max(0, m.start() - 8) : m.start()]
            if what == "a keyword argument" and before.endswith(USER_SYNTAX):
                continue
            leaks.append(f"{what}: {m.group(0)!r}")
    leaks += [f"a Python name: {m.group(0)!r}" for m in NAME_PATTERN.finditer(text)]
    return leaks


def test_the_leak_patterns_catch_what_the_issue_quoted():
    quoted = [
        "unknown track_id 't9999' (not in the store; add it with import_tracks)",
        "cannot decode events.csv (encoding='latin-1')",
        "columns missing (mapping={'timestamp': '<column>'})",
        "send fewer events per request (see max_json_bytes)",
        "failed in encore.audio.io.load_audio",
        "ParameterError: bad value",
        'Traceback (most recent call last):\n  File "x.py", line 3, in <module>',
    ]
    for message in quoted:
        assert python_leaks(message), message
    for fine in (
        "--set train.epochs=5 is not a known key",
        "use --map track_id=song",
        "song.mp3: cannot read a duration",
        "run 'cnn' not found under /ws/runs; known runs: none",
        "model.band_statistics=true needs refit_heads",
        "unknown track_id 't9' in events.csv line 3; add it with `encore import`",
    ):
        assert not python_leaks(fine), (fine, python_leaks(fine))


@dataclass
class Case:
    """A command that must fail in the CLI's own words."""

    args: list[str]
    says: list[str] = field(default_factory=list)  # what the message must name
    usage: bool = False  # a Typer usage error (exit 2) rather than one of encore's own (exit 1)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """A workspace with a tiny CNN run, a forest-like run folder, songs and broken inputs."""
    from encore.models.checkpoint import save_checkpoint

    root = tmp_path_factory.mktemp("voice")
    ws = root / "ws"
    assert runner.invoke(app, ["init", "-w", str(ws)]).exit_code == 0
    save_checkpoint(ws / "runs" / "tiny" / "checkpoint.pt", build_tiny_model(), tiny_card())
    (ws / "runs" / "broken").mkdir()
    (ws / "runs" / "broken" / "checkpoint.pt").write_bytes(b"not a checkpoint at all")
    (ws / "runs" / "forest").mkdir()
    (ws / "runs" / "forest" / "model_card.json").write_text("{}", encoding="utf-8")
    (ws / "runs" / "empty").mkdir()
    t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    sf.write(root / "good.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), SAMPLE_RATE)
    (root / "corrupt.mp3").write_bytes(np.random.default_rng(0).bytes(4000))
    (root / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    (root / "empty.wav").write_bytes(b"")
    (root / "no-path.csv").write_text("track_id,artist\nt1,someone\n", encoding="utf-8")
    (root / "events-no-kind.csv").write_text("track_id,listener_id,value\nt1,u1,5\n", encoding="utf-8")
    (root / "bad-key.yaml").write_text("train:\n  epochz: 3\n", encoding="utf-8")
    (root / "bad-type.yaml").write_text("train:\n  epochs: many\n", encoding="utf-8")
    (root / "bad-yaml.yaml").write_text("train: [unclosed\n", encoding="utf-8")
    (root / "list.yaml").write_text("- a\n- b\n", encoding="utf-8")
    (root / "no-split.csv").write_text("track_id,path,artist,label\nt1,good.wav,a,rock\n", encoding="utf-8")
    (root / "no-split.json").write_text('{"label_names": ["rock", "jazz"]}', encoding="utf-8")
    (root / "bad-sidecar.csv").write_text("track_id,path,artist,label,split\nt1,good.wav,a,rock,train\n", encoding="utf-8")
    (root / "bad-sidecar.json").write_text("{not json", encoding="utf-8")
    (root / "not-a-ws").mkdir()
    (root / "bad-settings").mkdir()
    (root / "bad-settings" / "encore.yaml").write_text("store: nowhere\n", encoding="utf-8")
    return root


def cases(root: Path) -> dict[str, Case]:
    ws = str(root / "ws")
    good, corrupt = str(root / "good.wav"), str(root / "corrupt.mp3")
    return {
        "not a workspace": Case(["labels", "-w", str(root / "not-a-ws")], ["not an encore workspace", "encore init -w"]),
        "missing workspace": Case(["train", "-w", str(root / "nowhere")], ["not an encore workspace"]),
        "workspace without store_url": Case(["labels", "-w", str(root / "bad-settings")], ["encore.yaml", "store_url"]),
        "unknown run (evaluate)": Case(["evaluate", "nope", "-w", ws], ["'nope'", "known runs"]),
        "unknown run (predict)": Case(["predict", "nope", good, "-w", ws], ["'nope'"]),
        "unknown run (explain)": Case(["explain", "nope", good, "-w", ws], ["'nope'"]),
        "unknown run (export)": Case(["export", "nope", "-w", ws], ["'nope'"]),
        "a classical run (export)": Case(["export", "forest", "-w", ws], ["is a classical run", "encore serve forest"]),
        "unknown run (suggest)": Case(["suggest", "nope", "-w", ws], ["'nope'"]),
        "gradients of a classical run (explain)": Case(
            ["explain", "forest", good, "-w", ws, "--method", "integrated_gradients"],
            ["is a classical run", "--method audio_occlusion"],
        ),
        "no run (explain)": Case(["explain", "empty", good, "-w", ws], ["is no run", "checkpoint.pt"]),
        "corrupt checkpoint": Case(["predict", "broken", good, "-w", ws], ["checkpoint.pt"]),
        "corrupt song (explain)": Case(["explain", "tiny", corrupt, "-w", ws, "--out", str(root / "x")], ["corrupt.mp3"]),
        "empty song (explain)": Case(
            ["explain", "tiny", str(root / "empty.wav"), "-w", ws, "--out", str(root / "x")], ["empty.wav"]
        ),
        "missing song (explain)": Case(["explain", "tiny", str(root / "gone.wav"), "-w", ws], ["gone.wav"]),
        "missing song (predict)": Case(["predict", "tiny", str(root / "gone.wav"), "-w", ws], ["gone.wav"]),
        "unknown target": Case(["explain", "tiny", good, "-w", ws, "--target", "polka"], ["--target", "polka"]),
        "unknown method": Case(["explain", "tiny", good, "-w", ws, "--method", "saliency"], ["--method", "saliency"]),
        "zero segments": Case(["explain", "tiny", good, "-w", ws, "--segments", "0"], ["--segments"], usage=True),
        "bad --set key": Case(["labels", "-w", ws, "--set", "train.epochz=3"], ["train.epochz"]),
        "bad --set section": Case(["train", "-w", ws, "--set", "trian.epochs=3"], ["trian"]),
        "bad --set form": Case(["labels", "-w", ws, "--set", "epochs"], ["--set", "section.key=value"]),
        "bad --set value": Case(["labels", "-w", ws, "--set", "train.epochs=many"], ["train.epochs (from --set)", "many"]),
        "one class": Case(["labels", "-w", ws, "--set", "labels.classes=[a]"], ["labels.classes='[rock, jazz]'"]),
        "f_min above f_max": Case(["labels", "-w", ws, "--set", "features.f_min=9000"], ["features.f_min", "9000"]),
        "bad config key": Case(["labels", "-w", ws, "-c", str(root / "bad-key.yaml")], ["train.epochz (line 2)", "bad-key.yaml"]),
        "bad config value": Case(
            ["labels", "-w", ws, "-c", str(root / "bad-type.yaml")], ["train.epochs (line 2)", "bad-type.yaml", "many"]
        ),
        "bad config yaml": Case(["labels", "-w", ws, "-c", str(root / "bad-yaml.yaml")], ["bad-yaml.yaml", "line"]),
        "config not a mapping": Case(["labels", "-w", ws, "-c", str(root / "list.yaml")], ["list.yaml"]),
        "missing config": Case(["labels", "-w", ws, "-c", str(root / "gone.yaml")], ["gone.yaml"]),
        "no manifest yet": Case(["train", "-w", ws], ["encore labels"]),
        "manifest without split": Case(
            ["train", "-w", ws, "--manifest", str(root / "no-split.csv")], ["no-split.csv", "split", "encore labels"]
        ),
        "damaged manifest sidecar": Case(
            ["train", "-w", ws, "--manifest", str(root / "bad-sidecar.csv")], ["bad-sidecar.json", "encore labels"]
        ),
        "bad split": Case(["evaluate", "tiny", "-w", ws, "--split", "train"], ["--split"]),
        "bad n-boot": Case(["evaluate", "tiny", "-w", ws, "--n-boot", "0"], ["--n-boot"], usage=True),
        "compare one run": Case(["compare", "tiny", "-w", ws], ["two runs", "encore evaluate"]),
        "bad shard": Case(["predict", "tiny", good, "-w", ws, "--shard", "5/4"], ["--shard", "5/4"]),
        "bad shard form": Case(["predict", "tiny", good, "-w", ws, "--shard", "half"], ["--shard"]),
        "bad backend": Case(["predict", "tiny", good, "-w", ws, "--backend", "tf"], ["--backend", "tf"]),
        "bad export format": Case(["export", "tiny", "-w", ws, "--format", "tflite"], ["--format"]),
        "bad extract kind": Case(["extract", good, "-w", ws, "--kind", "chroma"], ["--kind", "chroma"]),
        "bad extract shard": Case(["extract", good, "-w", ws, "--shard", "x"], ["--shard"]),
        "zero workers": Case(["extract", good, "-w", ws, "--workers", "0"], ["--workers"], usage=True),
        "empty catalogue (extract)": Case(["extract", "-w", ws], ["encore import"]),
        "bad model": Case(["train", "-w", ws, "--model", "lstm"], ["--model", "lstm"]),
        "zero trials": Case(["tune", "-w", ws, "--trials", "0"], ["--trials"], usage=True),
        "bad suggest ranking": Case(["suggest", "tiny", "-w", ws, "--by", "luck"], ["--by", "luck"]),
        "zero suggest limit": Case(["suggest", "tiny", "-w", ws, "--limit", "0"], ["--limit"], usage=True),
        "no manifest (suggest)": Case(["suggest", "tiny", "-w", ws], ["encore labels"]),
        "bad layout": Case(["import", good, "-w", ws, "--layout", "itunes"], ["--layout", "itunes"]),
        "missing songs file": Case(["import", str(root / "gone.csv"), "-w", ws], ["gone.csv"]),
        "songs csv without path": Case(
            ["import", str(root / "no-path.csv"), "-w", ws], ["path", "no-path.csv", "--map path=", "--path-format"]
        ),
        "path format naming no column": Case(
            ["import", str(root / "no-path.csv"), "-w", ws, "--path-format", "{genre}/{file}.mp3"],
            ["--path-format", "'genre'", "columns found"],
        ),
        "bad path format": Case(["import", str(root / "no-path.csv"), "-w", ws, "--path-format", "{oops"], ["--path-format"]),
        "songs --map onto nothing": Case(["import", str(root / "no-path.csv"), "-w", ws, "--map", "genre=x"], ["--map", "label"]),
        "songs --map for a folder": Case(["import", str(root), "-w", ws, "--map", "label=x"], ["--map", "track list"]),
        "bad feedback format": Case(["feedback", "import", good, "-w", ws, "--format", "xml"], ["--format", "xml"]),
        "bad --map": Case(["feedback", "import", good, "-w", ws, "--map", "track_id"], ["--map"]),
        "missing feedback file": Case(["feedback", "import", str(root / "gone.csv"), "-w", ws], ["gone.csv"]),
        "events without kind": Case(["feedback", "import", str(root / "events-no-kind.csv"), "-w", ws], ["kind", "--map"]),
        "unknown track summary": Case(["store", "summary", "t404", "-w", ws], ["t404"]),
        "zero min-listeners": Case(["labels", "show", "-w", ws, "--min-listeners", "0"], ["--min-listeners"], usage=True),
        "resume a run that is not there": Case(["train", "-w", ws, "--resume", str(root / "nope")], ["nope", "known runs"]),
        "no audio in a folder": Case(["predict", "tiny", str(root / "not-a-ws"), "-w", ws], ["no audio files", "not-a-ws"]),
        "init two workspaces": Case(["init", str(root / "a"), "-w", str(root / "b")], ["-w"]),
    }


CASE_NAMES = list(cases(Path("/x")))


@pytest.mark.parametrize("name", CASE_NAMES)
def test_an_error_is_one_line_in_the_clis_words(ws, name):
    case = cases(ws)[name]
    result = runner.invoke(app, case.args)
    output = result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{name}: {type(result.exception).__name__}: {result.exception}\n{output}"
    )
    assert result.exit_code == (2 if case.usage else 1), f"{name}: exit {result.exit_code}\n{output}"
    leaks = python_leaks(output)
    assert not leaks, f"{name}: {leaks}\n{output}"
    for word in case.says:
        assert word in output, f"{name}: the message should name {word!r}\n{output}"
    if not case.usage:
        errors = [line for line in output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, f"{name}: expected one error line\n{output}"


def test_a_corrupt_song_in_a_batch_is_one_line_and_the_batch_goes_on(ws):
    result = runner.invoke(
        app, ["predict", "tiny", str(ws / "good.wav"), str(ws / "corrupt.mp3"), str(ws / "empty.wav"), "-w", str(ws / "ws")]
    )
    assert result.exit_code == 0, result.output
    assert '"path": ' in result.stdout and str(ws / "good.wav") in result.stdout  # the good song was predicted
    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped")]
    assert len(skipped) == 2, result.stderr  # each bad file once, not again as a log warning
    assert skipped[0].count("corrupt.mp3") == 1 and "really is audio" in skipped[0]
    assert "does not exist" not in skipped[0]  # libsndfile's word for frames it cannot parse
    assert skipped[1].count("empty.wav") == 1 and "empty" in skipped[1]
    assert "2 of 3 files could not be decoded" in result.stderr
    assert not python_leaks(result.stderr), python_leaks(result.stderr)
    assert "Errno" not in result.stderr


def test_a_database_that_fails_under_a_command_is_one_line_naming_the_store(tmp_path):
    """The store's tracks table gone under the importer (as a dropped connection would do
    mid-import): one error line naming the store, no SQL, no library link, no traceback."""
    import sqlite3

    ws = tmp_path / "ws"
    assert runner.invoke(app, ["init", "-w", str(ws)]).exit_code == 0
    events = tmp_path / "events.csv"
    events.write_text("track_id,listener_id,kind,value,timestamp\nt1,u1,rating,4,2026-01-01T00:00:00Z\n", encoding="utf-8")
    with sqlite3.connect(ws / "encore.sqlite") as conn:
        conn.execute("ALTER TABLE tracks RENAME TO tracks_gone")
    result = runner.invoke(app, ["feedback", "import", str(events), "-w", str(ws)])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "from the store at" in errors[0] and "encore.sqlite" in errors[0], result.output
    assert "tracks" in errors[0] and "try again" in result.output
    assert "SELECT" not in result.output and "sqlalche.me" not in result.output
    assert not python_leaks(result.output), python_leaks(result.output)
