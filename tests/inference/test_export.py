"""ONNX export: the whole model with its card, checked against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from inference_helpers import song
from typer.testing import CliRunner

from encore.cli.main import app
from encore.exceptions import CheckpointError
from encore.inference import Predictor

pytest.importorskip("onnxruntime")
runner = CliRunner()


def test_export_cli_writes_an_onnx_model_that_matches_pytorch(tiny_run):
    result = runner.invoke(app, ["export", str(tiny_run), "--format", "onnx"])
    assert result.exit_code == 0, result.output
    onnx_path = tiny_run / "model.onnx"
    assert onnx_path.is_file()

    exported = Predictor.from_onnx(onnx_path, batch_size=5)  # needs nothing but the file
    reference = Predictor.from_checkpoint(tiny_run, backend="eager")
    assert exported.backend == "onnx" and exported.model is None
    assert exported.label_names == reference.label_names and exported.chunk_samples == reference.chunk_samples
    waveforms = [song(seconds, seed=i) for i, seconds in enumerate((1.0, 3.3, 7.9))]  # batches of 1, 3 and 5 chunks
    onnx_arrays, torch_arrays = exported.predict_arrays(waveforms), reference.predict_arrays(waveforms)
    for key in ("class_probs", "tag_probs"):
        np.testing.assert_allclose(onnx_arrays[key], torch_arrays[key], atol=1e-4, rtol=0)
    np.testing.assert_allclose(onnx_arrays["scores"], torch_arrays["scores"], atol=1e-4, rtol=0)
    # a predictor from the run with backend onnx uses the exported file
    assert Predictor.from_checkpoint(tiny_run, backend="onnx").backend == "onnx"


def test_export_refuses_unknown_format_and_non_onnx_files(tiny_run, tmp_path):
    result = runner.invoke(app, ["export", str(tiny_run), "--format", "tflite"])
    assert result.exit_code == 1 and "tflite" in result.output
    (tmp_path / "fake.onnx").write_bytes(b"not onnx at all")
    with pytest.raises(CheckpointError, match="fake.onnx"):
        Predictor.from_onnx(tmp_path / "fake.onnx")
