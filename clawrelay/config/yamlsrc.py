"""YAML with its line numbers kept, so every config error can name `file:line` and the key.

PyYAML drops positions once it builds Python objects; composing the node tree first and
constructing from it keeps both. Duplicate keys, which PyYAML silently lets the last one win,
are errors here: in a routes file they are nearly always a paste mistake.

The file may be hostile: it is read within limits far above any real routes file, and
what passes one is refused with its line (`Refused`) before anything large is built. The composer
measures the document as it will be once every alias is expanded (an alias counts its whole
value again), so an alias bomb is refused at the alias that crosses the limit without expanding
it; nesting is counted there too, before PyYAML's composer recurses deep enough to hit Python's
recursion limit, and an alias inside the value it names (a recursive alias) is named as such.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import yaml

from clawrelay.config.schema import SourceError
from clawrelay.secrets import REF

# kept as references until used: a proxy or Redis URL may hold a password
SECRET_KEYS = frozenset({"token", "proxy", "redis"})

# Far above any real routes file (a few KiB, a few hundred values), and low enough that the worst
# file within them is read in about a second by PyYAML's pure-Python scanner, in under 100 MB.
MAX_BYTES = 256 << 10
MAX_NODES = 20_000  # values (scalars, lists, mappings) once every alias is expanded: ~1000 targets
MAX_DEPTH = 64  # lists and mappings inside each other; a real routes file nests 6 or 7 deep
MAX_NUMBER = 100  # characters in an integer: int() of longer ones is refused or slow (1:2:3:..., base 60)

_YAML = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(_YAML + t for t in ("null", "bool", "int", "float", "binary", "timestamp", "str"))
_COLLECTION_TAGS = {yaml.SequenceNode: _YAML + "seq", yaml.MappingNode: _YAML + "map"}


class Refused(yaml.YAMLError):
    """YAML this loader will not read: past a limit, or a shape a routes file never has. One line."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


class Document:
    """A parsed YAML document: plain data plus a way back from a key path to its line."""

    def __init__(self, text: str | bytes) -> None:
        """Raises `Refused` (or another `yaml.YAMLError`, with its mark) when it cannot be read."""
        if isinstance(text, bytes):
            text = decode(text)
        elif len(text) > MAX_BYTES // 4:
            _check_size(text.encode("utf-8", "surrogatepass"))
        try:
            loader = _BoundedLoader(text)
        except yaml.reader.ReaderError as e:  # a character YAML does not allow (NUL, most controls)
            raise Refused(
                text.count("\n", 0, e.position) + 1,
                f"not valid YAML: character #x{e.character:04x} is not allowed",
            ) from None
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
                    self.errors.append(
                        SourceError((*loc, str(key)), "duplicate key", key_node.start_mark.line + 1)
                    )
                out[key] = self._build(value_node, (*loc, str(key)))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._build(v, (*loc, i)) for i, v in enumerate(node.value)]
        value = self._scalar(node)
        if isinstance(value, str) and loc and loc[-1] not in SECRET_KEYS:
            value = self._expand(value, loc, node.start_mark.line + 1)
        return value

    def _scalar(self, node: yaml.Node) -> object:
        line = node.start_mark.line + 1
        if node.tag == _YAML + "value":  # a plain `=`: YAML 1.1's "default value", text to anyone else
            return node.value
        if node.tag not in _SCALAR_TAGS:  # a collection never gets here: keys are checked when composed
            raise Refused(line, _unsupported(node.tag))
        if node.tag == _YAML + "int" and len(node.value) > MAX_NUMBER:
            raise Refused(line, f"number too long ({len(node.value)} characters)")
        try:
            return self._ctor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError):
            # PyYAML's own scalar constructors: `2020-13-45` is a timestamp, `!!int ''` an IndexError
            hint = " (quote it if it is text)" if getattr(node, "style", None) is None else ""
            kind = _short(node.tag).lstrip("!")
            raise Refused(line, f"not a valid {kind}: {_clip(node.value)}{hint}") from None

    def _expand(self, value: str, loc: tuple[str | int, ...], line: int) -> str:
        """`${VAR}` in a non-secret value is read now; secrets stay references until used."""

        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in os.environ:
                self.errors.append(SourceError(loc, f"environment variable {name} is not set", line))
                return ""
            return os.environ[name]

        return REF.sub(sub, value) if "${" in value else value


def decode(data: bytes) -> str:
    """The text of a routes file: `Refused` past MAX_BYTES, or when it is not UTF-8 (naming the line)."""
    _check_size(data)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line, column = data.count(b"\n", 0, e.start) + 1, e.start - data.rfind(b"\n", 0, e.start)
        raise Refused(line, f"not UTF-8 text (byte 0x{data[e.start]:02x} in column {column})") from None


def _check_size(data: bytes) -> None:
    if len(data) > MAX_BYTES:
        raise Refused(
            data.count(b"\n", 0, MAX_BYTES) + 1,
            f"the file passes the {MAX_BYTES >> 10} KiB limit for a routes file on this line",
        )


def _short(tag: str) -> str:
    return "!!" + tag.removeprefix(_YAML) if tag.startswith(_YAML) else tag


def _unsupported(tag: str) -> str:
    return f"tag {_short(tag)} is not supported: a routes file holds plain mappings, lists and values"


def _clip(value: str, width: int = 40) -> str:
    return repr(value if len(value) <= width else value[:width] + "…")


def _line(mark: yaml.Mark) -> int:
    return mark.line + 1


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose composer measures the document as constructing it would expand it.

    Every node composed counts one value, and an alias counts the whole (expanded) value it names:
    the running total is the size of the document once built, known before anything is built.
    Depth is counted the same way, an alias adding the height of its value where it stands.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._total = 0  # values in the expanded document so far
        self._depth = 0  # lists and mappings open around the node being composed
        self._open: set[str] = set()  # anchors whose value is being composed: an alias to one is recursive
        self._measured: dict[int, tuple[int, int]] = {}  # id(node): (expanded values, expanded height)

    # PyYAML's stubs leave its events untyped (and give composing's `anchor` and `index` types it
    # never passes): events are read through these two, and those overrides say so

    def _take(self) -> Any:
        return self.get_event()  # type: ignore[no-untyped-call]

    def _peek(self) -> Any:
        return self.peek_event()  # type: ignore[no-untyped-call]

    def get_single_node(self) -> yaml.Node | None:
        self._take()  # stream start
        node = self.compose_document() if not self.check_event(yaml.StreamEndEvent) else None
        if not self.check_event(yaml.StreamEndEvent):
            raise Refused(
                _line(self._peek().start_mark),
                "a second YAML document starts here: a routes file is one document",
            )
        self._take()
        return node

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node:
        event = self._peek()
        line = _line(event.start_mark)
        if isinstance(event, yaml.AliasEvent):
            self._take()
            return self._alias(str(event.anchor), line)  # an alias always names an anchor
        anchor = event.anchor
        if anchor is not None and anchor in self.anchors:
            first = _line(self.anchors[anchor].start_mark)
            raise Refused(line, f"anchor &{anchor} is already defined on line {first}")
        start = self._total
        self._count(1, line, f"the document has more than {MAX_NODES} values")
        collection = isinstance(event, yaml.CollectionStartEvent)
        if collection:
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise Refused(line, f"nested more than {MAX_DEPTH} levels deep")
            if anchor is not None:
                self._open.add(anchor)
        node = super().compose_node(parent, index)  # type: ignore[arg-type]  # its children come back here
        assert node is not None
        height = 0
        if collection:
            self._depth -= 1
            if anchor is not None:
                self._open.discard(anchor)
            children = (
                [c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode) else node.value
            )
            height = 1 + max((self._measured[id(c)][1] for c in children), default=0)
        self._measured[id(node)] = (self._total - start, height)
        return node

    def _alias(self, anchor: str, line: int) -> yaml.Node:
        node = self.anchors.get(anchor)
        if node is None:
            raise Refused(line, f"alias *{anchor} names no anchor: &{anchor} must come before it")
        if anchor in self._open:
            raise Refused(
                line,
                f"recursive alias *{anchor}: it is inside the value &{anchor} "
                f"(line {_line(node.start_mark)}) it names",
            )
        size, height = self._measured[id(node)]
        self._count(size, line, f"alias *{anchor} expands the document to more than {MAX_NODES} values")
        if self._depth + height > MAX_DEPTH:
            raise Refused(line, f"alias *{anchor} nests the document more than {MAX_DEPTH} levels deep")
        return node

    def _count(self, values: int, line: int, message: str) -> None:
        self._total += values
        if self._total > MAX_NODES:
            raise Refused(line, message + " (the limit for a routes file)")

    def compose_sequence_node(self, anchor: str | None) -> yaml.SequenceNode:  # type: ignore[override]
        self._check_tag(yaml.SequenceNode)
        return super().compose_sequence_node(anchor)  # type: ignore[arg-type]

    def compose_mapping_node(self, anchor: str | None) -> yaml.MappingNode:  # type: ignore[override]
        self._check_tag(yaml.MappingNode)
        start = self._take()
        node = yaml.MappingNode(_YAML + "map", [], start.start_mark, None, flow_style=start.flow_style)
        if anchor is not None:
            self.anchors[anchor] = node
        while not self.check_event(yaml.MappingEndEvent):
            event = self._peek()
            line = _line(event.start_mark)
            named = self.anchors.get(event.anchor) if isinstance(event, yaml.AliasEvent) else None
            if isinstance(event, yaml.CollectionStartEvent) or isinstance(named, yaml.CollectionNode):
                seq = isinstance(event, yaml.SequenceStartEvent) or isinstance(named, yaml.SequenceNode)
                kind = "sequence" if seq else "mapping"
                raise Refused(line, f"a mapping key must be a plain value, not a {kind}")
            key = self.compose_node(node, None)
            if key.tag == _YAML + "merge":
                raise Refused(line, "`<<` merge keys are not supported: write the keys out")
            node.value.append((key, self.compose_node(node, key)))
        node.end_mark = self._take().end_mark
        return node

    def _check_tag(self, kind: type[yaml.CollectionNode]) -> None:
        event = self._peek()
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.resolve(kind, None, event.implicit)  # type: ignore[no-untyped-call]
        if tag != _COLLECTION_TAGS[kind]:
            raise Refused(_line(event.start_mark), _unsupported(tag))
