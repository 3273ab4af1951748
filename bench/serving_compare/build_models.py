"""Builds the small ONNX models both servers serve, the request bodies the load generator sends,
and MLServer's model repository.

usage: build_models.py OUT_DIR

Models (scikit-learn, fixed seeds, exported with skl2onnx, `zipmap=False` so the probabilities
are a plain FP32 tensor): `logreg`, a LogisticRegression, and `mlp`, an MLPClassifier with two
hidden layers (64, 32); both take FP32 [N, 16] under the input name `X`, answer `label` (INT64
[N]) and `probabilities` (FP32 [N, 3]), and are served with batch 1.

Writes under OUT_DIR:
  models/KEY.onnx                    the model, the same bytes for both servers
  requests/KEY.json                  a V2 JSON infer request with one row
  requests/KEY.bin                   the same request with the binary tensor extension
  mlserver/KEY/model-settings.json   MLServer's model settings (custom runtime below)
  mlserver/KEY/model.onnx
  mlserver/KEY/onnx_runtime.py       the custom runtime (mlserver_runtime/), on MLServer's path there
  manifest.json                      per model: input, binary header length, onnxruntime's
                                     answer on the request row (what every server must return)
"""

from __future__ import annotations

import json
import shutil
import struct
import sys
from pathlib import Path

import numpy as np

SEED = 20261125
N_FEATURES = 16
N_CLASSES = 3
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
INPUT = "X"
RUNTIME = "onnx_runtime.OnnxRuntimeModel"
RUNTIME_FILE = Path(__file__).resolve().parent / "mlserver_runtime" / "onnx_runtime.py"


def train():
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    x, y = make_classification(
        n_samples=2000,
        n_features=N_FEATURES,
        n_informative=10,
        n_redundant=2,
        n_classes=N_CLASSES,
        random_state=SEED,
    )
    x = x.astype(np.float32)
    return x, {
        "logreg": LogisticRegression(max_iter=2000).fit(x, y),
        "mlp": MLPClassifier(hidden_layer_sizes=(64, 32), max_iter=600, random_state=SEED).fit(x, y),
    }


def export(estimator):
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    return to_onnx(
        estimator,
        initial_types=[(INPUT, FloatTensorType([None, N_FEATURES]))],
        target_opset=TARGET_OPSET,
        options={id(estimator): {"zipmap": False}},
    )


def v2_request(row: np.ndarray) -> dict:
    return {
        "inputs": [
            {"name": INPUT, "shape": [1, N_FEATURES], "datatype": "FP32", "data": [float(v) for v in row]}
        ]
    }


def v2_binary_request(row: np.ndarray) -> tuple[bytes, int]:
    """The binary tensor extension: a JSON header, then the raw little-endian tensor."""
    raw = struct.pack(f"<{N_FEATURES}f", *row.tolist())
    header = {
        "inputs": [
            {
                "name": INPUT,
                "shape": [1, N_FEATURES],
                "datatype": "FP32",
                "parameters": {"binary_data_size": len(raw)},
            }
        ],
        # JSON answers, as MLServer gives: only the request encoding differs.
        "parameters": {"binary_data_output": False},
    }
    encoded = json.dumps(header, separators=(",", ":")).encode()
    return encoded + raw, len(encoded)


def model_settings(key: str) -> dict:
    return {
        "name": key,
        "implementation": RUNTIME,
        "parameters": {"uri": "./model.onnx", "version": "1"},
        "inputs": [{"name": INPUT, "datatype": "FP32", "shape": [-1, N_FEATURES]}],
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, N_CLASSES]},
        ],
    }


def main() -> None:
    import onnx
    import onnxruntime

    out = Path(sys.argv[1])
    for sub in ("models", "requests", "mlserver"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    x, estimators = train()
    row = x[7]
    manifest = {"n_features": N_FEATURES, "input": INPUT, "models": {}}
    for key, estimator in estimators.items():
        model = export(estimator)
        onnx.checker.check_model(model)
        path = out / "models" / f"{key}.onnx"
        path.write_bytes(model.SerializeToString())

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        answer = dict(zip(names, session.run(None, {INPUT: row.reshape(1, -1)})))
        expected_label = estimator.predict(row.reshape(1, -1))[0]
        assert int(answer["label"][0]) == int(expected_label), (key, answer, expected_label)

        (out / "requests" / f"{key}.json").write_text(json.dumps(v2_request(row), separators=(",", ":")))
        binary, header_length = v2_binary_request(row)
        (out / "requests" / f"{key}.bin").write_bytes(binary)

        repo = out / "mlserver" / key
        repo.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, repo / "model.onnx")
        shutil.copyfile(RUNTIME_FILE, repo / RUNTIME_FILE.name)
        (repo / "model-settings.json").write_text(json.dumps(model_settings(key), indent=2) + "\n")

        manifest["models"][key] = {
            "onnx": str(path),
            "onnx_bytes": path.stat().st_size,
            "estimator": type(estimator).__name__,
            "json_body": str(out / "requests" / f"{key}.json"),
            "binary_body": str(out / "requests" / f"{key}.bin"),
            "binary_header_length": header_length,
            "outputs": names,
            "expected": {name: value.reshape(-1).tolist() for name, value in answer.items()},
            "input_example": x[:2].tolist(),
        }
        print(f"[models] {key}: {type(estimator).__name__}, {path.stat().st_size} bytes, outputs {names}")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
