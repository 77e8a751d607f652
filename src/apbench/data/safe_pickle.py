"""Read pickled data files (CIFAR's batches) without running code from them.

``pickle.load`` calls whatever a file names (``os.system`` as easily as ``numpy.ndarray``), and a
CIFAR copy from a colleague or a mirror is not verified by anything before it is opened. This
unpickler resolves only the names plain data needs -- NumPy arrays, dtypes and scalars, and the
``_codecs.encode`` that Python 3 pickles of bytes use; dicts, lists, strings, bytes and numbers need
no name at all. Anything else is refused before it is called. (The standard library's documented way
to restrict unpickling: ``Unpickler.find_class``.)
"""
from __future__ import annotations

import codecs
import pickle

import numpy as np

try:  # NumPy 2 moved these under numpy._core; pickles written by NumPy 1 (and CIFAR's) name numpy.core
    from numpy._core.multiarray import _reconstruct, scalar
    from numpy._core.numeric import _frombuffer
except ImportError:  # pragma: no cover  (NumPy 1)
    from numpy.core.multiarray import _reconstruct, scalar
    from numpy.core.numeric import _frombuffer

_ALLOWED = {
    ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype, ("_codecs", "encode"): codecs.encode,
    **{(f"numpy.{core}.multiarray", "_reconstruct"): _reconstruct for core in ("core", "_core")},
    **{(f"numpy.{core}.multiarray", "scalar"): scalar for core in ("core", "_core")},
    **{(f"numpy.{core}.numeric", "_frombuffer"): _frombuffer for core in ("core", "_core")},
}


class RefusedPickle(pickle.UnpicklingError):
    """The file names something other than plain data: it would run code if unpickled."""


class _PlainDataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        raise RefusedPickle(f"it asks to call {module}.{name}, which is not plain data (arrays, lists, dicts, "
                            "strings); it would run code if loaded")


def load_plain(path, encoding: str = "latin1"):
    """Unpickle ``path`` allowing plain data only (``encoding`` as for Python 2 pickles, like CIFAR's)."""
    with open(path, "rb") as f:
        return _PlainDataUnpickler(f, encoding=encoding).load()
