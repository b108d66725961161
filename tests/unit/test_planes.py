"""A media process carries only the media plane: the control plane's libraries, and the
offline models when it is set to load them on demand, would be most of its memory."""

import json
import subprocess
import sys

CONTROL_PLANE_LIBRARIES = {
    *("sqlalchemy", "alembic", "motor", "pymongo", "hvac", "minio", "pypdf", "docx"),
    *("tokenizers", "qdrant_edge", "control_plane.port"),
}

PROBE = """
import json, sys
from fastapi.testclient import TestClient
from switchboard.server import create_app
from switchboard.settings import Settings

settings = Settings(plane=sys.argv[1], control_plane_url="http://127.0.0.1:9",
                    warm_offline_models=False, data_dir=sys.argv[2])
with TestClient(create_app(settings)) as client:
    health = client.get("/healthz").json()
from media_plane.providers.offline_tts import load_voice
from media_plane.providers.recogniser import RECOGNISER
print(json.dumps({"health": health, "modules": sorted(sys.modules),
                  "recogniser": RECOGNISER.pid,
                  "voices": load_voice.cache_info().currsize}))
"""


def start(plane: str, tmp_path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, plane, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_media_process_loads_neither_the_control_plane_nor_unused_models(tmp_path):
    media = start("media", tmp_path)
    assert media["health"] == {"status": "ok", "plane": "media", "live_calls": 0}
    modules = set(media["modules"])
    assert "media_plane.pipeline" in modules
    assert not CONTROL_PLANE_LIBRARIES & modules
    assert "onnxruntime" in modules  # Silero, which every call needs, is loaded
    assert media["recogniser"] is None  # no recogniser process started
    assert media["voices"] == 0
