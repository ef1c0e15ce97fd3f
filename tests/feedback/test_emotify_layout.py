import numpy as np
import pytest
import soundfile as sf

from encore.exceptions import FeedbackDataError, ParameterError
from encore.feedback.importers import import_feedback_frame, import_tracks, read_emotify_annotations, read_emotify_tracks
from encore.store import Store

HEADER = (
    "track id, genre, amazement, solemnity, tenderness, nostalgia, calmness, power, joyful_activation, "
    "tension, sadness, mood, liked, disliked, age, gender, mother tongue"
)


@pytest.fixture
def emotify_root(tmp_path):
    tone = (0.1 * np.sin(np.linspace(0, 400, 8000))).astype("float32")
    for genre, n in (("classical", 1), ("rock", 1), ("rock", 2), ("pop", 3)):
        folder = tmp_path / "audio" / genre
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"{n}.mp3", tone, 8000)
    rows = [
        "1,classical,0,1,1,0,1,0,0,0,0,3,1,0,30,1,English",
        "101,rock,0,0,0,0,0,1,1,0,0,4,0,1,25,0,Dutch",
        "303,pop,1,0,0,0,0,0,1,0,0,2,1,0,40,1,English",
        "102,rock,0,0,0,0,0,1,0,1,0,4,0,0,33,1,Russian",
    ]
    (tmp_path / "annotations.csv").write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    return tmp_path


def test_emotify_ids_link_audio_and_annotations(emotify_root, tmp_path):
    tracks = read_emotify_tracks(emotify_root)
    assert sorted(tracks["track_id"]) == ["1", "101", "102", "303"]
    assert dict(zip(tracks["track_id"], tracks["label"])) == {"1": "classical", "101": "rock", "102": "rock", "303": "pop"}
    with Store.open(tmp_path / "s.sqlite") as store:
        report = import_tracks(store, emotify_root, layout="emotify")
        assert (report.stored, report.quarantined) == (4, 0)
        assert set(store.catalogue_labels("genre")["label"]) == {"classical", "rock", "pop"}
        events = import_feedback_frame(store, read_emotify_annotations(emotify_root / "annotations.csv"), name="annotations.csv")
        assert events.quarantined == 0 and events.stored == len(store.events())
        kinds = store.events()["kind"].value_counts().to_dict()
        assert kinds == {"tag": 9, "like": 2, "dislike": 1, "play": 4}  # one play (length unknown) per annotation


def test_emotify_layout_errors_name_the_problem(tmp_path):
    with pytest.raises(FeedbackDataError, match="Emotify"):
        read_emotify_tracks(tmp_path)
    with Store.open(tmp_path / "s.sqlite") as store, pytest.raises(ParameterError, match="layout"):
        import_tracks(store, tmp_path, layout="gtzan")
