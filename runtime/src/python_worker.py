"""The worker that runs functions of one Python module as tools (see `python.rs`).

Started as ``python3 -u -I -X utf8 python_worker.py MODULE_DIR MODULE_NAME``; it works on
Python 3.8-3.13 with the standard library only.

Protocol, JSON lines, UTF-8, one line per message:

- After importing the module, one line on stdout:
  ``{"ready": true, "pid": 1234, "python": "3.11.7"}``, or, if the import failed,
  ``{"ready": false, "error": {"type", "message", "traceback"}}`` and the worker exits 1.
- Then, per request line on stdin ``{"id": 7, "function": "name", "args": {...}, "cwd": "/root"}``
  (``cwd``, optional: the directory to run the call in, the first allowed root), exactly one
  response line: ``{"id": 7, "ok": true, "result": ...}`` or
  ``{"id": 7, "ok": false, "error": {"type": "ValueError", "message": "...",
  "traceback": ["tools.py:12 in f: raise ValueError(x)", ...]}}``.
  A line that is not such a request is answered with an error of type ``ProtocolError`` (its
  ``id`` when it has an integer one, else ``null``). EOF on stdin ends the worker (exit 0).

The real stdout is kept for the protocol; fd 1 and ``sys.stdout`` go to stderr, and fd 0 and
``sys.stdin`` read from the null device, so neither the module's ``print()`` nor a subprocess
it starts can corrupt or consume the protocol.
"""

import asyncio
import base64
import collections
import collections.abc
import dataclasses
import datetime
import decimal
import enum
import functools
import importlib
import inspect
import json
import math
import os
import pathlib
import sys
import traceback
import types
import typing
import uuid

MAX_RESULT_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 100
TRACEBACK_FRAMES = 5
MAX_MESSAGE_CHARS = 16 * 1024

_WORKER_FILE = os.path.normcase(os.path.abspath(__file__))
_STDLIB_DIR = os.path.normcase(os.path.dirname(os.path.abspath(os.__file__)))
_NoneType = type(None)
_UnionType = getattr(types, "UnionType", None)  # `int | None`, 3.10+
_Annotated = getattr(typing, "Annotated", None)
_EXTRA_WRAPPERS = ("Required", "NotRequired", "ReadOnly", "Final", "ClassVar")
_MODULE_DIR = ""


def _diag(msg):
    try:
        sys.stderr.write("python worker: %s\n" % msg)
        sys.stderr.flush()
    except Exception:
        pass


# --------------------------------------------------------------------------------------------
# Errors


class _ToolError(Exception):
    """An error the worker answers with: a type name, a message and (maybe) frames."""

    def __init__(self, kind, message, frames=None):
        Exception.__init__(self, message)
        self.kind = kind
        self.message = message
        self.frames = frames or []


class _ConvError(Exception):
    """An argument that does not convert to its hint; `path` names where (`argument 'p'.x`)."""

    def __init__(self, kind, path, detail):
        Exception.__init__(self, "%s: %s" % (path, detail))
        self.kind = kind
        self.path = path
        self.detail = detail


def _safe_str(x):
    try:
        s = str(x)
    except Exception:
        try:
            s = repr(x)
        except Exception:
            s = "<%s>" % type(x).__name__
    return s


def _clean_text(s, limit=MAX_MESSAGE_CHARS):
    """Text that encodes as UTF-8 (lone surrogates escaped), cut to `limit` characters."""
    s = _safe_str(s)
    if len(s) > limit:
        s = s[:limit] + " ... (%d more characters)" % (len(s) - limit)
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        s = s.encode("utf-8", "backslashreplace").decode("utf-8")
    return s


def _is_stdlib(filename):
    if filename.startswith("<frozen") or filename.startswith("<string>"):
        return True
    f = os.path.normcase(os.path.abspath(filename))
    if "site-packages" in f or "dist-packages" in f:
        return False
    return f.startswith(_STDLIB_DIR + os.sep)


def _short_path(filename):
    if filename.startswith("<"):
        return filename
    try:
        f = os.path.abspath(filename)
        if _MODULE_DIR:
            rel = os.path.relpath(f, _MODULE_DIR)
            if not rel.startswith(os.pardir) and not os.path.isabs(rel):
                return rel.replace(os.sep, "/")
        return f
    except Exception:
        return filename


def _frames(tb, keep_stdlib=True):
    """The last frames of the user's code, as `file:line in func: code`, without the worker's
    own frames and without the standard library frames that led into the user's code
    (importlib, asyncio) — kept, for a call, when the error is in the standard library only."""
    try:
        summary = traceback.extract_tb(tb)
    except Exception:
        return []
    frames = [
        f
        for f in summary
        if os.path.normcase(os.path.abspath(f.filename)) != _WORKER_FILE
        and not f.filename.startswith("<frozen")
    ]
    first = 0
    while first < len(frames) and _is_stdlib(frames[first].filename):
        first += 1
    if first < len(frames) or not keep_stdlib:
        frames = frames[first:]
    out = []
    for f in frames[-TRACEBACK_FRAMES:]:
        s = "%s:%s in %s" % (_short_path(f.filename), f.lineno, f.name)
        line = (f.line or "").strip()
        if line:
            s += ": " + line
        out.append(_clean_text(s, 1000))
    return out


def _exception_error(e, during_call=True):
    """The error object of an exception the user's code raised."""
    kind = type(e).__name__
    if isinstance(e, SystemExit):
        message = "sys.exit(%r) was called" % (e.code,)
        if during_call:
            message += "; the worker keeps running"
    else:
        message = _safe_str(e)
        notes = getattr(e, "__notes__", None)
        if isinstance(notes, (list, tuple)) and notes:
            message = "\n".join([message] + [_safe_str(n) for n in notes])
    frames = _frames(e.__traceback__, keep_stdlib=during_call)
    if isinstance(e, SyntaxError) and e.filename:
        where = "%s:%s" % (_short_path(e.filename), e.lineno)
        if e.text:
            where += ": " + e.text.strip()
        frames = (frames + [_clean_text(where, 1000)])[-TRACEBACK_FRAMES:]
    return {"type": _clean_text(kind, 200), "message": _clean_text(message), "traceback": frames}


def _tool_error(e):
    return {
        "type": _clean_text(e.kind, 200),
        "message": _clean_text(e.message),
        "traceback": list(e.frames),
    }


# --------------------------------------------------------------------------------------------
# Type hints


_HINTS_CACHE = {}


def _raw_hints(obj):
    """Hints from `__annotations__` when `get_type_hints` fails: each string annotation is
    evaluated on its own, and one that does not resolve is left out (no conversion)."""
    if isinstance(obj, type):
        anns = {}
        for klass in reversed(obj.__mro__):
            a = klass.__dict__.get("__annotations__")
            if isinstance(a, dict):
                anns.update(a)
        mod = sys.modules.get(getattr(obj, "__module__", ""), None)
        globalns = dict(getattr(mod, "__dict__", {}))
        localns = dict(vars(obj))
    else:
        a = getattr(obj, "__annotations__", None)
        anns = dict(a) if isinstance(a, dict) else {}
        try:
            globalns = getattr(inspect.unwrap(obj), "__globals__", {})
        except Exception:
            globalns = {}
        localns = None
    out = {}
    for name, ann in anns.items():
        if isinstance(ann, typing.ForwardRef):
            ann = ann.__forward_arg__
        if isinstance(ann, str):
            try:
                ann = eval(ann, globalns, localns)  # noqa: S307 - the module's own annotation
            except Exception:
                continue
        out[name] = _NoneType if ann is None else ann
    return out


def _hints(obj):
    try:
        return _HINTS_CACHE[obj]
    except (KeyError, TypeError):
        pass
    try:
        if sys.version_info >= (3, 9):
            h = typing.get_type_hints(obj, include_extras=True)
        else:
            h = typing.get_type_hints(obj)
    except Exception:
        try:
            h = _raw_hints(obj)
        except Exception:
            h = {}
    try:
        _HINTS_CACHE[obj] = h
    except TypeError:
        pass
    return h


def _special_name(x):
    return getattr(x, "_name", None) or getattr(x, "__name__", None)


def _unwrap(tp):
    """`Annotated[T, ...]`, `NewType`, `type X = ...`, `Required[T]`, `InitVar[T]` → T."""
    for _ in range(50):
        if hasattr(tp, "__metadata__") and hasattr(tp, "__origin__"):  # Annotated
            tp = tp.__origin__
            continue
        if hasattr(tp, "__supertype__"):  # NewType
            tp = tp.__supertype__
            continue
        if type(tp).__name__ == "TypeAliasType" and hasattr(tp, "__value__"):  # 3.12 `type X`
            tp = tp.__value__
            continue
        if isinstance(tp, dataclasses.InitVar):
            tp = getattr(tp, "type", typing.Any)
            continue
        origin = typing.get_origin(tp)
        if origin is not None and _special_name(origin) in _EXTRA_WRAPPERS:
            args = typing.get_args(tp)
            tp = args[0] if args else typing.Any
            continue
        break
    return tp


def _type_name(tp):
    if isinstance(tp, type):
        return tp.__qualname__
    if tp is _NoneType or tp is None:
        return "None"
    s = _safe_str(tp)
    return s.replace("typing.", "")


def _value_type(v):
    if v is None:
        return "None"
    return type(v).__name__


def _is_union(origin):
    return origin is typing.Union or (_UnionType is not None and origin is _UnionType)


def _is_pydantic_class(tp):
    return isinstance(tp, type) and (
        callable(getattr(tp, "model_validate", None))
        or (callable(getattr(tp, "parse_obj", None)) and hasattr(tp, "__fields__"))
    )


def _is_typeddict(tp):
    return (
        isinstance(tp, type)
        and issubclass(tp, dict)
        and hasattr(tp, "__total__")
        and hasattr(tp, "__annotations__")
    )


def _is_namedtuple_class(tp):
    return isinstance(tp, type) and issubclass(tp, tuple) and hasattr(tp, "_fields")


_LIST_ORIGINS = (
    list,
    collections.abc.Sequence,
    collections.abc.MutableSequence,
    collections.abc.Iterable,
    collections.abc.Collection,
    collections.abc.Reversible,
)
_SET_ORIGINS = (set, collections.abc.Set, collections.abc.MutableSet)
_DICT_ORIGINS = (dict, collections.abc.Mapping, collections.abc.MutableMapping)


# --------------------------------------------------------------------------------------------
# JSON → Python, by hint


def _fail(kind, path, detail):
    raise _ConvError(kind, path, detail)


def _guard(path, fn, *args):
    """Calls a constructor; its exception becomes a _ConvError naming the path."""
    try:
        return fn(*args)
    except _ConvError:
        raise
    except Exception as e:
        raise _ConvError(type(e).__name__, path, _safe_str(e))


def _convert(tp, v, path):
    tp = _unwrap(tp)
    if tp is None or tp is _NoneType:
        if v is None:
            return None
        _fail("TypeError", path, "expected None, got %s" % _value_type(v))
    if tp is typing.Any or tp is object or isinstance(tp, (str, typing.ForwardRef, typing.TypeVar)):
        return v
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)

    if _is_union(origin):
        if v is None and _NoneType in args:
            return None
        members = [a for a in args if a is not _NoneType]
        errors = []
        for m in members:
            try:
                return _convert(m, v, path)
            except _ConvError as e:
                errors.append(e)
        if len(errors) == 1:
            raise errors[0]
        if v is None:
            _fail("TypeError", path, "expected %s, got None" % _type_name(tp))
        parts = []
        for m, e in zip(members, errors):
            rel = e.path[len(path):] if e.path.startswith(path) else e.path
            parts.append("%s: %s%s" % (_type_name(m), rel + ": " if rel else "", e.detail))
        _fail(
            "TypeError",
            path,
            "no member of %s accepts the %s (%s)"
            % (_type_name(tp), _value_type(v), "; ".join(parts)),
        )

    if origin is typing.Literal:
        for a in args:
            if isinstance(a, enum.Enum):
                if a.value == v and type(a.value) is type(v):
                    return a
            elif a == v and type(a) is type(v):
                return a
        _fail("ValueError", path, "expected one of %s, got %r" % (", ".join(repr(a) for a in args), v))

    # Scalars: JSON already has them; only their kind is checked.
    if tp is bool:
        if isinstance(v, bool):
            return v
        _fail("TypeError", path, "expected bool, got %s" % _value_type(v))
    if tp is int:
        if isinstance(v, int) and not isinstance(v, bool):
            return v
        if isinstance(v, float) and v.is_integer():
            return int(v)
        _fail("TypeError", path, "expected int, got %s" % _value_type(v))
    if tp is float:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        _fail("TypeError", path, "expected float, got %s" % _value_type(v))
    if tp is str:
        if isinstance(v, str):
            return v
        _fail("TypeError", path, "expected str, got %s" % _value_type(v))
    if tp is bytes or tp is bytearray:
        if not isinstance(v, str):
            _fail("TypeError", path, "expected a base64 string for %s, got %s" % (tp.__name__, _value_type(v)))
        raw = _guard(path, lambda s: base64.b64decode(s, validate=True), v)
        return raw if tp is bytes else bytearray(raw)

    # Containers.
    base = origin if origin is not None else tp
    if isinstance(base, type):
        if base in _LIST_ORIGINS or base is collections.deque:
            if not isinstance(v, list):
                _fail("TypeError", path, "expected a list, got %s" % _value_type(v))
            et = args[0] if args else typing.Any
            out = [_convert(et, x, "%s[%d]" % (path, i)) for i, x in enumerate(v)]
            return collections.deque(out) if base is collections.deque else out
        if base in _SET_ORIGINS or base is frozenset:
            if not isinstance(v, list):
                _fail("TypeError", path, "expected a list for a set, got %s" % _value_type(v))
            et = args[0] if args else typing.Any
            out = [_convert(et, x, "%s[%d]" % (path, i)) for i, x in enumerate(v)]
            return _guard(path, frozenset if base is frozenset else set, out)
        if base is tuple and not _is_namedtuple_class(tp):
            if not isinstance(v, list):
                _fail("TypeError", path, "expected a list for a tuple, got %s" % _value_type(v))
            if not args:
                return tuple(v)
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(_convert(args[0], x, "%s[%d]" % (path, i)) for i, x in enumerate(v))
            if args == ((),):
                args = ()
            if len(v) != len(args):
                _fail("TypeError", path, "expected %d items, got %d" % (len(args), len(v)))
            return tuple(_convert(a, x, "%s[%d]" % (path, i)) for i, (a, x) in enumerate(zip(args, v)))
        if base in _DICT_ORIGINS and not _is_typeddict(tp):
            if not isinstance(v, dict):
                _fail("TypeError", path, "expected an object, got %s" % _value_type(v))
            if len(args) != 2:
                return dict(v)
            kt, vt = args
            out = {}
            for k, x in v.items():
                sub = "%s[%r]" % (path, k)
                out[_convert_key(kt, k, sub)] = _convert(vt, x, sub)
            return out

    if isinstance(tp, type):
        return _convert_class(tp, v, path)
    if isinstance(origin, type):  # a generic class: `Box[int]`
        return _convert_class(origin, v, path)
    return v


def _convert_class(tp, v, path):
    if _is_pydantic_class(tp):
        validate = getattr(tp, "model_validate", None) or getattr(tp, "parse_obj")
        return _guard(path, validate, v)
    if dataclasses.is_dataclass(tp):
        if not isinstance(v, dict):
            _fail("TypeError", path, "expected an object for %s, got %s" % (tp.__qualname__, _value_type(v)))
        hints = _hints(tp)
        names = [f.name for f in dataclasses.fields(tp) if f.init]
        names += [n for n, h in hints.items() if isinstance(h, dataclasses.InitVar) and n not in names]
        kwargs = {}
        for k, x in v.items():
            if k not in names:
                _fail(
                    "TypeError",
                    path,
                    "unexpected field %r for %s (its fields: %s)" % (k, tp.__qualname__, ", ".join(names)),
                )
            kwargs[k] = _convert(hints.get(k, typing.Any), x, "%s.%s" % (path, k))
        return _guard(path, lambda: tp(**kwargs))
    if _is_typeddict(tp):
        if not isinstance(v, dict):
            _fail("TypeError", path, "expected an object for %s, got %s" % (tp.__qualname__, _value_type(v)))
        hints = _hints(tp)
        return {
            k: (_convert(hints[k], x, "%s.%s" % (path, k)) if k in hints else x) for k, x in v.items()
        }
    if _is_namedtuple_class(tp):
        hints = _hints(tp)
        if isinstance(v, dict):
            kwargs = {k: _convert(hints.get(k, typing.Any), x, "%s.%s" % (path, k)) for k, x in v.items()}
            return _guard(path, lambda: tp(**kwargs))
        if isinstance(v, list):
            fields = list(tp._fields)
            items = [
                _convert(hints.get(fields[i], typing.Any) if i < len(fields) else typing.Any, x, "%s[%d]" % (path, i))
                for i, x in enumerate(v)
            ]
            return _guard(path, lambda: tp(*items))
        _fail("TypeError", path, "expected an object for %s, got %s" % (tp.__qualname__, _value_type(v)))
    if issubclass(tp, enum.Enum):
        try:
            return tp(v)
        except Exception:
            pass
        if isinstance(v, str):
            try:
                return tp[v]
            except Exception:
                pass
        choices = ", ".join(repr(m.value) for m in tp)
        _fail("ValueError", path, "%r is not a valid %s (one of: %s)" % (v, tp.__qualname__, choices))
    if issubclass(tp, pathlib.PurePath):
        if not isinstance(v, str):
            _fail("TypeError", path, "expected a path string, got %s" % _value_type(v))
        return _guard(path, tp, v)
    if issubclass(tp, (datetime.datetime, datetime.date, datetime.time)):
        if not isinstance(v, str):
            _fail("TypeError", path, "expected an ISO 8601 string for %s, got %s" % (tp.__name__, _value_type(v)))
        s = v
        has_zone = issubclass(tp, (datetime.datetime, datetime.time))
        if has_zone and s[-1:] in ("Z", "z"):
            s = s[:-1] + "+00:00"  # fromisoformat takes `Z` only from 3.11
        return _guard(path, tp.fromisoformat, s)
    if issubclass(tp, uuid.UUID):
        if not isinstance(v, str):
            _fail("TypeError", path, "expected a UUID string, got %s" % _value_type(v))
        return _guard(path, tp, v)
    if issubclass(tp, decimal.Decimal):
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            _fail("TypeError", path, "expected a decimal number or string, got %s" % _value_type(v))
        return _guard(path, tp, repr(v) if isinstance(v, float) else v)
    return v


def _convert_key(tp, k, path):
    """An object key (always a string in JSON) → the dict's key type."""
    tp = _unwrap(tp)
    origin = typing.get_origin(tp)
    if _is_union(origin):
        errors = []
        for m in typing.get_args(tp):
            if m is _NoneType:
                continue
            try:
                return _convert_key(m, k, path)
            except _ConvError as e:
                errors.append(e)
        if errors:
            raise errors[0]
        return k
    if tp is int:
        return _guard(path, int, k)
    if tp is float:
        return _guard(path, float, k)
    if tp is bool:
        if k in ("true", "True"):
            return True
        if k in ("false", "False"):
            return False
        _fail("ValueError", path, "expected a key true or false, got %r" % k)
    if origin is typing.Literal:
        for a in typing.get_args(tp):
            value = a.value if isinstance(a, enum.Enum) else a
            if value == k or (not isinstance(value, str) and _safe_str(value) == k) or (
                isinstance(value, bool) and k == ("true" if value else "false")
            ):
                return a
        _fail("ValueError", path, "expected a key among %s, got %r" % (typing.get_args(tp), k))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return _convert(tp, k, path)
        except _ConvError as e:
            for m in tp:
                if not isinstance(m.value, str) and _safe_str(m.value) == k:
                    return m
            raise e
    return _convert(tp, k, path)


# --------------------------------------------------------------------------------------------
# Python → JSON


_SUPPORTED = "return a dict, list, str, number, bool, None, dataclass, Enum, Path, datetime or bytes"


def _where(loc):
    """`result['items'][3].name` from a chain of (parent, step) pairs; a step is an index
    (int), a dict key (a 1-tuple) or an attribute name (str)."""
    parts = []
    while loc is not None:
        loc, step = loc
        if isinstance(step, int):
            parts.append("[%d]" % step)
        elif isinstance(step, tuple):
            parts.append("[%s]" % _clean_text(repr(step[0]), 80))
        else:
            parts.append("." + step)
    return "result" + "".join(reversed(parts))


def _qualified(t):
    mod = getattr(t, "__module__", None)
    name = getattr(t, "__qualname__", None) or getattr(t, "__name__", "?")
    if mod and mod != "builtins":
        return "%s.%s" % (mod, name)
    return name


class _Encoder(object):
    def __init__(self, fn_name):
        self.fn_name = fn_name

    def unsupported(self, v, loc):
        at = "" if loc is None else " at %s" % _where(loc)
        name = _qualified(type(v))
        article = "an" if name[:1].lower() in "aeiou" else "a"
        raise _ToolError(
            "UnsupportedResult",
            "the result of %s contains %s %s value%s, which has no JSON form; %s"
            % (self.fn_name, article, name, at, _SUPPORTED),
        )

    def key(self, k, loc):
        if isinstance(k, str):
            return str(k)
        if isinstance(k, enum.Enum):
            return self.key(k.value, loc)
        if isinstance(k, bool):
            return "true" if k else "false"
        if isinstance(k, int):
            return str(int(k))
        if isinstance(k, float):
            if not math.isfinite(k):
                raise _ToolError(
                    "UnsupportedResult",
                    "the result of %s has the dict key %r at %s, which JSON cannot represent"
                    % (self.fn_name, k, _where(loc)),
                )
            return repr(float(k))
        if isinstance(k, (datetime.date, datetime.time, pathlib.PurePath, uuid.UUID, decimal.Decimal)):
            return self.encode(k, loc, 0)
        raise _ToolError(
            "UnsupportedResult",
            "the result of %s has a dict key of type %s at %s; JSON object keys are strings "
            "(str, int, float, bool and Enum keys are converted)" % (self.fn_name, _qualified(type(k)), _where(loc)),
        )

    def encode(self, v, loc, depth):
        if depth > MAX_DEPTH:
            raise _ToolError(
                "ResultTooDeep",
                "the result of %s is nested more than %d levels deep (at %s); a cycle, or a "
                "structure to flatten" % (self.fn_name, MAX_DEPTH, _where(loc)),
            )
        if v is None or v is True or v is False:
            return v
        t = type(v)
        if t is str or t is int:
            return v
        if t is float:
            return self.number(v, loc)
        if isinstance(v, enum.Enum):
            return self.encode(v.value, loc, depth + 1)
        if isinstance(v, str):
            return str(v)
        if isinstance(v, bool):
            return bool(v)
        if isinstance(v, int):
            return int(v)
        if isinstance(v, float):
            return self.number(float(v), loc)
        if isinstance(v, dict):
            out = {}
            for k, x in v.items():
                sk = self.key(k, (loc, (k,)))
                if sk in out:
                    raise _ToolError(
                        "UnsupportedResult",
                        "the result of %s has two dict keys that are both %r in JSON (at %s)"
                        % (self.fn_name, sk, _where(loc)),
                    )
                out[sk] = self.encode(x, (loc, (sk,)), depth + 1)
            return out
        if isinstance(v, tuple) and hasattr(type(v), "_fields") and callable(getattr(v, "_asdict", None)):
            return self.encode(dict(v._asdict()), loc, depth)
        if isinstance(v, (list, tuple)):
            return [self.encode(x, (loc, i), depth + 1) for i, x in enumerate(v)]
        if isinstance(v, (set, frozenset)):
            try:
                items = sorted(v)
            except Exception:
                items = list(v)
            return [self.encode(x, (loc, i), depth + 1) for i, x in enumerate(items)]
        if not isinstance(v, type):
            dump = getattr(v, "model_dump", None)
            if callable(dump) and hasattr(t, "model_fields"):  # pydantic 2
                return self.encode(dump(mode="json"), loc, depth)
            legacy = getattr(v, "dict", None)
            if callable(legacy) and hasattr(t, "__fields__") and hasattr(t, "parse_obj"):  # pydantic 1
                return self.encode(legacy(), loc, depth)
            if dataclasses.is_dataclass(v):
                return {
                    f.name: self.encode(getattr(v, f.name), (loc, f.name), depth + 1)
                    for f in dataclasses.fields(v)
                }
        if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
            return v.isoformat()
        if isinstance(v, pathlib.PurePath):
            return str(v)
        if isinstance(v, uuid.UUID):
            return str(v)
        if isinstance(v, decimal.Decimal):
            return str(v)
        if isinstance(v, (bytes, bytearray)):
            return base64.b64encode(bytes(v)).decode("ascii")
        self.unsupported(v, loc)

    def number(self, f, loc):
        if math.isfinite(f):
            return f
        at = "" if loc is None else " at %s" % _where(loc)
        raise _ToolError(
            "UnsupportedResult",
            "the result of %s contains the float %r%s, which JSON cannot represent; return None "
            "or a string instead" % (self.fn_name, f, at),
        )


# --------------------------------------------------------------------------------------------
# Calling


def _available(module):
    names = []
    for name in sorted(vars(module)):
        if name.startswith("_"):
            continue
        obj = getattr(module, name, None)
        if inspect.isfunction(obj) or inspect.isbuiltin(obj):
            names.append(name)
    return names


def _lookup(module, name):
    if not isinstance(name, str) or not name:
        raise _ToolError("ProtocolError", "`function` must be a non-empty string")
    mod_name = module.__name__
    if name.startswith("__"):
        raise _ToolError("UnknownFunction", "%r is not a function of %s: names starting with '__' are refused" % (name, mod_name))
    try:
        fn = getattr(module, name)
    except AttributeError:
        fn = None
    if fn is None or not callable(fn) or isinstance(fn, types.ModuleType):
        known = _available(module)
        hint = " (its functions: %s)" % ", ".join(known[:40]) if known else ""
        if fn is None:
            why = "the module %s has no function %r" % (mod_name, name)
        else:
            why = "%s.%s is a %s, not a function" % (mod_name, name, _qualified(type(fn)))
        raise _ToolError("UnknownFunction", why + hint)
    return fn


def _bind(fn, args):
    """The positional and keyword arguments of a call, converted by the function's hints."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return [], dict(args)  # no signature (some builtins): as given
    if isinstance(fn, type):
        target = fn.__init__
    elif isinstance(fn, functools.partial):
        target = fn.func
    elif inspect.isroutine(fn):
        target = fn
    else:
        target = getattr(type(fn), "__call__", fn)  # a callable object
    hints = _hints(target)
    params = sig.parameters
    P = inspect.Parameter
    remaining = dict(args)

    def conv(p, value, path):
        if value is None and p.default is None:
            return None  # `x: int = None`: a None default is always accepted
        if p.name not in hints:
            return value
        return _convert(hints[p.name], value, path)

    var_pos = next((p for p in params.values() if p.kind == P.VAR_POSITIONAL), None)
    var_kw = next((p for p in params.values() if p.kind == P.VAR_KEYWORD), None)
    spread = var_pos is not None and var_pos.name in remaining
    if spread:
        positional = [p for p in params.values() if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)]
    else:
        positional = [p for p in params.values() if p.kind == P.POSITIONAL_ONLY]
        while positional and positional[-1].name not in remaining:
            positional.pop()
    pos = []
    for p in positional:
        if p.name in remaining:
            pos.append(conv(p, remaining.pop(p.name), "argument %r" % p.name))
        elif p.default is not P.empty:
            pos.append(p.default)
        else:
            raise _ToolError("TypeError", "missing the required argument %r" % p.name)
    if spread:
        extra = remaining.pop(var_pos.name)
        if not isinstance(extra, list):
            raise _ToolError("TypeError", "argument %r: expected a list, got %s" % (var_pos.name, _value_type(extra)))
        et = hints.get(var_pos.name, typing.Any)
        pos.extend(_convert(et, x, "argument %r[%d]" % (var_pos.name, i)) for i, x in enumerate(extra))
    kw = {}
    for name, value in remaining.items():
        p = params.get(name)
        if p is not None and p.kind in (P.POSITIONAL_OR_KEYWORD, P.KEYWORD_ONLY):
            kw[name] = conv(p, value, "argument %r" % name)
        elif var_kw is not None:
            et = hints.get(var_kw.name, typing.Any)
            kw[name] = _convert(et, value, "argument %r" % name)
        else:
            names = [q.name for q in params.values() if q.kind not in (P.VAR_POSITIONAL, P.VAR_KEYWORD)]
            raise _ToolError(
                "TypeError",
                "unexpected argument %r; the parameters of %s are: %s"
                % (name, getattr(fn, "__name__", "the function"), ", ".join(names) or "none"),
            )
    try:
        sig.bind(*pos, **kw)
    except TypeError as e:
        raise _ToolError("TypeError", _safe_str(e))
    return pos, kw


async def _await(awaitable):
    return await awaitable


def _call(module, req):
    name = req.get("function")
    args = req.get("args", {})
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise _ToolError("ProtocolError", "`args` must be a JSON object, got %s" % _value_type(args))
    fn = _lookup(module, name)
    cwd = req.get("cwd")
    if cwd is not None:
        # The first allowed root: relative paths mean what they meant to the runtime's checks.
        if not isinstance(cwd, str):
            raise _ToolError("ProtocolError", "`cwd` must be a string, got %s" % _value_type(cwd))
        try:
            os.chdir(cwd)
        except OSError as e:
            raise _ToolError("OSError", "cannot enter the first allowed root %s: %s" % (cwd, _safe_str(e)))
    try:
        pos, kw = _bind(fn, args)
    except _ConvError as e:
        raise _ToolError(e.kind, "%s: %s" % (e.path, e.detail))
    result = fn(*pos, **kw)
    if inspect.iscoroutine(result):
        result = asyncio.run(result)
    elif inspect.isawaitable(result):
        result = asyncio.run(_await(result))
    return name, _Encoder(name).encode(result, None, 0)


def _dumps(obj):
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"), check_circular=False)


def _response_line(req_id, fn_name, result):
    line = _dumps({"id": req_id, "ok": True, "result": result})
    try:
        size = len(line.encode("utf-8"))
    except UnicodeEncodeError:
        raise _ToolError(
            "UnsupportedResult",
            "the result of %s contains a string that is not valid Unicode (a lone surrogate, "
            "e.g. from an undecodable file name); decode such text with errors='replace'" % fn_name,
        )
    if size > MAX_RESULT_BYTES:
        raise _ToolError(
            "ResultTooLarge",
            "the result of %s is %.1f MiB of JSON, over the %d MiB limit; return less (a page, "
            "a summary, or a path to a file)" % (fn_name, size / 1048576.0, MAX_RESULT_BYTES // 1048576),
        )
    return line


def _error_line(req_id, error):
    return _dumps({"id": req_id, "ok": False, "error": error})


def _handle(module, raw):
    """One request line → one response line (never raises, except KeyboardInterrupt)."""
    req_id = None
    try:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise _ToolError("ProtocolError", "the request line is not UTF-8: %s" % e)
        try:
            req = json.loads(text)
        except (ValueError, RecursionError) as e:
            raise _ToolError("ProtocolError", "the request line is not JSON: %s" % e)
        if not isinstance(req, dict):
            raise _ToolError("ProtocolError", "a request is a JSON object, got %s" % _value_type(req))
        rid = req.get("id")
        if isinstance(rid, int) and not isinstance(rid, bool):
            req_id = rid
        else:
            raise _ToolError("ProtocolError", "a request needs an integer `id`")
        fn_name, result = _call(module, req)
        return _response_line(req_id, fn_name, result)
    except KeyboardInterrupt:
        raise
    except _ToolError as e:
        return _error_line(req_id, _tool_error(e))
    except BaseException as e:  # the user's code: answered, the worker lives on
        return _error_line(req_id, _exception_error(e))


# --------------------------------------------------------------------------------------------
# Main


def _send(proto, line):
    try:
        proto.write(line + "\n")
        proto.flush()
    except (BrokenPipeError, OSError, ValueError) as e:
        _diag("cannot write to the protocol stream (%s); exiting" % e)
        os._exit(1)


def _outlive_no_parent(parent):
    """Ends this worker, and what its functions started (its process group), once the process
    that started it is gone: a parent killed during a call (SIGKILL leaves no chance to stop us)
    would otherwise leave a call blocked or running on with no one to answer."""
    import threading
    import time

    def watch():
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                try:
                    os.killpg(0, 9)
                finally:
                    os._exit(1)

    threading.Thread(target=watch, name="aifirst-parent-watch", daemon=True).start()


def main(argv):
    global _MODULE_DIR
    _outlive_no_parent(os.getppid())
    # Take the real stdout and stdin for the protocol before anything of the user's runs.
    proto = os.fdopen(os.dup(1), "w", encoding="utf-8", newline="\n")
    try:
        os.dup2(2, 1)
    except OSError:  # no stderr: fd 1 goes nowhere rather than into the protocol
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.close(null)
    sys.stdout = sys.stderr
    requests = os.fdopen(os.dup(0), "rb")
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        sys.stdin = open(os.devnull, "r")
    except OSError as e:
        _diag("cannot redirect stdin: %s" % e)

    if len(argv) != 3:
        _send(proto, _dumps({"ready": False, "error": {
            "type": "UsageError",
            "message": "usage: python3 -u -I -X utf8 python_worker.py MODULE_DIR MODULE_NAME",
            "traceback": []}}))
        return 2
    module_dir, module_name = argv[1], argv[2]
    _MODULE_DIR = os.path.abspath(module_dir)
    sys.path.insert(0, _MODULE_DIR)
    sys.argv = [argv[0]]

    # A name Python already holds (a module this worker imported, a built-in one) is not the
    # module in MODULE_DIR: importing it would run other code than forge read.
    top = module_name.split(".")[0]
    if top in sys.modules or top in sys.builtin_module_names:
        _send(proto, _dumps({"ready": False, "error": {
            "type": "ImportError",
            "message": "module `%s` has the name of a module Python has already loaded (the standard library's): the one in %s would not be imported; rename it" % (top, _MODULE_DIR),
            "traceback": []}}))
        return 1
    try:
        module = importlib.import_module(module_name)
    except KeyboardInterrupt:
        raise
    except BaseException as e:
        _send(proto, _dumps({"ready": False, "error": _exception_error(e, during_call=False)}))
        return 1
    where = os.path.realpath(getattr(module, "__file__", None) or "")
    if not where.startswith(os.path.realpath(_MODULE_DIR) + os.sep):
        _send(proto, _dumps({"ready": False, "error": {
            "type": "ImportError",
            "message": "module `%s` was found at %s, not in %s: it is not the module forge read; rename it" % (module_name, where or "(built in)", _MODULE_DIR),
            "traceback": []}}))
        return 1
    _send(proto, _dumps({"ready": True, "pid": os.getpid(), "python": sys.version.split()[0]}))

    while True:
        raw = requests.readline()
        if not raw:
            return 0
        if not raw.strip():
            continue
        try:
            line = _handle(module, raw)
        except KeyboardInterrupt:
            _diag("interrupted")
            try:
                req_id = json.loads(raw.decode("utf-8")).get("id")
                if not isinstance(req_id, int) or isinstance(req_id, bool):
                    req_id = None
            except Exception:
                req_id = None
            _send(proto, _error_line(req_id, {"type": "KeyboardInterrupt", "message": "the worker was interrupted", "traceback": []}))
            return 130
        _send(proto, line)


if __name__ == "__main__":
    try:
        code = main(sys.argv)
    except KeyboardInterrupt:
        code = 130
    try:
        sys.stderr.flush()
    except Exception:
        pass
    sys.exit(code)
