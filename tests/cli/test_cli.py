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


def test_init_creates_a_workspace_and_reopening_is_harmless(tmp_path):
    for _ in range(2):
        result = runner.invoke(app, ["init", str(tmp_path / "ws")])
        assert result.exit_code == 0, result.output
    assert (tmp_path / "ws" / "encore.yaml").is_file()
    assert (tmp_path / "ws" / "encore.sqlite").is_file()
    assert (tmp_path / "ws" / "runs").is_dir() and (tmp_path / "ws" / "cache").is_dir()


def test_not_a_workspace_is_one_clear_line_and_exit_1(tmp_path):
    result = runner.invoke(app, ["labels", "--workspace", str(tmp_path)])
    assert result.exit_code == 1
    assert "not an encore workspace" in result.output and "encore init" in result.output
    assert "Traceback" not in result.output


def test_bad_config_override_is_reported(tmp_path):
    runner.invoke(app, ["init", str(tmp_path)])
    result = runner.invoke(app, ["labels", "-w", str(tmp_path), "--set", "train.epochz=3"])
    assert result.exit_code == 1
    assert "train.epochz" in result.output
