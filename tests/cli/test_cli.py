import pytest
from typer.testing import CliRunner

from encore.cli.main import app

runner = CliRunner()
COMMANDS = [["init"], ["import"], ["feedback", "import"], ["labels"], ["train"], ["evaluate"], ["predict"], ["demo"]]


def test_top_level_help_names_the_journey():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("init", "import", "feedback", "labels", "train", "evaluate", "predict", "demo"):
        assert name in result.output


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_every_command_explains_itself(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output and len(result.output.splitlines()) > 5


def _is_workspace(folder):
    return (folder / "encore.yaml").is_file() and (folder / "encore.sqlite").is_file() and (folder / "runs").is_dir()


def test_init_creates_a_workspace_and_reopening_is_harmless(tmp_path):
    for _ in range(2):
        result = runner.invoke(app, ["init", "-w", str(tmp_path / "ws")])
        assert result.exit_code == 0, result.output
    assert _is_workspace(tmp_path / "ws") and (tmp_path / "ws" / "cache").is_dir()
    assert "deprecated" not in result.output


def test_init_alone_makes_the_current_folder_a_workspace(tmp_path, monkeypatch):
    monkeypatch.delenv("ENCORE_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    assert _is_workspace(tmp_path)
    assert runner.invoke(app, ["labels", "show"]).exit_code == 0  # and every command then finds it


def test_init_alone_follows_encore_workspace(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ENCORE_WORKSPACE", str(tmp_path / "from-env"))
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    assert _is_workspace(tmp_path / "from-env") and not (tmp_path / "encore.yaml").exists()
    assert runner.invoke(app, ["store", "current"]).exit_code == 0


def test_the_old_positional_init_still_works_with_a_note_on_stderr(tmp_path):
    result = runner.invoke(app, ["init", str(tmp_path / "old")])
    assert result.exit_code == 0, result.output
    assert _is_workspace(tmp_path / "old")
    assert "deprecated" in result.stderr and "encore init -w" in result.stderr
    assert "deprecated" not in result.stdout


def test_init_refuses_two_different_workspaces(tmp_path):
    result = runner.invoke(app, ["init", str(tmp_path / "a"), "-w", str(tmp_path / "b")])
    assert result.exit_code == 1
    assert "-w" in result.output and not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_every_command_takes_the_workspace_option():
    import typer.main

    def leaves(command, prefix):
        subs = getattr(command, "commands", None)
        if not subs:
            yield prefix, command
        for name, sub in (subs or {}).items():
            yield from leaves(sub, [*prefix, name])

    for path, command in leaves(typer.main.get_command(app), []):
        if path[:1] == ["pretrained"]:
            continue  # published models live in the user's models folder (--out), used by every workspace
        options = {opt for param in command.params for opt in getattr(param, "opts", [])}
        assert {"-w", "--workspace"} <= options, f"encore {' '.join(path)} lacks -w/--workspace"


def test_not_a_workspace_is_one_clear_line_and_exit_1(tmp_path):
    result = runner.invoke(app, ["labels", "--workspace", str(tmp_path)])
    assert result.exit_code == 1
    assert "not an encore workspace" in result.output and "encore init" in result.output
    assert "Traceback" not in result.output


def test_bad_config_override_is_reported(tmp_path):
    runner.invoke(app, ["init", "-w", str(tmp_path)])
    result = runner.invoke(app, ["labels", "-w", str(tmp_path), "--set", "train.epochz=3"])
    assert result.exit_code == 1
    assert "train.epochz" in result.output


def test_a_log_warning_is_one_unwrapped_line(capsys):
    import logging

    from encore.cli.common import setup_logging

    setup_logging(0)
    try:
        message = "song.mp3: " + "a long explanation of what went wrong " * 5 + "[kept, with its brackets]"
        logging.getLogger("encore.test").warning(message)
        logging.getLogger("encore.test").info("not shown without -v")
    finally:
        logging.basicConfig(force=True, handlers=[logging.NullHandler()])
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"warning: {message}"]


def test_demo_takes_the_workspace_option_and_hides_the_old_one():
    result = runner.invoke(app, ["demo", "--help"], env={"COLUMNS": "200"})
    assert "--workspace" in result.output and "-w" in result.output
    assert "--out" not in result.output


def test_train_offers_every_row_of_the_trainer_table():
    from encore.cli.train import MODEL_KINDS
    from encore.train.runs import TRAINERS

    assert MODEL_KINDS == tuple(TRAINERS)
    for command in ("train", "cv"):  # each command's --model help names every kind
        text = " ".join(runner.invoke(app, [command, "--help"], env={"COLUMNS": "400"}).output.split())
        assert all(kind in text for kind in TRAINERS), (command, text)


def test_help_paragraphs_flow_to_the_terminal_width():
    from encore.cli.main import flowed

    text = "First line\n    goes on.\n\n    A paragraph\n    over lines.\n\n    \b\n    kept\n    as is"
    assert flowed(text) == "First line goes on.\n\nA paragraph over lines.\n\n\b\nkept\nas is"
    result = runner.invoke(app, ["predict", "--help"], env={"COLUMNS": "200"})
    assert "a catalogue file keeps its track_id, another file gets its file name stem." in result.output


def test_flags_have_no_negative_twin_to_widen_the_help():
    for command in (["train"], ["evaluate"], ["cv"]):
        result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0 and "--no-" not in result.output, command


def test_a_comparison_row_stays_on_one_line_in_a_log(monkeypatch):
    import io

    from rich.console import Console

    from encore.cli.common import LOG_WIDTH, _width
    from encore.cli.evaluate import comparisons_table

    monkeypatch.delenv("COLUMNS", raising=False)
    assert _width(io.StringIO()) == LOG_WIDTH  # a file or a pipe
    monkeypatch.setenv("COLUMNS", "100")
    assert _width(io.StringIO()) is None  # rich reads COLUMNS itself

    row = {
        "a": "forest",
        "b": "probe",
        "metric": "tags' mean Spearman",
        "n": 48,
        "value_a": 0.708,
        "value_b": 0.667,
        "difference": 0.042,
        "ci_low": -0.084,
        "ci_high": 0.188,
        "excludes_zero": False,
    }
    console = Console(width=LOG_WIDTH, record=True, file=io.StringIO())
    console.print(comparisons_table([row]))
    lines = [line for line in console.export_text().splitlines() if "forest - probe" in line]
    assert len(lines) == 1 and "+0.042 [-0.084, +0.188]" in lines[0] and "0.708" in lines[0]


def test_labels_show_names_spellings_one_letter_from_a_more_used_label(tmp_path):
    import pandas as pd

    from encore.workspace import Workspace

    ws = Workspace.init(tmp_path / "ws")
    rows = [("s1", "u1", "Classical"), ("s1", "u2", "classical music"), ("s2", "u3", "classical"), ("s2", "u4", "clasical")]
    with ws.open_store() as store:
        store.add_tracks(pd.DataFrame({"track_id": ["s1", "s2"]}))
        store.add_events(
            pd.DataFrame(rows, columns=["track_id", "listener_id", "value_text"]).assign(
                kind="tag", timestamp=pd.Timestamp("2026-01-01", tz="UTC")
            )
        )
    result = runner.invoke(app, ["labels", "show", "-w", str(ws.root)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "classical music (1)" in result.output  # "X music" is X where X is used
    assert "one letter from" in result.output and "--set 'labels.synonyms={clasical: classical}'" in result.output
