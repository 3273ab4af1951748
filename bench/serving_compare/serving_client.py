"""Set-up and answer checks for bench/serving_compare: registering the models with Keelson through
the unmodified MLflow client, Keelson's endpoint API, and checking that a server answers the exact
request the load generator sends with onnxruntime's outputs (a server answering errors fast is no
result).

usage:
  serving_client.py register URL ASSETS MODEL REGISTERED_NAME
      logs ASSETS/models/MODEL.onnx with mlflow.onnx.log_model and registers it (prints the version)
  serving_client.py endpoint URL ENDPOINT
      creates an endpoint (POST /api/v1/endpoints)
  serving_client.py deploy URL ENDPOINT DEPLOYMENT SPEC_JSON OUT_STATUS
      PUT /api/v1/endpoints/ENDPOINT/deployments/DEPLOYMENT; writes the HTTP status and the answer
      to OUT_STATUS (JSON) and exits 0 for 200, 3 for 400 (the spec was refused), 1 otherwise
  serving_client.py traffic URL ENDPOINT CONFIG_JSON
      PUT /api/v1/endpoints/ENDPOINT/traffic
  serving_client.py stats URL ENDPOINT OUT
      the endpoint's per-deployment counters (requests, mirrored_requests, errors) into OUT (JSON)
  serving_client.py check URL MODEL_NAME ASSETS MODEL (json|binary) [HEADER: VALUE ...]
      sends the benchmark's request once and compares the answer with onnxruntime's
  serving_client.py wait-model URL MODEL_NAME SECONDS
      waits until GET /v2/models/MODEL_NAME/ready answers 200
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import requests

TIMEOUT = 120


def manifest(assets: str) -> dict:
    return json.loads((Path(assets) / "manifest.json").read_text())


def register(url: str, assets: str, model: str, name: str) -> None:
    import mlflow
    import numpy as np
    import onnx
    import onnxruntime

    entry = manifest(assets)["models"][model]
    onnx_model = onnx.load(entry["onnx"])
    mlflow.set_tracking_uri(url)
    mlflow.set_experiment("serving-bench")
    with mlflow.start_run(run_name=f"bench-{model}"):
        info = mlflow.onnx.log_model(
            onnx_model,
            name="model",
            input_example=np.asarray(entry["input_example"], dtype=np.float32),
            registered_model_name=name,
            # Given, not inferred: inferring them runs a subprocess for seconds per model.
            pip_requirements=[f"onnx=={onnx.__version__}", f"onnxruntime=={onnxruntime.__version__}"],
        )
    print(info.registered_model_version)


def endpoint(url: str, name: str) -> None:
    response = requests.post(f"{url}/api/v1/endpoints", json={"name": name}, timeout=TIMEOUT)
    if response.status_code not in (200, 201):
        sys.exit(f"POST /api/v1/endpoints {name}: {response.status_code} {response.text}")


def deploy(url: str, endpoint_name: str, deployment: str, spec: str, out: str) -> None:
    response = requests.put(
        f"{url}/api/v1/endpoints/{endpoint_name}/deployments/{deployment}",
        json=json.loads(spec),
        timeout=TIMEOUT,
    )
    try:
        body = response.json()
    except ValueError:
        body = response.text
    Path(out).write_text(json.dumps({"status": response.status_code, "body": body}))
    if response.status_code == 200:
        return
    print(f"PUT deployment {endpoint_name}/{deployment}: {response.status_code} {response.text}", file=sys.stderr)
    sys.exit(3 if response.status_code == 400 else 1)


def traffic(url: str, endpoint_name: str, config: str) -> None:
    response = requests.put(f"{url}/api/v1/endpoints/{endpoint_name}/traffic", json=json.loads(config), timeout=TIMEOUT)
    if response.status_code != 200:
        sys.exit(f"PUT traffic {endpoint_name} {config}: {response.status_code} {response.text}")


def stats(url: str, endpoint_name: str, out: str) -> None:
    response = requests.get(f"{url}/api/v1/endpoints/{endpoint_name}", timeout=TIMEOUT)
    if response.status_code != 200:
        sys.exit(f"GET endpoint {endpoint_name}: {response.status_code} {response.text}")
    view = response.json()
    Path(out).write_text(
        json.dumps(
            {
                "traffic": view.get("traffic"),
                "mirror": view.get("mirror"),
                "deployments": {d["name"]: d.get("stats", {}) for d in view.get("deployments", [])},
            }
        )
    )


def outputs_of(answer: dict) -> dict:
    return {o["name"]: [float(v) for v in o["data"]] for o in answer["outputs"]}


def check(url: str, model_name: str, assets: str, model: str, encoding: str, headers: list[str]) -> None:
    entry = manifest(assets)["models"][model]
    sent = {"Content-Type": "application/json"}
    if encoding == "binary":
        body = Path(entry["binary_body"]).read_bytes()
        sent = {
            "Content-Type": "application/octet-stream",
            "Inference-Header-Content-Length": str(entry["binary_header_length"]),
        }
    else:
        body = Path(entry["json_body"]).read_bytes()
    for header in headers:
        key, _, value = header.partition(":")
        sent[key.strip()] = value.strip()
    response = requests.post(f"{url}/v2/models/{model_name}/infer", data=body, headers=sent, timeout=TIMEOUT)
    if response.status_code != 200:
        sys.exit(f"{model_name} ({encoding}) answered {response.status_code}: {response.text[:500]}")
    got = outputs_of(response.json())
    for name, expected in entry["expected"].items():
        values = got.get(name)
        if values is None or len(values) != len(expected):
            sys.exit(f"{model_name} ({encoding}): output {name} is {values}, expected {expected}")
        if any(abs(a - b) > 1e-4 + 1e-4 * abs(b) for a, b in zip(values, expected)):
            sys.exit(f"{model_name} ({encoding}): output {name} is {values}, onnxruntime says {expected}")


def wait_model(url: str, model_name: str, seconds: str) -> None:
    deadline = time.monotonic() + float(seconds)
    last = ""
    while time.monotonic() < deadline:
        try:
            response = requests.get(f"{url}/v2/models/{model_name}/ready", timeout=5)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:200]}"
        except requests.RequestException as error:
            last = str(error)
        time.sleep(0.3)
    sys.exit(f"{model_name} not ready at {url} after {seconds} s: {last}")


def main() -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    command, args = sys.argv[1], sys.argv[2:]
    if command == "register":
        register(*args)
    elif command == "endpoint":
        endpoint(*args)
    elif command == "deploy":
        deploy(*args)
    elif command == "traffic":
        traffic(*args)
    elif command == "stats":
        stats(*args)
    elif command == "check":
        check(args[0], args[1], args[2], args[3], args[4], args[5:])
    elif command == "wait-model":
        wait_model(*args)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
