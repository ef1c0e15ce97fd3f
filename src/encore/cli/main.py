"""The ``encore`` command line: one Typer command per file, thin wrappers over the library."""

from __future__ import annotations

import inspect
from typing import Annotated

import typer

from encore import __version__
from encore.cli import (
    demo,
    evaluate,
    explain,
    export,
    extract,
    feedback,
    import_songs,
    init,
    labels,
    predict,
    pretrained,
    serve,
    store,
    suggest,
    train,
    tune,
)
from encore.cli.common import setup_logging
from encore.cli.cv import cv_command

app = typer.Typer(
    name="encore",
    help="Classify and score songs from their audio, trained on listener feedback.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"encore {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output (-v info, -vv debug).")] = 0,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    """encore: from songs and listener feedback to models that classify and score new songs.

    The journey: init -> import (songs) -> feedback import -> labels -> train -> evaluate -> predict.
    `encore demo` runs all of it on a generated catalogue.
    """
    setup_logging(verbose)


app.command("init")(init.init_command)
app.command("import")(import_songs.import_command)
app.add_typer(feedback.app, name="feedback")
app.add_typer(store.app, name="store")
app.add_typer(labels.app, name="labels")
app.command("extract")(extract.extract_command)
app.command("train")(train.train_command)
app.command("tune")(tune.tune_command)
app.command("evaluate")(evaluate.evaluate_command)
app.command("compare")(evaluate.compare_command)  # the name users know for evaluate's paired differences
app.command("explain")(explain.explain_command)
app.command("suggest")(suggest.suggest_command)
app.command("predict")(predict.predict_command)
app.command("export")(export.export_command)
app.command("serve")(serve.serve_command)
app.command("demo")(demo.demo_command)
app.command("cv")(cv_command)
app.add_typer(pretrained.app, name="pretrained")


def flowed(text: str) -> str:
    """A docstring as help: each paragraph one line, so the terminal, not the source file, decides where lines end.

    Typer keeps the source's line breaks after the first paragraph, which at 80 columns leaves
    every other line a word long. A paragraph that starts with ``\\b`` keeps its lines.
    """
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else " ".join(p.split()) for p in paragraphs)


def flow_help(group: typer.Typer) -> None:
    """Give every command of ``group`` and of its sub-groups its docstring, flowed, as help."""
    for info in group.registered_commands:
        text = info.help or inspect.getdoc(info.callback)
        if text:
            info.help = flowed(text)
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            flow_help(sub.typer_instance)


flow_help(app)

if __name__ == "__main__":  # pragma: no cover
    app()
