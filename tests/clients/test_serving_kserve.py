"""Keelson serving with the KServe Python client (`kserve.InferenceRESTClient`, protocol v2), in
both of its encodings: binary tensors (its default) and JSON. The client lives in a virtualenv of
its own (tests/clients/kserve/requirements.txt: its pins cannot share this venv's), so each
request runs tests/clients/kserve/kserve_infer.py with that interpreter; the outputs it prints are
compared here with onnxruntime's.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import REFERENCE_MLFLOW
from serving_models import N_ROWS, assert_outputs_match, build, create_endpoint, deploy, log_and_register, unique

pytestmark = pytest.mark.skipif(REFERENCE_MLFLOW, reason="Keelson's own serving API; not MLflow's")

SCRIPT = Path(__file__).parent / "kserve" / "kserve_infer.py"
KEYS = ["logreg", "rf-clf", "pipeline", "mlp-reg"]


def kserve_python() -> Path:
    venv = os.environ.get("KEELSON_KSERVE_VENV")
    if not venv:
        pytest.fail("KEELSON_KSERVE_VENV is not set; run the client tests through tests/clients/run", pytrace=False)
    return Path(venv) / "bin" / "python"


@pytest.fixture(scope="module")
def served(mlflow_tracking) -> str:
    for key in KEYS:
        name = unique(f"kserve-{key}")
        version = log_and_register(build(key), name)
        create_endpoint(mlflow_tracking, key)
        deploy(mlflow_tracking, key, "blue", name, version)
    return mlflow_tracking.url


@pytest.mark.parametrize("encoding", ["binary", "json"])
@pytest.mark.parametrize("key", KEYS)
def test_kserve_client_infers(served, tmp_path, key, encoding):
    model = build(key)
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, **model.batch(N_ROWS))
    done = subprocess.run([str(kserve_python()), str(SCRIPT), served, key, str(inputs), encoding],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout)
    assert answer["ready"] is True and answer["model_name"] == key, answer
    outputs = {name: np.asarray(value) for name, value in answer["outputs"].items()}
    assert_outputs_match(model, outputs, N_ROWS)
