"""A custom MLServer runtime serving an ONNX file with onnxruntime (there is no mlserver-onnx).

It runs inside MLServer's own virtual environment only (modelgate's never imports it). It
is set up the way the other servers are: one intra-op thread, ``session.run`` inline (a
single-row call is cheaper than a thread hop), all outputs returned (label, probabilities).
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.errors import InferenceError
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri

WELLKNOWN_MODEL_FILENAMES = ["model.onnx"]


class OnnxRuntimeModel(MLModel):
    async def load(self) -> bool:
        uri = await get_model_uri(self._settings, wellknown_filenames=WELLKNOWN_MODEL_FILENAMES)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(uri, options, providers=["CPUExecutionProvider"])
        self._input_name = self._session.get_inputs()[0].name
        self._output_names = [output.name for output in self._session.get_outputs()]
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        if len(payload.inputs) != 1:
            raise InferenceError(f"expected one input tensor, got {len(payload.inputs)}")
        try:
            features = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32, copy=False)
            results = self._session.run(self._output_names, {self._input_name: features})
        except (ValueError, ort.capi.onnxruntime_pybind11_state.Fail) as exc:
            raise InferenceError(f"bad input: {exc}") from exc
        outputs = [
            NumpyCodec.encode_output(name, value)
            for name, value in zip(self._output_names, results, strict=True)
        ]
        return InferenceResponse(model_name=self.name, model_version=self.version, outputs=outputs)
