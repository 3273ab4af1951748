"""A custom MLServer runtime serving an ONNX model with onnxruntime (MLServer ships none).

MLServer imports it by the `implementation` of each model-settings.json
("onnx_runtime.OnnxRuntimeModel"); build_models.py copies this file beside every model's settings,
the folder MLServer puts on the import path while it loads the model.

Fairness with Keelson: one onnxruntime session per model (per worker process), single-threaded
(one intra-op and one inter-op thread, sequential execution), so MLServer scales by its own
`parallel_workers` as it is meant to, not by threads inside one prediction. Requests and answers are
the standard V2 ones through MLServer's NumpyCodec; every output the model has is returned.
"""

from __future__ import annotations

import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri


class OnnxRuntimeModel(MLModel):
    async def load(self) -> bool:
        uri = await get_model_uri(self._settings, wellknown_filenames=["model.onnx"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self._session = ort.InferenceSession(uri, sess_options=options, providers=["CPUExecutionProvider"])
        self._output_names = [output.name for output in self._session.get_outputs()]
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        feeds = {request_input.name: NumpyCodec.decode_input(request_input) for request_input in payload.inputs}
        results = self._session.run(None, feeds)
        return InferenceResponse(
            id=payload.id,
            model_name=self.name,
            model_version=self.version,
            outputs=[NumpyCodec.encode_output(name, value) for name, value in zip(self._output_names, results)],
        )
