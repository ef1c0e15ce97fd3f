"""A tiny CNN run (random weights), a workspace with a catalogue track, songs as bytes, and apps.

No training: the service tests check HTTP behaviour, not accuracy.
"""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from fastapi.testclient import TestClient
from serve_helpers import MODEL_KWARGS
from tiny_cnn import tiny_card

from encore.models.checkpoint import save_checkpoint
from encore.models.classifier import EncoreModel
from encore.serve import ServeSettings, create_app
from encore.workspace import Workspace


@pytest.fixture(scope="session")
def serve_run(tmp_path_factory):
    torch.manual_seed(0)
    model = EncoreModel(**MODEL_KWARGS).eval()
    run = tmp_path_factory.mktemp("serve-runs") / "tiny"
    save_checkpoint(run / "checkpoint.pt", model, tiny_card(network=MODEL_KWARGS))
    return run


@pytest.fixture()
def workspace(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    with ws.open_store() as store:
        store.add_tracks(pd.DataFrame({"track_id": ["t1", "t2"], "title": ["one", "two"], "duration": [30.0, 40.0]}))
    return ws


@pytest.fixture()
def make_client(serve_run, workspace):
    """``make_client(run=None, **settings)`` -> a TestClient on a fresh app over the workspace."""
    clients = []

    def make(run=None, **options) -> TestClient:
        settings = ServeSettings(run=run or serve_run, workspace=workspace.root, workers=1, **options)
        client = TestClient(create_app(settings))
        clients.append(client)
        return client.__enter__()

    yield make
    for client in clients:
        client.__exit__(None, None, None)
        client.app.state.encore.store.close()
