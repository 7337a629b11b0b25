"""Argument checks of the public constructors and functions, done up front.

Each failure is a `ConfigurationError` (a `ConfigurationTypeError` when the type is wrong) whose
message reads ``<field>: give <what is wanted>, not/got <what was given>``, so the caller sees the
field and the fix; the CLI prints it as ``ifc: error: <field>: <fix>``.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from ._errors import ConfigurationError, ConfigurationTypeError

__all__ = ["choice", "flag", "instance", "items", "names", "number", "output_file", "path", "scorer", "shown", "text", "url",
           "whole", "wrong_type"]


def shown(value: Any) -> str:
    """A value as an error message shows it: its type and a short repr."""
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def wrong_type(field: str, wanted: str, value: Any) -> ConfigurationTypeError:
    return ConfigurationTypeError(f"{field}: give {wanted}, not {shown(value)}")


def whole(value: Any, field: str, *, low: int | None = 1, optional: bool = False) -> Any:
    """`value` as an int >= `low` (None allowed when `optional`)."""
    if value is None and optional:
        return None
    wanted = "a whole number" + (f" >= {low}" if low is not None else "") + (" (or None)" if optional else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise wrong_type(field, wanted, value)
    if low is not None and value < low:
        raise ConfigurationError(f"{field}: give {wanted}, got {value!r}")
    return int(value)


def number(value: Any, field: str, *, low: float | None = None, above: float | None = None,
           below: float | None = None, optional: bool = False) -> Any:
    """`value` as a finite float: >= `low`, > `above`, < `below` (None allowed when `optional`)."""
    if value is None and optional:
        return None
    if above is not None and below is not None:
        wanted = f"a number strictly between {above:g} and {below:g}"
    else:
        bounds = [f">= {low:g}" if low is not None else "", f"> {above:g}" if above is not None else "",
                  f"< {below:g}" if below is not None else ""]
        wanted = " ".join(["a finite number", *filter(None, bounds)])
    wanted += " (or None)" if optional else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise wrong_type(field, wanted, value)
    v = float(value)
    if (not math.isfinite(v) or (low is not None and v < low) or (above is not None and v <= above)
            or (below is not None and v >= below)):
        raise ConfigurationError(f"{field}: give {wanted}, got {value!r}")
    return v


def text(value: Any, field: str, *, empty: bool = False, optional: bool = False, what: str = "a string") -> Any:
    """`value` as a str (non-empty unless `empty`; None allowed when `optional`)."""
    if value is None and optional:
        return None
    wanted = what if empty else f"{what} (not empty)"
    if not isinstance(value, str):
        raise wrong_type(field, wanted + (" or None" if optional else ""), value)
    if not empty and not value.strip():
        raise ConfigurationError(f"{field}: give {wanted}, got {value!r}")
    return value


def flag(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise wrong_type(field, "True or False", value)
    return value


def instance(value: Any, cls: type | tuple[type, ...], field: str, wanted: str, *, optional: bool = False) -> Any:
    """`value` when it is an instance of `cls` (or None when `optional`)."""
    if (value is None and optional) or isinstance(value, cls):
        return value
    raise wrong_type(field, wanted + (" or None" if optional else ""), value)


def items(value: Any, cls: type, field: str, wanted: str) -> list[Any]:
    """`value` as a list of `cls` instances: from any iterable but a string, bytes or a mapping."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise wrong_type(field, f"a list of {wanted}", value)
    out = list(value)
    for i, item in enumerate(out):
        instance(item, cls, f"{field}[{i}]", wanted)
    return out


def choice(value: Any, field: str, choices: Iterable[str]) -> str:
    options = list(choices)
    if not isinstance(value, str) or value not in options:
        raise ConfigurationError(f"{field}: use one of {options}, not {shown(value)}")
    return value


def names(value: Any, field: str, what: str, *, empty: bool = False, error: type[ConfigurationError] = ConfigurationError,
          type_error: type[ConfigurationError] = ConfigurationTypeError) -> tuple[str, ...]:
    """`value` as a tuple of distinct non-empty strings: a list of them, never one string
    (``Chain("public")`` would otherwise be six one-letter levels)."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise type_error(f"{field}: give a list of {what}s, like ['a', 'b'], not {shown(value)}")
    items = tuple(value)
    if not items and not empty:
        raise error(f"{field}: give at least one {what}")
    for name in items:
        if not isinstance(name, str) or not name.strip():
            raise error(f"{field}: every {what} must be a non-empty string, got {name!r}")
    if len(set(items)) != len(items):
        dup = sorted({n for n in items if items.count(n) > 1})
        raise error(f"{field}: duplicate {what} {dup}; each must appear once")
    return items


def path(value: Any, field: str, *, optional: bool = False) -> Any:
    """`value` as a non-empty path string (from a str or an os.PathLike)."""
    if value is None and optional:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise wrong_type(field, "a path (a str or pathlib.Path)" + (" or None" if optional else ""), value)
    p = os.fspath(value)
    if not isinstance(p, str) or not p:
        raise ConfigurationError(f"{field}: give a non-empty path, got {value!r}")
    return p


def output_file(value: Any, field: str) -> str:
    """`value` as the path of a file this process may write (create or replace), in a folder
    that exists."""
    p = path(value, field)
    folder = os.path.dirname(os.path.abspath(p))
    if not os.path.isdir(folder):
        raise ConfigurationError(f"{field}: the folder {folder!r} does not exist; create it first")
    if os.path.isdir(p):
        raise ConfigurationError(f"{field}: {p!r} is a folder; give a file path")
    if not os.access(p if os.path.exists(p) else folder, os.W_OK):
        raise ConfigurationError(f"{field}: {p!r} is not writable here; give a path this process may write")
    return p


def url(value: Any, field: str, *, example: str = "http://127.0.0.1:8000") -> str:
    """`value` as an http(s) URL with a host and a valid port."""
    if not isinstance(value, str):
        raise wrong_type(field, f"a URL like {example}", value)
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ConfigurationError(f"{field}: not a valid URL ({exc}); give one like {example}, not {value!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"{field}: give an http:// or https:// URL with a host, like {example}, not {value!r}")
    if port == 0:
        raise ConfigurationError(f"{field}: port 0 is not a server's port; give one like {example}")
    return value


def scorer(value: Any, field: str = "scorer", *, optional: bool = False) -> Any:
    """`value` when it looks like a `Scorer` (checked on its class, so no property runs: a
    served scorer's `max_context` would ask its server)."""
    fix = "HFScorer.load(), VLLMScorer(url, model=...) or MockScorer(...)"
    if value is None:
        if optional:
            return None
        raise ConfigurationError(f"{field}: this propagator needs a scorer; give {fix}")
    if isinstance(value, type):
        raise ConfigurationTypeError(f"{field}: give a scorer object ({fix}), not the class {value.__name__}")
    missing = [m for m in ("encode", "decode", "run") if not callable(getattr(type(value), m, None))]
    if missing:
        raise ConfigurationTypeError(f"{field}: give a Scorer ({fix}), not {shown(value)} (it has no {missing})")
    return value
