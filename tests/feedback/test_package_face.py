"""encore.feedback stays the face of the store and the targets, and none of the three imports torch."""

import subprocess
import sys

import encore.feedback
import encore.store
import encore.targets


def test_feedback_re_exports_the_store_and_the_targets():
    assert encore.feedback.Store is encore.store.Store
    for name in ("build_tag_targets", "compute_appeal", "derive_single_labels", "split_by_artist", "split_half_reliability"):
        assert getattr(encore.feedback, name) is getattr(encore.targets, name)
    assert set(encore.feedback.__all__) <= set(dir(encore.feedback))


def test_feedback_store_and_targets_import_without_torch():
    code = "import sys, encore.feedback, encore.store, encore.targets; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
