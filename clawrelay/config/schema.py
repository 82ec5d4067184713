"""Closed, typed mappings for routes.yaml, checked so that every error knows its key path.

msgspec gives the classes: frozen Structs that cost little to import and build, where pydantic
cost every command ~200 ms before it did anything. The checking is done here, walking the parsed
document against the classes, for two reasons: each error is made where its path is known, never
parsed back out of a library's message; and one pass finds every error of a file, which is what
`clawrelay routes check` lists. The messages keep the wording routes files have always been
answered with ("unknown key", "missing required key", "Input should be a valid integer").

A field's type says what its value may be; `Annotated` adds to it:
- `msgspec.Meta(ge=…, le=…, min_length=…)`: bounds;
- `Before(fn)`: turns the YAML value into the field's type first (a duration, a secret);
- `Check(fn)`: checks (and may normalise) the typed value;
- `Dump(fn)`: how `routes show` prints it;
- `Tagged(fn)`: a mapping whose class is chosen by the value itself (a chain step, by its transport).
A `ValueError` raised by one of their functions is the error's message.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import msgspec


class SourceError:
    """One problem of a routes file: the key path it is at, what is wrong, and its line once known."""

    __slots__ = ("line", "loc", "message")

    def __init__(self, loc: tuple[str | int, ...], message: str, line: int | None = None) -> None:
        self.loc, self.message, self.line = loc, message, line

    def __repr__(self) -> str:
        return f"SourceError({self.loc!r}, {self.message!r}, {self.line!r})"


def dotted(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class Model(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A mapping of routes.yaml: closed (a misspelt key is an error with its line, never an option
    silently ignored) and immutable once loaded. Subclasses repeat `frozen=True` for type checkers
    (msgspec inherits it), and msgspec applies `kw_only` to a class's own fields only: a subclass
    with a required key after optional ones says `kw_only=True` itself."""


class _Marker:
    """A function a field's `Annotated` type carries (plain classes: they are built at every start)."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn


class Before(_Marker):
    __slots__ = ()


class Check(_Marker):
    __slots__ = ()


class Dump(_Marker):
    __slots__ = ()


class Tagged:
    """`fn(value)` → (the class to read it as, the mapping to read, the key that names it in paths)."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[Any], tuple[type[Model], Any, str]]) -> None:
        self.fn = fn


_INVALID: Any = object()  # what a value that failed is read as: its error is already recorded
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})
_fields_of: dict[type, tuple[msgspec.structs.FieldInfo, ...]] = {}
M = TypeVar("M", bound=Model)


def fields(cls: type[msgspec.Struct]) -> tuple[msgspec.structs.FieldInfo, ...]:
    """The class's fields with their resolved types (resolved once per class)."""
    found = _fields_of.get(cls)
    if found is None:
        found = _fields_of[cls] = msgspec.structs.fields(cls)
    return found


def validate(cls: type[M], data: object) -> tuple[M | None, list[SourceError]]:
    """`data` read as `cls`, or None; and every error, each with its key path."""
    reader = _Reader()
    value = reader.struct(cls, data, ())
    return (None if reader.errors else value), reader.errors


class _Reader:
    def __init__(self) -> None:
        self.errors: list[SourceError] = []

    def fail(self, loc: tuple[str | int, ...], message: str) -> Any:
        self.errors.append(SourceError(loc, message))
        return _INVALID

    def value(self, tp: Any, raw: Any, loc: tuple[str | int, ...]) -> Any:
        origin = get_origin(tp)
        if origin is Annotated:
            return self.annotated(tp, raw, loc)
        if tp is Any:
            return raw
        if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
            return self.struct(tp, raw, loc)
        if origin is Union or origin is types.UnionType:
            return self.union(get_args(tp), raw, loc)
        if origin is Literal:
            return self.literal(get_args(tp), raw, loc)
        if origin is list:
            if not isinstance(raw, list | tuple):
                return self.fail(loc, "Input should be a valid list")
            (item,) = get_args(tp)
            items = [self.value(item, v, (*loc, i)) for i, v in enumerate(raw)]
            return _INVALID if any(i is _INVALID for i in items) else items
        if origin is dict:
            if not isinstance(raw, dict):
                return self.fail(loc, "Input should be a valid dictionary")
            key_type, value_type = get_args(tp)
            out = {}
            for key, v in raw.items():
                at = (*loc, key if isinstance(key, str | int) and not isinstance(key, bool) else str(key))
                k, v = self.value(key_type, key, at), self.value(value_type, v, at)
                if k is not _INVALID and v is not _INVALID:
                    out[k] = v
            return out if len(out) == len(raw) else _INVALID
        leaf = _LEAVES.get(tp)
        if leaf is not None:
            try:
                return leaf(raw)
            except ValueError as e:
                return self.fail(loc, str(e))
        if isinstance(tp, type) and isinstance(raw, tp):
            return raw
        return self.fail(loc, f"Input should be an instance of {getattr(tp, '__name__', tp)}")

    def annotated(self, tp: Any, raw: Any, loc: tuple[str | int, ...]) -> Any:
        base, *extras = get_args(tp)
        try:
            for extra in extras:
                if isinstance(extra, Before):
                    raw = extra.fn(raw)
                elif isinstance(extra, Tagged):
                    cls, raw, key = extra.fn(raw)
                    return self.struct(cls, raw, (*loc, key))
        except ValueError as e:
            return self.fail(loc, str(e))
        value = self.value(base, raw, loc)
        if value is _INVALID:
            return value
        for extra in extras:
            if isinstance(extra, msgspec.Meta) and (wrong := _outside(extra, value)):
                return self.fail(loc, wrong)
        try:
            for extra in extras:
                if isinstance(extra, Check):
                    value = extra.fn(value)
        except ValueError as e:
            return self.fail(loc, str(e))
        return value

    def struct(self, cls: type[msgspec.Struct], raw: Any, loc: tuple[str | int, ...]) -> Any:
        if isinstance(raw, cls):
            return raw
        if not isinstance(raw, dict):
            return self.fail(loc, f"Input should be a valid dictionary or instance of {cls.__name__}")
        before = len(self.errors)
        known: set[str] = set()
        values: dict[str, Any] = {}
        for f in fields(cls):
            known.add(f.encode_name)
            if f.encode_name in raw:
                values[f.name] = self.value(f.type, raw[f.encode_name], (*loc, f.encode_name))
            elif f.required:
                self.fail((*loc, f.encode_name), "missing required key")
        for key in raw:
            if key not in known:
                self.fail((*loc, key if isinstance(key, str | int) else str(key)), "unknown key")
        return _INVALID if len(self.errors) > before else cls(**values)

    def union(self, options: tuple[Any, ...], raw: Any, loc: tuple[str | int, ...]) -> Any:
        if raw is None and type(None) in options:
            return None
        options = tuple(o for o in options if o is not type(None))
        if len(options) == 1:
            return self.value(options[0], raw, loc)
        # the member whose type the value already has, else the first that takes it (as pydantic)
        ordered = sorted(options, key=lambda o: _plain(o) is not type(raw))
        for option in ordered:
            reader = _Reader()
            value = reader.value(option, raw, loc)
            if not reader.errors:
                return value
        reader = _Reader()
        reader.value(ordered[0], raw, loc)
        self.errors.extend(reader.errors)
        return _INVALID

    def literal(self, choices: tuple[Any, ...], raw: Any, loc: tuple[str | int, ...]) -> Any:
        for choice in choices:
            if raw == choice and isinstance(raw, str) == isinstance(choice, str):
                return choice
        shown = [repr(c) for c in choices]
        expected = f"{', '.join(shown[:-1])} or {shown[-1]}" if len(shown) > 1 else shown[0]
        return self.fail(loc, f"must be one of {expected}")


def _plain(tp: Any) -> Any:
    return get_args(tp)[0] if get_origin(tp) is Annotated else tp


def _outside(meta: msgspec.Meta, value: Any) -> str | None:
    """What is wrong with `value` under these bounds, in pydantic's words; None when nothing is."""
    if meta.ge is not None and value < meta.ge:
        return f"Input should be greater than or equal to {meta.ge}"
    if meta.le is not None and value > meta.le:
        return f"Input should be less than or equal to {meta.le}"
    least = meta.min_length
    if least is not None and len(value) < least:
        if isinstance(value, str):
            return f"String should have at least {least} character{'' if least == 1 else 's'}"
        kind = "Dictionary" if isinstance(value, dict) else "List"
        items = f"{least} item{'' if least == 1 else 's'}"
        return f"{kind} should have at least {items} after validation, not {len(value)}"
    return None


def _str(raw: object) -> str:
    if isinstance(raw, str):
        return raw
    raise ValueError("Input should be a valid string")


def _int(raw: object) -> int:
    if isinstance(raw, int):
        return int(raw)
    if isinstance(raw, float):
        if raw.is_integer():
            return int(raw)
        raise ValueError("Input should be a valid integer, got a number with a fractional part")
    if isinstance(raw, str):
        try:
            return int(raw.strip())
        except ValueError:
            pass
        try:
            number = float(raw)  # `5.0` is 5
        except ValueError:
            number = 0.5
        if not number.is_integer():
            raise ValueError("Input should be a valid integer, unable to parse string as an integer")
        return int(number)
    raise ValueError("Input should be a valid integer")


def _float(raw: object) -> float:
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, str):
        try:
            return float(raw)
        except ValueError:
            raise ValueError("Input should be a valid number, unable to parse string as a number") from None
    raise ValueError("Input should be a valid number")


def _bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float | str):
        text = raw.strip().lower() if isinstance(raw, str) else "1" if raw == 1 else "0" if raw == 0 else ""
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ValueError("Input should be a valid boolean, unable to interpret input")
    raise ValueError("Input should be a valid boolean")


_LEAVES: dict[Any, Callable[[object], object]] = {str: _str, int: _int, float: _float, bool: _bool}


def dump(value: Any, tp: Any = Any) -> Any:
    """`value` as plain data, as `routes show` prints it: keys as written in routes.yaml, unset
    (None) fields left out, each value through its field's `Dump`."""
    while True:
        if get_origin(tp) is Annotated:
            base, *extras = get_args(tp)
            for extra in extras:
                if isinstance(extra, Dump):
                    return extra.fn(value)
            tp = base
        elif get_origin(tp) in (Union, types.UnionType):
            tp = next((o for o in get_args(tp) if o is not type(None)), Any)
        else:
            break
    if isinstance(value, msgspec.Struct):
        return {
            f.encode_name: dump(v, f.type)
            for f in fields(type(value))
            if (v := getattr(value, f.name)) is not None
        }
    args = get_args(tp)
    if isinstance(value, dict):
        return {k: dump(v, args[1] if len(args) == 2 else Any) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [dump(v, args[0] if args else Any) for v in value]
    return value
