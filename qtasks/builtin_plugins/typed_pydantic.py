"""Pydantic support for typed_args: model checks, field names, cattrs hooks and error text, never importing pydantic."""

from __future__ import annotations

import sys
from typing import Any

import cattrs

__all__ = ["is_pydantic_model_class", "is_pydantic_model", "is_validation_error", "field_keys", "describe_validation_error", "install_pydantic_hooks"]


def is_pydantic_model_class(hint: Any) -> bool:
    """True when ``hint`` is a pydantic ``BaseModel`` subclass.

    pydantic is looked up in ``sys.modules`` only: a program that never imported it cannot have
    defined a model, so this never imports it (pydantic stays an optional extra).
    """
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(hint, type) and issubclass(hint, pydantic.BaseModel)


def is_pydantic_model(value: Any) -> bool:
    """True when ``value`` is an instance of a pydantic ``BaseModel`` subclass."""
    return is_pydantic_model_class(type(value))


def is_validation_error(error: BaseException) -> bool:
    """True when ``error`` is a pydantic ``ValidationError``."""
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(error, pydantic.ValidationError)


def field_keys(model: type) -> frozenset[str]:
    """The keyword names that fill ``model``'s fields: each field's name and its string alias."""
    keys: set[str] = set()
    for name, field in model.model_fields.items():  # type: ignore[attr-defined]
        keys.add(name)
        for alias in (field.alias, field.validation_alias):
            if isinstance(alias, str):
                keys.add(alias)
    return frozenset(keys)


def describe_validation_error(error: BaseException) -> str:
    """A pydantic ``ValidationError`` as one line: ``"id: Input should be a valid integer; ..."``."""
    problems = []
    for item in error.errors(include_url=False):  # type: ignore[attr-defined]
        where = ".".join(str(part) for part in item.get("loc", ()))
        problems.append(f"{where}: {item['msg']}" if where else item["msg"])
    return "; ".join(problems) or str(error)


def _structure(value: Any, model: type) -> Any:
    return model.model_validate(value)  # type: ignore[attr-defined]


def _unstructure(model: Any) -> Any:
    return model.model_dump(mode="json")


def install_pydantic_hooks(converter: cattrs.Converter) -> None:
    """Teach ``converter`` pydantic models: ``model_validate`` to structure (an instance passes
    through), ``model_dump(mode="json")`` to unstructure; nested in attrs classes and containers too."""
    converter.register_structure_hook_func(is_pydantic_model_class, _structure)
    converter.register_unstructure_hook_func(is_pydantic_model_class, _unstructure)
