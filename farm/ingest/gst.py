"""Read GENIE gst ROOT trees with uproot, a chunk of entries at a time.

The gst ("GENIE summary tree", written by ``gntpc -f gst``; GENIE user manual, Andreopoulos et
al., arXiv:1510.05494) holds one entry per event with flat branches: ``iev``, ``neu`` (PDG),
``tgt``, ``Z``, ``A``, the process flags ``cc``, ``nc``, ``qel``, ``res``, ``dis``, ``coh``,
``mec``, …, the kinematics ``Ev``, ``El``, ``pxl``, ``pyl``, ``pzl``, ``pl``, ``cthl``, ``Q2``
(GeV, GeV²) and the weight ``wght``. Any tree of flat per-event branches reads the same way (a
NUISANCE flat tree, an experiment's own summary tree); branches holding an array per event
cannot feed a column. Only the branches the mapping names are read, entry range by entry range,
so the file is never held in memory.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import numpy as np

from farm.ingest.source import IngestError, SourceInfo

__all__ = ["GstFile"]


class GstFile:
    """An opened gst ROOT file; use :meth:`open` and close it (or use ``with``)."""

    def __init__(self, info: SourceInfo, directory: object, tree: object) -> None:
        self._info = info
        self._directory = directory
        self._tree = tree

    @classmethod
    def open(cls, path: str | os.PathLike[str], tree: str = "gst") -> GstFile:
        """Open ``path`` and its tree ``tree``; raise :class:`IngestError` naming what is wrong."""
        try:
            import uproot
        except ImportError:
            msg = "reading gst ROOT files needs uproot: pip install 'farm[ingest]'"
            raise ImportError(msg) from None

        path = Path(path)
        if not path.is_file():
            raise IngestError("no such file", path=path)
        try:
            directory = uproot.open(path)
        except (OSError, ValueError):
            # uproot's message quotes the file's first bytes: not shown
            msg = "cannot be read as a ROOT file (not ROOT, or truncated); give a gst ROOT file (gntpc -f gst)"
            raise IngestError(msg, path=path) from None
        try:
            trees = _tree_names(directory)
            if tree not in trees:
                held = ", ".join(trees) or "no trees"
                msg = f"no tree {tree!r}; the file holds {held}: set [ingest] tree in the mapping"
                raise IngestError(msg, path=path)
            obj = directory[tree]
            info = SourceInfo(
                path=path,
                format="gst",
                container=tree,
                n_events=int(obj.num_entries),
                fields=tuple(obj.keys()),
            )
        except BaseException:
            directory.close()
            raise
        return cls(info, directory, obj)

    @property
    def info(self) -> SourceInfo:
        return self._info

    def read(self, fields: Sequence[str], start: int, stop: int) -> dict[str, np.ndarray]:
        """Entries ``[start, stop)`` of ``fields``, as native-endian numpy arrays."""
        arrays = self._tree.arrays(  # type: ignore[attr-defined]
            list(fields), entry_start=start, entry_stop=stop, library="np"
        )
        out = {}
        for name in fields:
            values = np.asarray(arrays[name])
            if values.dtype == object or values.ndim != 1:
                msg = f"branch {name!r} holds a variable-length array per event; a column needs one number per event"
                raise IngestError(msg, path=self._info.path, tree=self._info.container)
            out[name] = values.astype(values.dtype.newbyteorder("="), copy=False)
        return out

    def read_array(self, name: str, start: int, stop: int) -> np.ndarray:
        """Entries ``[start, stop)`` of a branch holding an array per event, as (n, U): the
        same number of values in every event (universe weights)."""
        import awkward as ak

        values = self._tree[name].array(entry_start=start, entry_stop=stop, library="ak")  # type: ignore[attr-defined]
        try:
            table = ak.to_numpy(values)
        except ValueError:
            msg = f"branch {name!r} holds arrays of different lengths; universe weights need the same number per event"
            raise IngestError(msg, path=self._info.path, tree=self._info.container) from None
        if table.ndim != 2:
            msg = f"branch {name!r} holds one number per event; universe weights need an array per event"
            raise IngestError(msg, path=self._info.path, tree=self._info.container)
        return table

    def close(self) -> None:
        self._directory.close()  # type: ignore[attr-defined]

    def __enter__(self) -> GstFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _tree_names(directory: object) -> list[str]:
    """Trees (TTree, RNTuple) at the top of a ROOT file, without cycle numbers."""
    classes = directory.classnames()  # type: ignore[attr-defined]
    names = [
        key.split(";")[0]
        for key, cls in classes.items()
        if cls == "TTree" or cls.startswith("ROOT::RNTuple")
    ]
    return list(dict.fromkeys(names))
