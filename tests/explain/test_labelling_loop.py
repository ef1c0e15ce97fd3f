"""The labelling loop through the CLI: suggest, fill in, feedback import, labels, retrain, compare."""

from __future__ import annotations

import json
import os
import shutil

import pandas as pd
import pytest
from labelling_ws import UNLABELLED_EVERY, write_catalogue
from typer.testing import CliRunner

from encore.cli.main import app
from encore.data.manifest import Manifest

runner = CliRunner()


def invoke(*args: str) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def trained_ws(tmp_path_factory):
    """A workspace with songs, feedback, a manifest and a CNN ('before') and a forest run."""
    root = tmp_path_factory.mktemp("loop")
    truth = write_catalogue(root)
    ws, cfg = root / "ws", root / "config.yaml"
    invoke("init", "-w", ws)
    invoke("import", root / "songs.csv", "-w", ws)
    invoke("feedback", "import", root / "events.csv", "-w", ws)
    invoke("labels", "-w", ws, "-c", cfg)
    invoke("train", "-w", ws, "-c", cfg, "--model", "cnn", "--name", "before")
    invoke("train", "-w", ws, "-c", cfg, "--model", "random_forest", "--name", "rf")
    return root, ws, cfg, truth


@pytest.mark.slow
def test_suggest_import_retrain_compare(trained_ws):
    root, ws, cfg, truth = trained_ws
    before = Manifest.read(ws / "manifests" / "default.csv")
    unlabelled = set(before.frame.loc[before.frame["label"].isna(), "track_id"])
    assert len(unlabelled) == len(truth) // UNLABELLED_EVERY

    queue_path = root / "queue.csv"
    output = invoke("suggest", "before", "-w", ws, "--out", queue_path, "--labeller", "alice")
    assert "--map value=label" in output and "--set labels.min_votes=1" in output and "encore compare before NEW" in output
    queue = pd.read_csv(queue_path, dtype=str, keep_default_na=False)
    assert set(queue["track_id"]) == unlabelled
    assert (queue["label"] == "").all() and (queue["listener_id"] == "alice").all() and (queue["kind"] == "tag").all()
    entropy = queue["entropy"].astype(float).to_numpy()
    assert (entropy[:-1] >= entropy[1:]).all(), "most uncertain first"

    queue["label"] = [truth[t] for t in queue["track_id"]]
    queue.loc[0, "label"] = ""  # one row the person skipped: reported, nothing stored
    queue.to_csv(queue_path, index=False)
    output = invoke("feedback", "import", queue_path, "-w", ws, "--map", "value=label")
    assert "quarantined 1" in output or "1 quarantined" in output, output

    invoke("labels", "-w", ws, "-c", cfg, "--set", "labels.min_votes=1")
    after = Manifest.read(ws / "manifests" / "default.csv")
    newly = after.frame[after.frame["track_id"].isin(unlabelled)].set_index("track_id")["label"]
    assert newly.notna().sum() == len(unlabelled) - 1
    assert all(newly[t] == truth[t] for t in newly.index if newly[t] is not None)

    invoke("train", "-w", ws, "-c", cfg, "--model", "cnn", "--name", "after")
    output = invoke("compare", "before", "after", "-w", ws, "--n-boot", "200", "--out", root / "cmp")
    assert "paired differences" in output
    report = json.loads((root / "cmp" / "report.json").read_text())
    metrics = {c["metric"] for c in report["comparisons"]}
    assert {"accuracy", "macro-f1", "appeal spearman"} <= metrics
    assert all(c["a"] == "before" and c["b"] == "after" and c["same_classes"] for c in report["comparisons"])


def test_explain_cli_writes_png_and_segments(trained_ws, tmp_path):
    root, ws, _, truth = trained_ws
    song = root / "songs" / f"{next(iter(truth))}.wav"
    output = invoke("explain", "before", song, "-w", ws, "--out", tmp_path, "--segments", "4", "--bands", "4")
    assert f"wrote {tmp_path / 'explanation.json'}" in output
    data = json.loads((tmp_path / "explanation.json").read_text())
    kinds = {e["kind"] for e in data["explanations"]}
    assert kinds == {"class", "score"}  # the top class and the appeal score
    for e in data["explanations"]:
        assert (tmp_path / e["png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"wrote {e['png']}" in output  # every PNG is named, with a summary of its top segments
        assert f"{e['kind']} '{e['target']}' = " in output and "1. " in output
        shares = [s["share"] for s in e["segments"]]
        assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1.0001
        assert all(0 <= s["start_s"] < s["end_s"] <= 2.0 and s["f_low_hz"] < s["f_high_hz"] for s in e["segments"])


def test_explain_a_forest_run_by_silencing_cells_of_its_audio(trained_ws, tmp_path):
    root, ws, _, truth = trained_ws
    song = root / "songs" / f"{next(iter(truth))}.wav"
    output = invoke("explain", "rf", song, "-w", ws, "--out", tmp_path, "--segments", "4", "--bands", "2")
    data = json.loads((tmp_path / "explanation.json").read_text())
    assert {e["kind"] for e in data["explanations"]} == {"class", "score"}
    for e in data["explanations"]:
        assert e["method"] == "audio_occlusion" and e["evidence"] in {"probability", "score"}
        assert (tmp_path / e["png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"{e['kind']} '{e['target']}' = " in output and "(audio occlusion)" in output
    result = runner.invoke(app, ["explain", "rf", str(song), "-w", str(ws), "--method", "integrated_gradients"])
    assert result.exit_code == 1 and "is a classical run" in result.output and "--method audio_occlusion" in result.output
    result = runner.invoke(app, ["explain", "rf", str(song), "-w", str(ws), "--method", "saliency"])
    assert result.exit_code == 1 and "--method 'saliency' is unknown" in result.output
    assert "Traceback" not in result.output


def _chromium() -> str:
    path = os.environ.get("ENCORE_CHROMIUM") or shutil.which("chromium")
    if not path:
        if os.environ.get("ENCORE_REQUIRE_BROWSER") == "1":
            pytest.fail("ENCORE_REQUIRE_BROWSER=1 but no chromium found; install Debian's chromium or set ENCORE_CHROMIUM")
        pytest.skip("no chromium found (set ENCORE_CHROMIUM)")
    return path


def _expected_figures(result: dict) -> int:
    """Figures a result should give: confusion, per-class bars and reliability diagram for a
    classifier; learning curves; appeal scatter; one bar chart per importance."""
    n = 3 if result["classification"] else 0
    n += bool(result["history"]) + bool(result["predictions"].get("appeal_true"))
    return n + sum(bool(result.get(k)) for k in ("feature_importance", "permutation_importance", "mel_band_importance"))


@pytest.mark.slow
def test_evaluate_report_renders_in_chromium(trained_ws, tmp_path):
    root, ws, _, _ = trained_ws
    sidecar = ws / "manifests" / "default.json"
    meta = json.loads(sidecar.read_text())
    meta["info"]["reliability"] = {"appeal": {"reliability": 0.64, "ceiling": 0.8}}
    sidecar.write_text(json.dumps(meta))
    output = invoke("evaluate", "before", "rf", "-w", ws, "--out", tmp_path, "--n-boot", "200", "--importance")
    assert "report" in output
    report = json.loads((tmp_path / "report.json").read_text())
    cnn, rf = report["results"]
    assert cnn["appeal"]["reliability"] == {"reliability": 0.64, "ceiling": 0.8}
    assert cnn["calibration"]["ece_before"] is not None and cnn["calibration"]["temperature"] > 0
    assert [r["band"] for r in cnn["mel_band_importance"]] and rf["feature_importance"][0]["feature"]
    assert not rf.get("permutation_importance")  # the forest trained on the validation songs (issue 23)
    html_text = (tmp_path / "report.html").read_text()
    assert "ceiling on correlation" in html_text and "0.800" in html_text
    expected = sum(_expected_figures(r) for r in report["results"])
    assert expected >= 11  # no permutation importance for a forest that trained on the validation songs

    from playwright.sync_api import sync_playwright

    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
            page.goto((tmp_path / "report.html").as_uri(), wait_until="load")
            images = page.eval_on_selector_all(
                "figure img", "els => els.map(e => ({complete: e.complete, w: e.naturalWidth, h: e.naturalHeight, alt: e.alt}))"
            )
            n_img = page.eval_on_selector_all("img", "els => els.length")
        finally:
            browser.close()
    assert len(images) == n_img == expected
    for image in images:
        assert image["complete"] and image["w"] > 100 and image["h"] > 100, image["alt"]
    assert not outside, f"the report fetched {outside}"
