"""Runner: one opened model on one device, with tensor I/O that avoids needless copies."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekit.errors import EdgekitError


class Runner:
    """An allocated TFLite interpreter (CPU, or with the Edge TPU delegate) for a 1-input,
    1-output model.

    Attributes: ``device`` ("cpu", "usb:0"...), ``backend`` ("cpu" | "edgetpu"), ``provider``
    (e.g. "ai_edge_litert 2.3.0"), ``model_path``, ``threads``, ``interpreter`` (the raw object,
    for tight loops such as the benchmark), ``input_details``/``output_details`` (the
    interpreter's dict for input 0 / output 0).
    """

    def __init__(
        self,
        interpreter: Any,
        *,
        device: str,
        backend: str,
        provider: str,
        model_path: str,
        threads: int | None = None,
        fault: type[EdgekitError] = EdgekitError,
        lock: Any = None,
    ):
        self.interpreter = interpreter
        self.device, self.backend, self.provider = device, backend, provider
        self.model_path, self.threads = model_path, threads
        self._fault = fault
        self._lock = lock  # the device lock (edgekit.backends.devicelock), released by close()
        self.input_details = interpreter.get_input_details()[0]
        self.output_details = interpreter.get_output_details()[0]
        self._in = self.input_details["index"]
        self._out = self.output_details["index"]
        self.input_shape = tuple(int(d) for d in self.input_details["shape"])
        self.input_dtype = np.dtype(self.input_details["dtype"])

    def set_input(self, x: np.ndarray) -> None:
        """Write ``x`` (input shape with or without the batch axis, input dtype) into the input
        tensor in place."""
        if self.interpreter is None:
            raise EdgekitError("this model was closed", "open it again")
        x = np.asarray(x)
        if x.dtype != self.input_dtype:
            raise EdgekitError(f"input dtype {x.dtype} != model input {self.input_dtype}")
        # tensor() is a view of the interpreter's own buffer: no set_tensor() copy. The view must
        # be dropped before invoke(), which refuses to run while numpy holds its memory.
        view = self.interpreter.tensor(self._in)()
        try:
            view[...] = x.reshape(view.shape)
        except ValueError:
            raise EdgekitError(
                f"input shape {x.shape} does not fit the model input {self.input_shape}"
            ) from None
        finally:
            del view

    def invoke(self) -> None:
        """Run the model once on the current input tensor."""
        try:
            self.interpreter.invoke()
        except (RuntimeError, ValueError) as e:
            raise self.fault(e) from None

    def fault(self, exc: BaseException) -> EdgekitError:
        """The EdgekitError (EdgeTpuError on an Edge TPU) for an inference failure."""
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        hint = (
            "unplug and replug the Coral; run `edgekit doctor`"
            if self.backend == "edgetpu"
            else None
        )
        return self._fault(f"inference failed on {self.device}: {first}", hint)

    def output(self) -> np.ndarray:
        """A copy of output 0 (shape as the model gives, e.g. (1, classes); quantized dtype)."""
        return self.interpreter.get_tensor(self._out)

    def run(self, x: np.ndarray) -> np.ndarray:
        self.set_input(x)
        self.invoke()
        return self.output()

    def close(self) -> None:
        """Release the interpreter (and with it the Edge TPU, for another process or a reopen)."""
        self.interpreter = None
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Runner({self.model_path!r}, device={self.device!r}, provider={self.provider!r})"
