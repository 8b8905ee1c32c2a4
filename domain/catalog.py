"""The models the studio offers and what they cost; built from settings, never from literals in code."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from domain.errors import bad_input

ASPECT_RATIOS_IMAGE = ("1:1", "3:4", "4:3", "9:16", "16:9")
ASPECT_RATIOS_VIDEO = ("16:9", "9:16")


@dataclass(frozen=True)
class ModelSpec:
    """One model: its job kind, price per unit and the parameter ranges it accepts."""

    id: str
    kind: str  # IMAGE | VIDEO | TEXT | UPSCALE
    display_name: str
    unit_cost_usd: float
    cost_unit: str  # image | video_second | 1k_tokens
    max_count: int | None = None
    durations_seconds: tuple[int, ...] = ()
    aspect_ratios: tuple[str, ...] = ()
    default: bool = False


@dataclass(frozen=True)
class Catalog:
    """The offered models, looked up by id and kind."""

    models: tuple[ModelSpec, ...]
    _by_id: Mapping[str, ModelSpec] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {m.id: m for m in self.models})

    @classmethod
    def of(cls, models: Iterable[ModelSpec]) -> Catalog:
        return cls(tuple(models))

    def resolve(self, kind: str, model_id: str | None, field_path: str) -> ModelSpec:
        """The model a request names (or the kind's default); BAD_USER_INPUT when not offered for it."""
        if model_id is None:
            for spec in self.models:
                if spec.kind == kind and spec.default:
                    return spec
            for spec in self.models:
                if spec.kind == kind:
                    return spec
            raise bad_input(field_path, f"no model is configured for {kind.lower()} generation")
        found = self._by_id.get(model_id)
        if found is None or found.kind != kind:
            offered = ", ".join(m.id for m in self.models if m.kind == kind)
            raise bad_input(
                field_path, f"model {model_id!r} is not offered for {kind.lower()}; use one of: {offered}"
            )
        return found

    def get(self, model_id: str) -> ModelSpec | None:
        return self._by_id.get(model_id)


def cost_usd(spec: ModelSpec, units: Mapping[str, float]) -> float:
    """The price of a finished generation from the units the generator reported."""
    if spec.cost_unit == "image":
        quantity = units.get("images", 0.0)
    elif spec.cost_unit == "video_second":
        quantity = units.get("video_seconds", 0.0)
    elif spec.cost_unit == "1k_tokens":
        quantity = (units.get("input_tokens", 0.0) + units.get("output_tokens", 0.0)) / 1000.0
    else:
        quantity = 0.0
    return round(spec.unit_cost_usd * quantity, 6)
