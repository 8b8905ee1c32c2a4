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


_KIND_SHAPE: dict[str, dict[str, object]] = {
    "IMAGE": {"cost_unit": "image", "max_count": 4, "aspect_ratios": ASPECT_RATIOS_IMAGE},
    "VIDEO": {
        "cost_unit": "video_second",
        "durations_seconds": (4, 6, 8),
        "aspect_ratios": ASPECT_RATIOS_VIDEO,
    },
    "TEXT": {"cost_unit": "1k_tokens"},
    "UPSCALE": {"cost_unit": "image", "max_count": 1},
}
_DISPLAY = {"IMAGE": "Image", "VIDEO": "Video", "TEXT": "Text", "UPSCALE": "Upscale"}


def model_spec(kind: str, model_id: str, unit_cost_usd: float, *, default: bool = False) -> ModelSpec:
    """A model of a kind, with the parameter ranges and cost unit of that kind."""
    shape = _KIND_SHAPE[kind]
    return ModelSpec(
        model_id,
        kind,
        f"{_DISPLAY[kind]}: {model_id}",
        unit_cost_usd,
        str(shape["cost_unit"]),
        max_count=shape.get("max_count"),  # type: ignore[arg-type]
        durations_seconds=shape.get("durations_seconds", ()),  # type: ignore[arg-type]
        aspect_ratios=shape.get("aspect_ratios", ()),  # type: ignore[arg-type]
        default=default,
    )


def parse_extra_model(entry: str) -> tuple[str, str, float]:
    """`KIND:model-id:price` (e.g. `IMAGE:imagen-4.0-generate-001:0.04`) as (kind, id, price)."""
    parts = entry.strip().split(":")
    if len(parts) != 3 or parts[0].upper() not in _KIND_SHAPE or not parts[1].strip():
        raise ValueError(
            f"expected KIND:model-id:price with KIND one of {', '.join(_KIND_SHAPE)}, got {entry!r}"
        )
    try:
        price = float(parts[2])
    except ValueError:
        raise ValueError(f"the price of {parts[1]!r} is not a number: {parts[2]!r}") from None
    if price < 0:
        raise ValueError(f"the price of {parts[1]!r} is negative")
    return parts[0].upper(), parts[1].strip(), price


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
