"""The Lambda entry point in a fresh interpreter: a cold start that answers, and the
artifact and configuration problems that stop it from starting (what Lambda logs)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from layers.package import project_root
from model_runtime.engine import Engine
from model_runtime.manifest import Manifest, sha256_file

REPO = project_root()


def _infer_body(images: np.ndarray) -> str:
    data = images.ravel().tolist()
    tensor = {"name": "image", "shape": list(images.shape), "datatype": "FP32", "data": data}
    return json.dumps({"id": "lambda-1", "inputs": [tensor]})


def _import_handler(
    model_dir: str | None, code: str = "import functions.handler"
) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in {"MODEL_DIR", "MODEL_URI"}}
    if model_dir is not None:
        env["MODEL_DIR"] = model_dir
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def _run_handler(code: str, model_dir: Path, stdin: str) -> subprocess.CompletedProcess[str]:
    """`code` in a fresh interpreter with MODEL_DIR=`model_dir`, `stdin` on its stdin."""
    env = {key: value for key, value in os.environ.items() if key != "MODEL_URI"}
    env |= {"MODEL_DIR": str(model_dir), "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cold_start_in_a_fresh_process(
    digits_dir: Path, digits_engine: Engine, digits_images: np.ndarray
) -> None:
    images = digits_images[:2]
    code = (
        "import json, sys\n"
        "from functions.handler import handler\n"
        "event = json.loads(sys.stdin.read())\n"
        "print(json.dumps(handler(event, None)))\n"
    )
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/v2/models/digits/infer",
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "http": {"method": "POST", "path": "/v2/models/digits/infer", "sourceIp": "192.0.2.10"}
        },
        "body": _infer_body(images),
        "isBase64Encoded": False,
    }
    run = _run_handler(code, digits_dir, json.dumps(event))
    assert run.returncode == 0, run.stderr
    response = json.loads(run.stdout.strip().splitlines()[-1])
    assert response["statusCode"] == 200
    labels = next(
        o["data"] for o in json.loads(response["body"])["outputs"] if o["name"] == "label"
    )
    assert labels == digits_engine.infer({"image": images})["label"].tolist()


def test_tampered_model_refuses_to_start(digits_dir: Path, tmp_path: Path) -> None:
    artifact = Path(shutil.copytree(digits_dir, tmp_path / "digits"))
    model = artifact / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    expected = Manifest.load(artifact).files["model.onnx"].sha256
    actual = sha256_file(model)

    run = _import_handler(str(artifact))

    assert run.returncode != 0
    # One line tells the whole story: the file, the expected hash and the actual one.
    lines = [line for line in run.stderr.splitlines() if str(model) in line]
    assert any(expected in line and actual in line for line in lines), run.stderr
    assert "ArtifactIntegrityError" in run.stderr


def test_missing_model_dir_refuses_to_start() -> None:
    run = _import_handler(None)
    assert run.returncode != 0
    assert "MODEL_DIR" in run.stderr.strip().splitlines()[-1]


def test_missing_artifact_refuses_to_start(tmp_path: Path) -> None:
    run = _import_handler(str(tmp_path / "nowhere"))
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert f"cannot read model manifest {tmp_path / 'nowhere' / 'manifest.json'}" in last


def test_fastapi_waits_for_the_first_request_the_direct_path_leaves_to_the_app(
    digits_dir: Path, digits_images: np.ndarray
) -> None:
    """A cold start and its inference requests import no FastAPI (the app costs about
    half a second to import and build); the first other request builds it, and is
    answered as always. The model's session is the one opened beside the imports."""
    code = (
        "import json, sys\n"
        "from functions.handler import handler\n"
        "from tests.support.deploy import infer_event\n"
        "import numpy as np\n"
        "images = np.array(json.loads(sys.stdin.read()), dtype=np.float32)\n"
        "answers = [handler(infer_event('digits', images), None)]\n"
        "answers.append('fastapi' in sys.modules)\n"
        "metadata = {'resource': '/v2/models/{model}', 'path': '/v2/models/digits',\n"
        "    'httpMethod': 'GET', 'headers': {}, 'multiValueHeaders': {},\n"
        "    'queryStringParameters': None, 'multiValueQueryStringParameters': None,\n"
        "    'requestContext': {'resourcePath': '/v2/models/{model}', 'stage': 'v1'},\n"
        "    'body': None, 'isBase64Encoded': False}\n"
        "answers.append(handler(metadata, None))\n"
        "answers.append('fastapi' in sys.modules)\n"
        "import functions.handler as module\n"
        "answers.append(module.early is not None and module.early.taken)\n"
        "print(json.dumps(answers))\n"
    )
    run = _run_handler(code, digits_dir, json.dumps(digits_images[:2].tolist()))
    assert run.returncode == 0, run.stderr
    infer, fastapi_after_infer, metadata, fastapi_after_metadata, early_taken = json.loads(
        run.stdout.strip().splitlines()[-1]
    )
    assert infer["statusCode"] == 200, infer
    assert fastapi_after_infer is False
    assert metadata["statusCode"] == 200, metadata
    assert json.loads(metadata["body"])["name"] == "digits"
    assert fastapi_after_metadata is True
    assert early_taken is True  # the session opened beside the imports served it
