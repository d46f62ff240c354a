"""The label a deploy writes into the Lambda function's description.

Lambda copies a function's description into every version it publishes, so each
published version says which model version and artifact it serves, and the gate its
promotion must pass, without any store beside Lambda itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import ValidationError

from model_runtime.manifest import Manifest, PromotionGate

PREFIX = "inferstack "
# Lambda's limit on a function's description.
MAX_DESCRIPTION = 256
HASH_CHARS = 32


@dataclass(frozen=True)
class VersionLabel:
    model: str
    version: str
    # The first HASH_CHARS hex digits of Manifest.content_hash().
    sha256: str
    gate: PromotionGate | None = None

    @classmethod
    def of(cls, manifest: Manifest) -> VersionLabel:
        return cls(
            manifest.name,
            manifest.version,
            manifest.content_hash()[:HASH_CHARS],
            manifest.promotion_gate,
        )

    def description(self) -> str:
        fields: dict[str, object] = {
            "model": self.model,
            "version": self.version,
            "sha256": self.sha256,
        }
        if self.gate is not None:
            fields["gate"] = self.gate.model_dump()
        text = PREFIX + json.dumps(fields, separators=(",", ":"))
        if len(text) > MAX_DESCRIPTION:
            raise ValueError(
                f"the version label of model {self.model!r} version {self.version!r} is"
                f" {len(text)} characters, over Lambda's {MAX_DESCRIPTION} for a description;"
                " shorten the model version"
            )
        return text

    @classmethod
    def parse(cls, description: str | None) -> VersionLabel | None:
        """The label in a version's description; None when it is not one of ours."""
        if not description or not description.startswith(PREFIX):
            return None
        try:
            fields = json.loads(description[len(PREFIX) :])
            gate = fields.get("gate")
            return cls(
                model=str(fields["model"]),
                version=str(fields["version"]),
                sha256=str(fields["sha256"]),
                gate=None if gate is None else PromotionGate.model_validate(gate),
            )
        except (ValueError, KeyError, TypeError, AttributeError, ValidationError):
            return None
