"""Runs in the KServe client's own virtualenv (see requirements.txt here), driven by
test_serving_kserve.py: sends one V2 inference request with the unmodified
`kserve.InferenceRESTClient` and prints the answer's outputs as JSON.

usage: kserve_infer.py BASE_URL MODEL INPUTS.npz (binary|json)
"""

from __future__ import annotations

import asyncio
import json
import sys

import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

V2_DATATYPES = {np.float32: "FP32", np.float64: "FP64", np.int64: "INT64", np.int32: "INT32"}


async def main(base_url: str, model: str, inputs_path: str, encoding: str) -> None:
    arrays = np.load(inputs_path)
    infer_inputs = []
    for name in arrays.files:
        value = arrays[name]
        tensor = InferInput(name=name, shape=list(value.shape), datatype=V2_DATATYPES[value.dtype.type])
        tensor.set_data_from_numpy(value, binary_data=encoding == "binary")
        infer_inputs.append(tensor)
    client = InferenceRESTClient(RESTConfig(protocol="v2", retries=0, timeout=30))
    try:
        ready = await client.is_model_ready(base_url, model)
        response = await client.infer(base_url, InferRequest(model_name=model, infer_inputs=infer_inputs),
                                      model_name=model)
    finally:
        await client.close()
    outputs = {output.name: output.as_numpy().tolist() for output in response.outputs}
    print(json.dumps({"ready": ready, "model_name": response.model_name, "outputs": outputs}))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
