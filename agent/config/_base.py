"""The base of every config section, and finding the section model in an annotation."""

from collections.abc import Mapping
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, model_validator


def _submodel(annotation: Any) -> type[BaseModel] | None:
    """The section model in an annotation, looking through unions, Annotated and tuples."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _submodel(get_args(annotation)[0])
    if origin in (Union, UnionType, tuple, list):
        found = [_submodel(arg) for arg in get_args(annotation) if arg is not Ellipsis]
        return next((model for model in found if model is not None), None)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


class _Section(BaseModel):
    """Base of every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, allow_inf_nan=False
    )

    @model_validator(mode="before")
    @classmethod
    def _empty_means_defaults(cls, data: Any) -> Any:
        """A section or mapping left empty in YAML (``metrics:``) reads as null: use defaults."""
        if not isinstance(data, Mapping):
            return data
        return {k: v for k, v in data.items() if not (v is None and cls._has_default_mapping(k))}

    @classmethod
    def _has_default_mapping(cls, key: str) -> bool:
        info = cls.model_fields.get(key)
        if info is None or info.is_required():
            return False
        return _submodel(info.annotation) is not None or get_origin(info.annotation) is dict
