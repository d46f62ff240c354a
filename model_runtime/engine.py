"""The Engine: one verified model artifact, one onnxruntime session, validated requests.

The same Engine runs in the Lambda function, in the GPU container and in `inferstack
serve`. Loading verifies every file's sha256 before onnxruntime sees a byte of it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from model_runtime.backends import BackendOptions, open_backend
from model_runtime.datatypes import from_numpy, to_numpy
from model_runtime.errors import BatchTooLarge, InferenceError, InferstackError, InvalidInput
from model_runtime.manifest import Manifest, TensorSpec, verify_artifact
from model_runtime.preprocess import TextTokenizer

if TYPE_CHECKING:
    from model_runtime.early_open import EarlySession

Tensors = dict[str, np.ndarray[Any, Any]]
# Client inputs -> the model's inputs, plus response parameters (e.g. what was truncated).
Preprocess = Callable[[Tensors], tuple[Tensors, dict[str, Any]]]


class Engine:
    """A loaded, verified model that validates and runs requests."""

    def __init__(
        self,
        manifest: Manifest,
        session: Any,
        directory: Path,
        preprocess: Preprocess | None = None,
    ) -> None:
        self.manifest = manifest
        self.directory = directory
        self._session = session
        self._preprocess = preprocess
        self._input_specs = {spec.name: spec for spec in manifest.inputs}
        self._output_names = [spec.name for spec in manifest.outputs]

    @classmethod
    def load(
        cls,
        directory: Path | str,
        *,
        threads: int | None = None,
        options: BackendOptions | None = None,
        on_verified: Callable[[], object] | None = None,
        verified: bool = False,
        early: EarlySession | None = None,
    ) -> Engine:
        """Verify the artifact in `directory` and open a backend (default: onnxruntime) on it;
        `on_verified` is called in between (the cold-start breakdown times the two apart).
        `verified`: every file was checked against this manifest moments ago, by delivery
        as it downloaded them, so they are not hashed a second time. `early`: a session
        opened while the runtime was importing, taken if it is this model's (a file it
        hashed to the manifest's sha256 is not hashed again).

        Raises ArtifactError / ArtifactIntegrityError naming the bad file.
        """
        directory = Path(directory)
        options = options or BackendOptions()
        manifest = Manifest.load(directory)
        if not verified:
            names = manifest.files_for(options.backend)
            if early is not None:
                names = [
                    name
                    for name in names
                    if early.verified(directory, name) != manifest.files[name].sha256
                ]
            verify_artifact(directory, manifest, names)
        if on_verified is not None:
            on_verified()
        session = open_backend(directory, manifest, options, threads, early)
        stage = manifest.preprocessing
        preprocess = TextTokenizer.load(directory, stage) if stage is not None else None
        return cls(manifest, session, directory, preprocess)

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    def validate(self, inputs: Mapping[str, np.ndarray[Any, Any]]) -> Tensors:
        """Check inputs against the manifest; return them in the model's dtypes.

        Errors name the input and what was expected.
        """
        missing = [name for name in self._input_specs if name not in inputs]
        if missing:
            raise InvalidInput(
                f"missing input(s) {', '.join(repr(n) for n in missing)};"
                f" model {self.name!r} expects {self._describe_inputs()}"
            )
        unknown = [name for name in inputs if name not in self._input_specs]
        if unknown:
            raise InvalidInput(
                f"unknown input(s) {', '.join(repr(n) for n in unknown)};"
                f" model {self.name!r} expects {self._describe_inputs()}"
            )
        feed: Tensors = {}
        batch: int | None = None
        for name, spec in self._input_specs.items():
            array = inputs[name]
            self._check_tensor(spec, array)
            if batch is None:
                batch = int(array.shape[0])
            elif array.shape[0] != batch:
                raise InvalidInput(
                    f"inputs disagree on batch size: {batch} vs {array.shape[0]} for {name!r}"
                )
            feed[name] = array
        return feed

    def infer(
        self,
        inputs: Mapping[str, np.ndarray[Any, Any]],
        output_names: Sequence[str] | None = None,
    ) -> Tensors:
        """Validate, run and return the requested (default: all) outputs by name."""
        return self.infer_with_parameters(inputs, output_names)[0]

    def infer_with_parameters(
        self,
        inputs: Mapping[str, np.ndarray[Any, Any]],
        output_names: Sequence[str] | None = None,
    ) -> tuple[Tensors, dict[str, Any]]:
        """Like `infer`, plus the response parameters pre-processing reports."""
        names = self.resolve_outputs(output_names)
        feed, parameters = self.prepare(inputs)
        outputs = self.run(feed, names)
        self.check_outputs(outputs)
        return outputs, parameters

    # The batcher calls the three steps of `infer_with_parameters` apart: `prepare` and
    # `check_outputs` per request on the event loop, `run` once per batch in a thread.
    def prepare(self, inputs: Mapping[str, np.ndarray[Any, Any]]) -> tuple[Tensors, dict[str, Any]]:
        """Validate and pre-process one request: the model's feed, response parameters."""
        feed = self.validate(inputs)
        parameters: dict[str, Any] = {}
        if self._preprocess is not None:
            feed, parameters = self._preprocess(feed)
        return feed, parameters

    def run(self, feed: Mapping[str, np.ndarray[Any, Any]], names: Sequence[str]) -> Tensors:
        try:
            results = self._session.run(list(names), feed)
        except InferstackError:  # the backend has already said whose fault it is
            raise
        except Exception as exc:  # backends raise their own untyped errors
            raise InferenceError(f"model {self.name!r} failed: {exc}") from exc
        return dict(zip(names, results, strict=True))

    def check_outputs(self, outputs: Mapping[str, np.ndarray[Any, Any]]) -> None:
        # JSON cannot carry NaN or Inf, and a non-finite output from finite inputs means
        # the inputs are far outside what the model handles: the client's problem.
        for name, array in outputs.items():
            if array.dtype.kind == "f" and not np.isfinite(array).all():
                raise InvalidInput(
                    f"output {name!r} is not finite for this input; inputs are probably"
                    " far outside the range the model was trained on"
                )

    def resolve_outputs(self, output_names: Sequence[str] | None) -> list[str]:
        if not output_names:
            return self._output_names
        unknown = [name for name in output_names if name not in self._output_names]
        if unknown:
            raise InvalidInput(
                f"unknown output(s) {', '.join(repr(n) for n in unknown)};"
                f" model {self.name!r} has {', '.join(repr(n) for n in self._output_names)}"
            )
        return list(output_names)

    def _check_tensor(self, spec: TensorSpec, array: np.ndarray[Any, Any]) -> None:
        expected_dtype = to_numpy(spec.datatype)
        if array.dtype != expected_dtype and not (
            spec.datatype == "BYTES" and array.dtype.kind in "OUS"
        ):
            raise InvalidInput(
                f"input {spec.name!r} has datatype {_datatype_of(array)},"
                f" model expects {spec.datatype}"
            )
        if array.ndim != len(spec.shape):
            raise InvalidInput(
                f"input {spec.name!r} has shape {list(array.shape)} (rank {array.ndim}),"
                f" model expects rank {len(spec.shape)}: {spec.shape}"
            )
        for axis, (got, want) in enumerate(zip(array.shape, spec.shape, strict=True)):
            if want != -1 and got != want:
                raise InvalidInput(
                    f"input {spec.name!r} has shape {list(array.shape)}, model expects"
                    f" {spec.shape} (dimension {axis} must be {want})"
                )
        if array.shape[0] == 0:
            raise InvalidInput(
                f"input {spec.name!r} has an empty batch (shape {list(array.shape)})"
            )
        if array.shape[0] > self.manifest.max_batch_size:
            raise BatchTooLarge(
                f"input {spec.name!r} has batch {array.shape[0]}, over this model's limit of"
                f" {self.manifest.max_batch_size}"
            )
        if (
            not self.manifest.allow_non_finite
            and array.dtype.kind == "f"
            and not np.isfinite(array).all()
        ):
            raise InvalidInput(
                f"input {spec.name!r} contains NaN or infinite values (or values out of"
                f" range for {spec.datatype})"
            )

    def _describe_inputs(self) -> str:
        return ", ".join(
            f"{spec.name!r} {spec.datatype} {spec.shape}" for spec in self.manifest.inputs
        )


def _datatype_of(array: np.ndarray[Any, Any]) -> str:
    try:
        return from_numpy(array.dtype)
    except ValueError:
        return str(array.dtype)
