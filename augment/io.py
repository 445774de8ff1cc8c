"""Model files: save a fitted generator and load it back, without pickle.

A model file (extension ``.augment``) holds, in this order:

1. a fixed preamble of 28 bytes: the magic ``b"AUGMENT\\0"``, the format
   version (uint32), the lengths of the header and of the weights (uint64,
   little-endian);
2. the header, UTF-8 JSON: the generator's class name and parameters, the
   package and format versions, and its fitted state (the encoder, classes,
   target and input formats, training history, seeds, ...);
3. the SHA-256 digest of the preamble, header and weights;
4. the weights: the ``state_dict`` of every torch module, plus the numeric
   arrays of the fitted state, as one safetensors blob (tensors saved from
   the CPU, so that a model trained on a GPU loads anywhere).

Loading never unpickles, imports or evaluates anything named in the file:
the class is looked up among this package's generator classes, every other
object of the fitted state among an explicit allow-list of this package's
classes (:func:`register`), and values are rebuilt by a small, explicit
decoder (JSON scalars, lists and dicts, numpy arrays and dtypes, pandas
dtypes and indexes). The torch modules are rebuilt, untrained, by the
model's ``_build_modules`` hook, then given the saved weights with
``load_state_dict(strict=True)``.
"""

import dataclasses
import hashlib
import json
import math
import os
import struct
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

__all__ = ["EXTENSION", "FORMAT_VERSION", "ModelFileError", "load", "register", "save"]

MAGIC = b"AUGMENT\x00"
FORMAT_VERSION = 1
EXTENSION = ".augment"
_PREAMBLE = struct.Struct("<8sIQQ")  # magic, format version, header and weights lengths
_DIGEST = 32  # bytes of a SHA-256 digest
_TYPE = "$type"  # the key that tags a non-JSON value in the header


class ModelFileError(ValueError):
    """A file that is not a valid augment-learn model file (it names the file)."""


# ======================================================================
# save
# ======================================================================
def save(generator, path):
    """Write a fitted generator to a model file (``.augment`` by convention).

    Parameters
    ----------
    generator : BaseGenerator
        A fitted generator of this package.
    path : str or path-like
        Where to write; an existing file is replaced (atomically).

    Returns
    -------
    path : pathlib.Path
    """
    from sklearn.utils.validation import check_is_fitted

    from . import __version__

    check_is_fitted(generator)
    name = type(generator).__name__
    if _generator_classes().get(name) is not type(generator):
        raise TypeError(
            f"{name} is not a generator of augment-learn; only those can be saved."
        )
    params = generator.get_params(deep=False)
    modules = generator._modules()
    state = {
        k: v for k, v in vars(generator).items() if k not in params and k not in modules
    }
    tensors = {}
    encoder = _Encoder(tensors)
    header = {
        "format": "augment-learn model",
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "class": name,
        "block_size": generator._block_size,
        "params": encoder.encode_fields(params, "parameter"),
        "state": encoder.encode_fields(state, "attribute"),
        "modules": sorted(modules),
    }
    for module_name, module in modules.items():
        for key, tensor in module.state_dict().items():
            # copies: safetensors refuses tensors that share memory
            tensors[f"{module_name}/{key}"] = tensor.detach().to("cpu", copy=True)
    from safetensors.torch import save as _save_tensors

    header_bytes = json.dumps(header, ensure_ascii=False, allow_nan=False).encode()
    weights = _save_tensors({k: t.contiguous() for k, t in tensors.items()})
    preamble = _PREAMBLE.pack(MAGIC, FORMAT_VERSION, len(header_bytes), len(weights))
    digest = hashlib.sha256(preamble + header_bytes + weights).digest()
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"{path}: the folder {str(path.parent)!r} does not exist."
        )
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(preamble + header_bytes + digest + weights)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return path


# ======================================================================
# load
# ======================================================================
def load(path, *, device=None):
    """Load a generator saved by :meth:`BaseGenerator.save`.

    Nothing in the file is executed: it is checked (magic bytes, format
    version, lengths, SHA-256 checksum) before anything is decoded, and only
    this package's own classes are rebuilt from it.

    Parameters
    ----------
    path : str or path-like
        A model file.
    device : str or torch.device, default=None
        Replaces the saved ``device`` parameter (say ``"cuda"`` to sample a
        CPU-trained model on a GPU). None keeps it, except that a CUDA device
        where CUDA is not available becomes ``"cpu"``, with a warning: a model
        trained on a GPU loads and samples on a laptop (and a
        ``precision="float16"``, which is for CUDA only, becomes
        ``"float32"`` there, with a warning).

    Returns
    -------
    generator : BaseGenerator
        The fitted generator. It samples exactly what the saved one would
        have sampled next: with the same ``random_state`` the same rows, and
        without one it continues the saved model's sequence of draws from
        where it was when saved.

    Raises
    ------
    ModelFileError
        The file is not a model file (a pickle, say), is truncated, was
        modified (checksum), or was written by a newer format version.
    """
    header, tensors = read(path)
    generators = _generator_classes()
    name = header.get("class")
    cls = generators.get(name)
    if cls is None:
        raise ModelFileError(
            f"{path}: the header names class {name!r}, which is not a generator "
            f"of augment-learn ({', '.join(sorted(generators))}); refusing to load it."
        )
    if header.get("block_size") != cls._block_size:
        raise ModelFileError(
            f"{path}: block size {header.get('block_size')} differs from this "
            f"version's {cls._block_size} for {name}; it cannot replay its samples."
        )
    decoder = _Decoder(tensors, path)
    try:
        params = decoder.decode(header["params"])
        state = decoder.decode(header["state"])
        module_names = header["modules"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: the header cannot be decoded ({exc}).") from exc
    if device is not None:
        params["device"] = device
    else:  # a model trained on a GPU loads on a machine without one
        from .nn.device import loadable_device

        params["device"] = loadable_device(params.get("device", "cpu"))
    if "precision" in params:  # float16 is for CUDA only
        from .nn.precision import loadable_precision

        params["precision"] = loadable_precision(params["precision"], params["device"])
    generator = cls(**params)
    vars(generator).update(state)
    with torch.random.fork_rng(devices=[]):  # layers draw default weights
        generator._fit_conditioning(None, None)  # the data layer's, empty
        generator._build_modules(generator._init_generator())
    built = generator._modules()
    if sorted(built) != sorted(module_names):
        raise ModelFileError(
            f"{path}: the file holds modules {sorted(module_names)}, but {name} "
            f"builds {sorted(built)}."
        )
    for module_name, module in built.items():
        prefix = f"{module_name}/"
        weights = {
            k[len(prefix) :]: t for k, t in tensors.items() if k.startswith(prefix)
        }
        try:
            module.load_state_dict(weights, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise ModelFileError(
                f"{path}: the weights of {module_name} do not fit {name} ({first})."
            ) from exc
        module.eval()
    return generator


def read(path):
    """Check a model file and return its header (a dict, values still
    encoded) and its tensors, without building the generator."""
    path = Path(path)
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file.") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path}: is a folder, not a model file.") from None
    if not content.startswith(MAGIC):
        raise ModelFileError(f"{path}: {_what_it_is(content)}")
    if len(content) < _PREAMBLE.size:
        raise ModelFileError(f"{path}: the file is truncated (a partial preamble).")
    _, version, header_length, weights_length = _PREAMBLE.unpack_from(content)
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: written in model format version {version} by a newer "
            f"augment-learn; this one reads up to version {FORMAT_VERSION}. "
            "Upgrade augment-learn to load it."
        )
    expected = _PREAMBLE.size + header_length + _DIGEST + weights_length
    if len(content) < expected:
        raise ModelFileError(
            f"{path}: the file is truncated ({len(content)} bytes of {expected})."
        )
    if len(content) > expected:
        raise ModelFileError(
            f"{path}: {len(content) - expected} unexpected bytes after the weights."
        )
    start = _PREAMBLE.size
    header_bytes = content[start : start + header_length]
    digest = content[start + header_length : start + header_length + _DIGEST]
    weights = content[start + header_length + _DIGEST :]
    actual = hashlib.sha256(content[:start] + header_bytes + weights).digest()
    if actual != digest:
        raise ModelFileError(
            f"{path}: checksum mismatch: the header or the weights were modified "
            "or corrupted since the file was written."
        )
    from safetensors.torch import load as _load_tensors

    try:
        header = json.loads(header_bytes.decode("utf-8"))
        tensors = _load_tensors(weights)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ModelFileError(f"{path}: the file is damaged ({exc}).") from exc
    except Exception as exc:  # safetensors' own error type
        raise ModelFileError(f"{path}: the weights are damaged ({exc}).") from exc
    if not isinstance(header, dict) or header.get("format") != "augment-learn model":
        raise ModelFileError(f"{path}: the header is not an augment-learn model's.")
    return header, tensors


def read_header(path):
    """The checked header of a model file, its values decoded (no modules
    built): what ``augment info`` shows."""
    header, tensors = read(path)
    decoder = _Decoder(tensors, path)
    return {
        **header,
        "params": decoder.decode(header["params"]),
        "state": decoder.decode(header["state"]),
    }


def _what_it_is(content):
    zlib = len(content) > 1 and content[0] == 0x78 and (0x7800 + content[1]) % 31 == 0
    compressed = zlib or content.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ"))
    if content[:1] == b"\x80" or compressed:
        return (
            "this looks like a pickle (or a compressed joblib) file, not an "
            "augment-learn model file; it was not loaded, since unpickling runs "
            "the code a file holds. "
            "Use pickle.load or joblib.load only on files you trust."
        )
    if not content:
        return "the file is empty, not an augment-learn model file."
    return "not an augment-learn model file (no AUGMENT magic bytes)."


# ======================================================================
# the allow-lists
# ======================================================================
def _generator_classes():
    """This package's generator classes by name: every subclass of
    BaseGenerator defined in a module of ``augment``."""
    from .base import BaseGenerator

    found, pending = {}, [BaseGenerator]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            pending.append(sub)
            module = sub.__module__
            public = not sub.__name__.startswith("_")
            if public and (module == "augment" or module.startswith("augment.")):
                found[sub.__name__] = sub
    return found


_REGISTRY = {}


def register(cls):
    """Allow instances of ``cls`` (a class of this package) in a model file's
    fitted state. Dataclasses save their fields, other classes their
    ``__dict__``; every value must itself be saveable. Usable as a decorator.
    """
    name = f"{cls.__module__}.{cls.__qualname__}"
    if not name.startswith("augment."):
        raise TypeError(f"{name} is not a class of augment-learn.")
    _REGISTRY[name] = cls
    return cls


def _registered():
    # the package's own state classes, imported here (not at import of io)
    from .base import _TargetFormat
    from .image.generator import ImageFormat
    from .tabular.encoder import ColumnSpec, Span, TableEncoder
    from .tabular.generator import _Format
    from .tabular.rules import Rules

    classes = (_TargetFormat, ImageFormat, ColumnSpec, Span, TableEncoder, _Format)
    for cls in (*classes, Rules):
        if f"{cls.__module__}.{cls.__qualname__}" not in _REGISTRY:
            register(cls)
    return _REGISTRY


# types a target format may remember (how ``y`` was passed)
_TYPES = {"Series": pd.Series, "DataFrame": pd.DataFrame, "list": list}
_TYPES.update({"ndarray": np.ndarray, "NoneType": type(None)})


# ======================================================================
# values <-> JSON
# ======================================================================
class _Encoder:
    """Python values to JSON-able ones; numeric arrays go to ``tensors``."""

    def __init__(self, tensors):
        self.tensors, self.n_arrays = tensors, 0
        self.registry = _registered()
        self.names = {cls: name for name, cls in self.registry.items()}

    def encode_fields(self, fields, what):
        out = {}
        for key, value in fields.items():
            try:
                out[key] = self.encode(value)
            except TypeError as exc:
                raise TypeError(f"Cannot save {what} {key!r}: {exc}") from None
        return _plain_dict(out)

    def encode(self, value):
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int) and not isinstance(value, np.generic):
            return value
        if isinstance(value, float) and not isinstance(value, np.generic):
            return value if math.isfinite(value) else _tag("float", value=repr(value))
        if isinstance(value, list):
            return [self.encode(v) for v in value]
        if isinstance(value, tuple):
            return _tag("tuple", items=[self.encode(v) for v in value])
        if isinstance(value, dict):
            if all(isinstance(k, str) for k in value) and _TYPE not in value:
                return {k: self.encode(v) for k, v in value.items()}
            items = [[self.encode(k), self.encode(v)] for k, v in value.items()]
            return _tag("dict", items=items)
        if isinstance(value, np.generic):
            if value.dtype.kind not in "biufU":
                raise TypeError(f"numpy scalar of dtype {value.dtype} is not supported")
            return _tag(
                "scalar", dtype=value.dtype.str, value=self.encode(value.item())
            )
        if isinstance(value, np.ndarray):
            return self.array(value)
        if isinstance(value, (np.dtype, pd.api.extensions.ExtensionDtype)):
            return self.dtype(value)
        if isinstance(value, pd.MultiIndex):
            raise TypeError("a MultiIndex is not supported")
        if isinstance(value, pd.RangeIndex):
            return _tag(
                "range_index",
                start=value.start,
                stop=value.stop,
                step=value.step,
                name=self.encode(value.name),
            )
        if isinstance(value, pd.Index):
            return _tag(
                "index",
                values=self.array(value.to_numpy()),
                dtype=self.dtype(value.dtype),
                name=self.encode(value.name),
            )
        if isinstance(value, pd.Series):
            return _tag(
                "series",
                values=self.array(value.to_numpy()),
                dtype=self.dtype(value.dtype),
                index=self.encode(value.index),
                name=self.encode(value.name),
            )
        if value is pd.NaT:
            return _tag("nat")
        if value is pd.NA:
            return _tag("na")
        if isinstance(value, pd.Timestamp):
            tz = None if value.tz is None else str(value.tz)
            return _tag("timestamp", value=value.isoformat(), tz=tz)
        if isinstance(value, torch.device):
            return _tag("device", name=str(value))
        if isinstance(value, type):
            return _tag("type", name=_type_name(value))
        if _is_tzinfo(value):
            return _tag("tz", name=str(value))
        from .tabular.rules import Rule

        if isinstance(value, Rule):  # rules describe themselves as plain data
            return _tag("rule", data=self.encode(value.to_dict()))
        name = self.names.get(type(value))
        if name is not None:
            if dataclasses.is_dataclass(value):
                fields = {
                    f.name: getattr(value, f.name) for f in dataclasses.fields(value)
                }
            else:
                fields = vars(value)
            state = {k: self.encode(v) for k, v in fields.items()}
            return _tag("object", **{"class": name, "state": _plain_dict(state)})
        raise TypeError(
            f"values of type {type(value).__module__}.{type(value).__qualname__} "
            "cannot be saved in a model file"
        )

    def array(self, array):
        if array.dtype.kind == "O":
            return _tag(
                "ndarray",
                dtype="|O",
                shape=list(array.shape),
                items=[self.encode(v) for v in array.ravel().tolist()],
            )
        if array.dtype.kind not in "biufcmMUS" or array.dtype.fields is not None:
            raise TypeError(f"arrays of dtype {array.dtype} are not supported")
        key, self.n_arrays = f"state/{self.n_arrays}", self.n_arrays + 1
        raw = np.ascontiguousarray(array).view(np.uint8).reshape(-1)
        self.tensors[key] = torch.from_numpy(raw.copy())
        return _tag("ndarray", dtype=array.dtype.str, shape=list(array.shape), data=key)

    def dtype(self, dtype):
        if isinstance(dtype, np.dtype):
            if dtype.fields is not None:
                raise TypeError(f"structured dtype {dtype} is not supported")
            return _tag("dtype", numpy=dtype.str)
        if isinstance(dtype, pd.CategoricalDtype):
            categories = (
                None if dtype.categories is None else self.encode(dtype.categories)
            )
            return _tag("dtype", category=categories, ordered=bool(dtype.ordered))
        if isinstance(dtype, pd.DatetimeTZDtype):
            return _tag("dtype", datetimetz=str(dtype.tz), unit=dtype.unit)
        if isinstance(dtype, pd.StringDtype):
            na = "nan" if _is_nan(dtype.na_value) else "NA"
            return _tag("dtype", string=dtype.storage, na_value=na)
        name = str(dtype)
        try:
            rebuilt = pd.api.types.pandas_dtype(name)
        except TypeError:
            rebuilt = None
        if rebuilt != dtype:
            raise TypeError(f"the pandas dtype {name} is not supported")
        return _tag("dtype", pandas=name)


class _Decoder:
    """The inverse of :class:`_Encoder`, over the allow-listed types only."""

    def __init__(self, tensors, path):
        self.tensors, self.path = tensors, path
        self.registry = _registered()

    def decode(self, value):
        if isinstance(value, list):
            return [self.decode(v) for v in value]
        if not isinstance(value, dict):
            return value
        kind = value.get(_TYPE)
        if kind is None:
            return {k: self.decode(v) for k, v in value.items()}
        if kind == "float":
            return float(value["value"])
        if kind == "tuple":
            return tuple(self.decode(v) for v in value["items"])
        if kind == "dict":
            return {self.decode(k): self.decode(v) for k, v in value["items"]}
        if kind == "scalar":
            return np.array(self.decode(value["value"]), dtype=_numpy_dtype(value))[()]
        if kind == "ndarray":
            return self.array(value)
        if kind == "dtype":
            return self.dtype(value)
        if kind == "range_index":
            name = self.decode(value["name"])
            return pd.RangeIndex(
                value["start"], value["stop"], value["step"], name=name
            )
        if kind == "index":
            values, dtype = self.array(value["values"]), self.dtype(value["dtype"])
            return pd.Index(values, dtype=dtype, name=self.decode(value["name"]))
        if kind == "series":
            return pd.Series(
                self.array(value["values"]),
                dtype=self.dtype(value["dtype"]),
                index=self.decode(value["index"]),
                name=self.decode(value["name"]),
            )
        if kind == "nat":
            return pd.NaT
        if kind == "na":
            return pd.NA
        if kind == "timestamp":
            stamp = pd.Timestamp(value["value"])
            return stamp if value["tz"] is None else stamp.tz_convert(value["tz"])
        if kind == "device":
            return torch.device(value["name"])
        if kind == "type":
            if value["name"] not in _TYPES:
                raise ValueError(f"type {value['name']!r} is not allowed")
            return _TYPES[value["name"]]
        if kind == "tz":
            return pd.DatetimeTZDtype("ns", value["name"]).tz
        if kind == "rule":  # Rule.from_dict knows only the package's rules
            from .tabular.rules import Rule

            return Rule.from_dict(self.decode(value["data"]))
        if kind == "object":
            cls = self.registry.get(value["class"])
            if cls is None:
                raise ValueError(f"class {value['class']!r} is not allowed")
            obj = cls.__new__(cls)
            vars(obj).update(self.decode(value["state"]))
            return obj
        raise ValueError(f"unknown value type {kind!r}")

    def array(self, value):
        shape = tuple(value["shape"])
        if value["dtype"] == "|O":
            items = (self.decode(v) for v in value["items"])
            return np.fromiter(items, dtype=object, count=len(value["items"])).reshape(
                shape
            )
        raw = self.tensors[value["data"]].numpy()
        array = np.frombuffer(raw.tobytes(), dtype=_numpy_dtype(value))
        return array.reshape(shape).copy()  # writable, as the saved one was

    def dtype(self, value):
        if "numpy" in value:
            dtype = np.dtype(value["numpy"])
            if dtype.fields is not None:
                raise ValueError("structured dtypes are not allowed")
            return dtype
        if "category" in value:
            categories = value["category"]
            categories = None if categories is None else self.decode(categories)
            return pd.CategoricalDtype(categories, ordered=value["ordered"])
        if "datetimetz" in value:
            return pd.DatetimeTZDtype(value["unit"], value["datetimetz"])
        if "string" in value:
            na = np.nan if value["na_value"] == "nan" else pd.NA
            return pd.StringDtype(value["string"], na_value=na)
        if "pandas" in value:
            return pd.api.types.pandas_dtype(value["pandas"])
        raise ValueError(f"unknown dtype {value!r}")


def _tag(kind, **fields):
    return {_TYPE: kind, **fields}


def _plain_dict(fields):
    return fields if _TYPE not in fields else _tag("dict", items=list(fields.items()))


def _numpy_dtype(value):
    dtype = np.dtype(value["dtype"])
    if dtype.kind not in "biufcmMUS" or dtype.fields is not None:
        raise ValueError(f"dtype {value['dtype']!r} is not allowed")
    return dtype


def _type_name(cls):
    for name, known in _TYPES.items():
        if issubclass(cls, known):
            return name
    return "ndarray"  # how targets of any other type are given back


def _is_tzinfo(value):
    import datetime

    return isinstance(value, datetime.tzinfo)


def _is_nan(value):
    return isinstance(value, float) and math.isnan(value)
