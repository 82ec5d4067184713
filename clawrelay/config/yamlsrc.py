"""YAML with its line numbers kept, so every config error can name `file:line` and the key.

PyYAML drops positions once it builds Python objects; composing the node tree first and
constructing from it keeps both. Duplicate keys, which PyYAML silently lets the last one win,
are errors here: in a routes file they are nearly always a paste mistake.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import yaml

from clawrelay.secrets import REF

SECRET_KEYS = frozenset({"token", "proxy"})  # kept as references until used: a proxy URL may hold a password


@dataclass
class SourceError:
    loc: tuple[str | int, ...]
    message: str
    line: int | None = None


def dotted(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class Document:
    """A parsed YAML document: plain data plus a way back from a key path to its line."""

    def __init__(self, text: str) -> None:
        loader = yaml.SafeLoader(text)
        try:
            self.root = loader.get_single_node()
        finally:
            loader.dispose()
        self.errors: list[SourceError] = []
        self._ctor = yaml.constructor.SafeConstructor()
        self.data = self._build(self.root, ()) if self.root is not None else None

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        node = self.root
        if node is None:
            return None
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                for key, value in node.value:
                    if key.value == str(part):
                        node = value
                        break
                else:
                    break
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                node = node.value[part]
            else:
                break
        return node.start_mark.line + 1

    def _build(self, node: yaml.Node, loc: tuple[str | int, ...]) -> object:
        if isinstance(node, yaml.MappingNode):
            out: dict[object, object] = {}
            for key_node, value_node in node.value:
                key = self._scalar(key_node)
                if key in out:
                    self.errors.append(SourceError((*loc, str(key)), "duplicate key",
                                                   key_node.start_mark.line + 1))
                out[key] = self._build(value_node, (*loc, str(key)))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._build(v, (*loc, i)) for i, v in enumerate(node.value)]
        value = self._scalar(node)
        if isinstance(value, str) and loc and loc[-1] not in SECRET_KEYS:
            value = self._expand(value, loc, node.start_mark.line + 1)
        return value

    def _scalar(self, node: yaml.Node) -> object:
        return self._ctor.construct_object(node, deep=True)

    def _expand(self, value: str, loc: tuple[str | int, ...], line: int) -> str:
        """`${VAR}` in a non-secret value is read now; secrets stay references until used."""

        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in os.environ:
                self.errors.append(SourceError(loc, f"environment variable {name} is not set", line))
                return ""
            return os.environ[name]

        return REF.sub(sub, value) if "${" in value else value
