"""Which local implementation answers for an image URI: a built-in algorithm or a configured script-mode entry
point.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smspark_assets.local.algorithms import get_algorithm
from smspark_assets.local.algorithms.base import Algorithm
from smspark_assets.sagemaker.algorithms import builtin_algorithms
from smspark_assets.sagemaker.images import builtin_algorithm

SCRIPT = "script"


@dataclass(frozen=True)
class AlgorithmRef:
    """What ``algorithm.json`` (training) and the model server's arguments carry."""

    algorithm: str  # a built-in name, or "script"
    image: str = ""
    entry_point: str | None = None  # script mode: "package.module" or a path to a .py file

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"algorithm": self.algorithm, "image": self.image}
        if self.entry_point:
            doc["entry_point"] = self.entry_point
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "AlgorithmRef":
        return cls(
            algorithm=str(doc["algorithm"]),
            image=str(doc.get("image", "")),
            entry_point=doc.get("entry_point"),
        )


def resolve_image(image: str, custom_images: dict[str, str] | None = None) -> AlgorithmRef:
    """Map an image URI to an implementation; ``ValueError`` naming what is allowed when nothing matches.

    ``custom_images`` maps image URIs (exact, or a prefix ending in ``*``) to script-mode entry points; it
    comes from the service configuration (``<root>/local/config.json`` ``"custom_images"``).
    """
    name = builtin_algorithm(image)
    if name is not None:
        return AlgorithmRef(name, image)
    for pattern, entry_point in (custom_images or {}).items():
        if image == pattern or (pattern.endswith("*") and image.startswith(pattern[:-1])):
            return AlgorithmRef(SCRIPT, image, entry_point)
    known = ", ".join(builtin_algorithms())
    raise ValueError(
        f"image {image!r} is neither a built-in algorithm image ({known}; any region's registry) "
        "nor a custom "
        'image mapped to a script-mode entry point in the local service configuration ("custom_images")'
    )


def load_algorithm(ref: AlgorithmRef) -> Algorithm:
    """The object implementing :class:`~smspark_assets.local.algorithms.base.Algorithm` for ``ref``."""
    if ref.algorithm == SCRIPT:
        from smspark_assets.local.script_mode import ScriptModeAlgorithm

        if not ref.entry_point:
            raise ValueError(f"custom image {ref.image!r} has no entry point")
        return ScriptModeAlgorithm(ref.entry_point)
    return get_algorithm(ref.algorithm)


def read_config(path: Path) -> dict[str, Any]:
    """The optional service configuration file; an empty configuration when it does not exist."""
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path} must hold a JSON object")
    return doc
