"""Catalogue prediction with decoding in worker processes: same answers, per-file errors, input order."""

from __future__ import annotations

import numpy as np
import soundfile as sf
from inference_helpers import SAMPLE_RATE, song

from encore.inference import Predictor
from encore.inference.batch import predict_files


def test_workers_give_the_same_rows_in_input_order_and_report_a_bad_file_on_its_own(tiny_run, song_files, tmp_path):
    long_song = tmp_path / "long.wav"
    sf.write(long_song, song(200.0, seed=9), SAMPLE_RATE)  # decoded in several windows
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"ID3 this is not audio" * 10)
    files = [song_files[0], broken, long_song, *song_files[1:]]
    predictor = Predictor.from_checkpoint(tiny_run, device="cpu")
    serial = list(predict_files(predictor, files))
    ticks = []
    parallel = list(predict_files(predictor, files, workers=2, progress=ticks.append))
    assert [r.path for r in parallel] == files and len(ticks) == len(files)
    assert parallel[1].error is not None and "broken.mp3" in parallel[1].error and parallel[1].row is None
    for a, b in zip(serial, parallel):
        assert (a.error is None) == (b.error is None)
        if a.error is None:
            assert a.row["duration"] == b.row["duration"]
            for key in a.arrays:
                np.testing.assert_allclose(b.arrays[key], a.arrays[key], atol=1e-5, err_msg=f"{a.path}: {key}")
