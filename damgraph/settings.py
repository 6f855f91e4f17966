"""How a setting is declared, checked and read: a dataclass field carrying
its help text, choices and valid range (:func:`setting`), the check every
config runs when it is made (:func:`check_settings`), a setting read from
text in its type (:func:`read_setting`), and the settings a command line
set. :mod:`damgraph.config` declares the runs' settings with these. Imports
nothing heavy."""
from __future__ import annotations

import argparse
import math
import numbers
import re
from dataclasses import field, fields, replace
from typing import Any, Dict, Optional, Sequence


def setting(default: Any, help: str, choices: Optional[Sequence[str]] = None, low: Optional[float] = None,
            high: Optional[float] = None, low_open: bool = False, high_open: bool = False,
            optional: bool = False, pattern: Optional[str] = None) -> Any:
    """A dataclass field with its help text, choices and valid range
    (``[low, high]``, either end open with :obj:`low_open` / :obj:`high_open`;
    ``None`` allowed with :obj:`optional`; a string matching :obj:`pattern`)."""
    return field(default=default, metadata=dict(help=help, choices=choices, low=low, high=high,
                                                low_open=low_open, high_open=high_open, optional=optional,
                                                pattern=pattern))


def _range_text(meta: Dict[str, Any]) -> str:
    low, high = meta["low"], meta["high"]
    if high is None:
        return f"> {low:g}" if meta["low_open"] else f">= {low:g}"
    return f"in {'(' if meta['low_open'] else '['}{low:g}, {high:.10g}{')' if meta['high_open'] else ']'}"


def setting_type(f: Any) -> type:
    """The type a setting holds: its default's, or for a setting that may be
    ``None`` an ``int`` when it has a range, else a ``str``."""
    if f.default is not None:
        return type(f.default)
    return int if f.metadata.get("low") is not None else str


def read_setting(config: type, name: str, text: str) -> Any:
    """The value of setting :obj:`name` of the config class :obj:`config`
    written as :obj:`text`, in the setting's type (``true``/``false`` for a
    switch, ``none`` for an unset optional one)."""
    by_name = {f.name: f for f in fields(config)}
    if name not in by_name:
        raise ValueError(f"unknown setting {name!r}: use one of {', '.join(by_name)}")
    f, lowered = by_name[name], text.strip().lower()
    if lowered == "none" and f.metadata.get("optional"):
        return None
    kind = setting_type(f)
    if kind is bool:
        if lowered not in ("true", "false"):
            raise ValueError(f"{name} must be true or false, got {text!r}")
        return lowered == "true"
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{name} must be {'an integer' if kind is int else 'a number'}, got {text!r}") from None


def check_settings(config: Any) -> None:
    """Check every field of :obj:`config` against its type, choices and
    range; raise :class:`TypeError` / :class:`ValueError` naming the setting."""
    for f in fields(config):
        value, meta = getattr(config, f.name), f.metadata
        if value is None:
            if not meta.get("optional"):
                raise TypeError(f"{f.name} must not be None")
            continue
        kind = setting_type(f)
        if kind is bool:
            if not isinstance(value, bool):
                raise TypeError(f"{f.name} must be True or False, got {value!r}")
            continue
        if kind is int:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"{f.name} must be an integer, got {value!r}")
        elif kind is float:
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"{f.name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number, got {value!r}")
        elif not isinstance(value, str):
            raise TypeError(f"{f.name} must be a string, got {value!r}")
        elif meta.get("pattern") and not re.fullmatch(meta["pattern"], value):
            raise ValueError(f"unknown {f.name} {value!r}: use {meta['help']}")
        if meta.get("choices") and value not in meta["choices"]:
            raise ValueError(f"unknown {f.name} {value!r}: use one of {', '.join(meta['choices'])}")
        low, high = meta.get("low"), meta.get("high")
        if low is not None and (value < low or (meta["low_open"] and value == low)) or \
                high is not None and (value > high or (meta["high_open"] and value == high)):
            raise ValueError(f"{f.name} must be {_range_text(meta)}, got {value!r}")


def settings_from_args(args: argparse.Namespace, names: Sequence[str]) -> Dict[str, Any]:
    """The settings among :obj:`names` that :obj:`args` sets (not ``None``)."""
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}


def with_settings(config: Any, **settings: Any) -> Any:
    """:obj:`config` with :obj:`settings` (``None`` values ignored)."""
    return replace(config, **{k: v for k, v in settings.items() if v is not None})
