"""Readable differences between two JSON documents, one line per changed path.

>>> json_diff({"a": 1, "b": [1, 2]}, {"a": 2, "b": [1], "c": "x"})
['~ a: 1 -> 2', '- b[1]: 2', '+ c: "x"']
"""

from __future__ import annotations

from typing import Any

import orjson


def _show(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _join(path: str, key: str) -> str:
    if key.isidentifier():
        return f"{path}.{key}" if path else key
    return f"{path}[{_show(key)}]"


def json_diff(old: Any, new: Any, path: str = "") -> list[str]:
    """Lines ``+ path: value`` (added), ``- path: value`` (removed), ``~ path: a -> b``."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            sub = _join(path, str(key))
            if key not in new:
                out.append(f"- {sub}: {_show(old[key])}")
            elif key not in old:
                out.append(f"+ {sub}: {_show(new[key])}")
            else:
                out.extend(json_diff(old[key], new[key], sub))
        return out
    if isinstance(old, list) and isinstance(new, list):
        out = []
        for i in range(max(len(old), len(new))):
            sub = f"{path}[{i}]"
            if i >= len(new):
                out.append(f"- {sub}: {_show(old[i])}")
            elif i >= len(old):
                out.append(f"+ {sub}: {_show(new[i])}")
            else:
                out.extend(json_diff(old[i], new[i], sub))
        return out
    if old == new and type(old) is type(new):
        return []
    return [f"~ {path or '$'}: {_show(old)} -> {_show(new)}"]
