"""Error plumbing.

Validators raise one PydanticCustomError of type _ERROR_TYPE carrying a list of _Issue, each
relative to the validator's location; _issues() turns those, and pydantic's own errors, into the
lines of a ConfigError.
"""

from collections.abc import Mapping
from typing import Any, NamedTuple

from pydantic import ValidationInfo
from pydantic_core import PydanticCustomError

_ERROR_TYPE = "robustwatch_config"
_HIDDEN: Any = object()  # an issue's `got` when the input must not be shown
# Tags of the two forms of a value that may be one mapping or a list of them (pydantic puts
# the tag in an error's location; _issues() takes it out again).
_ONE, _LIST = "~one", "~list"
_TAGS = frozenset({_ONE, _LIST})


class _Issue(NamedTuple):
    key: str  # dotted path below the validator's location; "" for the location itself
    message: str
    got: Any = _HIDDEN
    note: str = ""  # said after `got`, in parentheses


class _Expect:
    """Field metadata: what a valid value looks like, in plain words, for error messages."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _problems(*issues: _Issue) -> PydanticCustomError:
    return PydanticCustomError(
        _ERROR_TYPE, "{summary}", {"summary": issues[0].message, "issues": list(issues)}
    )


def _context(info: ValidationInfo | None) -> Mapping[str, Any]:
    return (info.context if info is not None else None) or {}
