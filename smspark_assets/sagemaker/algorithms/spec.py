"""What SageMaker promises about one built-in algorithm: hyperparameters, channels, content types, image.

An :class:`AlgorithmSpec` is the contract both sides read: the assets refuse bad settings with it before
any job exists, and the local implementations of the algorithms (the emulator) validate with the very
same objects, so the two can never disagree about what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from smspark_assets.sagemaker.algorithms.content_types import CSV, JSON, JSONLINES, RECORDIO, parse_content_type
from smspark_assets.sagemaker.errors import AlgorithmError
from smspark_assets.sagemaker.hyperparameters import HyperparameterSpec
from smspark_assets.sagemaker.images import image_uri

# Names SageMaker's first-party (MXNet-based) containers accept and ignore: the SDKs and automatic model
# tuning send them, so refusing them would refuse valid jobs.
FIRST_PARTY_IGNORED: frozenset[str] = frozenset(
    {"_kvstore", "_num_gpus", "_log_level", "_tuning_objective_metric", "_enable_profiler", "_num_kv_servers"})


class ChannelError(AlgorithmError, ValueError):
    """A channel is missing, unknown, empty, or has a content type this algorithm does not accept."""


@dataclass(frozen=True)
class AlgorithmSpec:
    """The SageMaker contract of one built-in algorithm."""

    name: str  # SageMaker's name, which is also the image repository: "kmeans", "linear-learner", ...
    hyperparameters: HyperparameterSpec
    channels: tuple[str, ...]  # every channel the container reads
    required_channels: tuple[str, ...]
    training_content_types: tuple[str, ...]
    default_training_content_type: str  # what the container assumes when a channel declares none
    inference_content_types: tuple[str, ...]  # request bodies the model server parses
    response_content_types: tuple[str, ...]  # Accept values it answers
    # Cross-field rules on top of ``hyperparameters`` (``None``: the per-name checks are the whole story).
    validator: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None
    # Canonical name of a declared training content type, ``None`` if the algorithm does not read it.
    # ``None`` here: the shared MIME aliases decide.
    training_content_type_of: Callable[[str], str | None] | None = None

    def validate_hyperparameters(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Parse string hyperparameters (either SDK's forms); raise ``HyperparameterError`` naming what is allowed."""
        if self.validator is not None:
            return self.validator(raw)
        return self.hyperparameters.validate(raw)

    def training_content_type(self, declared: str | None) -> str | None:
        """The canonical content type a channel declaring ``declared`` is read as; ``None`` if not accepted."""
        text = declared or self.default_training_content_type
        if self.training_content_type_of is not None:
            return self.training_content_type_of(text)
        mime, _ = parse_content_type(text)
        return mime if mime in self.training_content_types else None

    def validate_channels(self, channels: Mapping[str, str | None]) -> dict[str, str]:
        """Check channel names and their declared ``ContentType``; return each channel's canonical content type.

        Raises :class:`ChannelError` naming the channels and content types the algorithm accepts.
        """
        unknown = sorted(set(channels) - set(self.channels))
        if unknown:
            raise ChannelError(f"{self.name}: unknown channel(s) {', '.join(unknown)}; "
                               f"allowed: {', '.join(self.channels)}")
        missing = [c for c in self.required_channels if c not in channels]
        if missing:
            raise ChannelError(f"{self.name}: missing required channel(s) {', '.join(missing)}")
        canonical: dict[str, str] = {}
        for name, declared in channels.items():
            content_type = self.training_content_type(declared)
            if content_type is None:
                raise ChannelError(f"{self.name}: channel {name!r} has content type {declared!r}; "
                                   f"allowed: {', '.join(self.training_content_types)}")
            canonical[name] = content_type
        return canonical

    def image_uri(self, region: str, tag: str | None = None) -> str:
        """The algorithm's ECR image in ``region`` (see :mod:`smspark_assets.sagemaker.images`)."""
        return image_uri(self.name, region, tag)


def first_party(name: str, hyperparameters: HyperparameterSpec, *, channels: tuple[str, ...] = ("train", "test"),
                training_content_types: tuple[str, ...] = (RECORDIO, CSV),
                inference_content_types: tuple[str, ...] = (CSV, JSON, JSONLINES, RECORDIO),
                response_content_types: tuple[str, ...] = (JSON, JSONLINES, CSV, RECORDIO),
                validator: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None) -> AlgorithmSpec:
    """The contract of a first-party (MXNet-based) algorithm, with what they share by default: a required
    ``train`` channel, recordIO-protobuf when a channel declares no type (DG "Common data formats for
    training"), and the common inference formats (DG "Common data formats for inference")."""
    return AlgorithmSpec(name=name, hyperparameters=hyperparameters, channels=channels, required_channels=("train",),
                         training_content_types=training_content_types, default_training_content_type=RECORDIO,
                         inference_content_types=inference_content_types,
                         response_content_types=response_content_types, validator=validator)
