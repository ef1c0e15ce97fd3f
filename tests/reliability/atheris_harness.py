"""An atheris (libFuzzer) harness: ``python atheris_harness.py csv|audio -runs=2000``.

``csv`` feeds the bytes to :func:`encore.feedback.importers.import_feedback` as a CSV file;
``audio`` to :func:`encore.audio.load_audio`. Only encore's own errors are expected; any
other exception, a native crash or a hang (``-timeout``) makes libFuzzer stop with a
non-zero status and leave the input as ``crash-*`` / ``timeout-*`` under
``-artifact_prefix``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["encore"]):
    from encore.audio import load_audio
    from encore.exceptions import EncoreError
    from encore.feedback.importers import import_feedback
    from encore.store import Store

import pandas as pd

SEED_CSV = (
    b"track_id,listener_id,kind,value,timestamp\nt1,u1,rating,4,2024-01-01T00:00:00Z\n"
    b"t1,u2,tag,Hip-Hop,1700000000\nt1,,play,31000,2024-01-02\n"
)


def main() -> None:
    target = sys.argv.pop(1)
    folder = Path(tempfile.mkdtemp(prefix="encore-atheris-"))
    store = Store.open(folder / "fuzz.sqlite")
    store.add_tracks(pd.DataFrame({"track_id": ["t1"]}))
    path = folder / "events.csv"

    def fuzz_csv(data: bytes) -> None:
        path.write_bytes(data)
        try:
            report = import_feedback(store, path)
        except EncoreError:
            return
        except BaseException as error:
            report_unexpected(error, data)
            raise
        if report.read != report.stored + report.duplicate + report.quarantined:
            raise AssertionError(f"counts do not add up: {report}")

    def fuzz_audio(data: bytes) -> None:
        try:
            load_audio(data, sample_rate=8000)
        except EncoreError:
            return
        except BaseException as error:
            report_unexpected(error, data)
            raise

    corpus = folder / "corpus"
    corpus.mkdir()
    (corpus / "seed").write_bytes(SEED_CSV if target == "csv" else _wav_seed())
    atheris.Setup([sys.argv[0], *sys.argv[1:], str(corpus)], fuzz_csv if target == "csv" else fuzz_audio)
    atheris.Fuzz()


def report_unexpected(error: BaseException, data: bytes) -> None:
    """One line naming the escaped exception and the input, before libFuzzer stops."""
    print(f"UNEXPECTED {type(error).__module__}.{type(error).__name__}: {error} on input {data!r}", file=sys.stderr, flush=True)


def _wav_seed() -> bytes:
    import io

    import numpy as np
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, (0.3 * np.sin(np.arange(800) / 5)).astype(np.float32), 8000, format="WAV")
    return buffer.getvalue()


if __name__ == "__main__":
    main()
