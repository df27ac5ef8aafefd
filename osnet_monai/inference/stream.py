"""Tomograms as a stream of frames for MONAI's evaluator: one frame in memory, bad files reported and skipped."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch
from torch.utils.data import IterableDataset

from monai.data import MetaTensor

from osnet_monai.inference.overlap import prefetch
from osnet_monai.readers import InputError, file_stem, is_supported, open_frames, supported_suffixes
from osnet_monai.readers.registry import format_of

__all__ = ["list_inputs", "TomogramStream"]

logger = logging.getLogger(__name__)


def _supported(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and not name.startswith(".") and is_supported(name)


def list_inputs(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """The tomograms to segment, sorted: files as given, and the supported files of each folder
    (of its ``images/`` subfolder when it has one, as the phantom engine lays data out).

    Raises:
        FileNotFoundError: nothing to segment was found.
    """
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    found: list[str] = []
    for entry in map(Path, paths):
        if entry.is_dir():
            folder = entry / "images" if (entry / "images").is_dir() else entry
            found += [str(p) for p in sorted(folder.iterdir()) if _supported(p)]
        else:
            found.append(str(entry))  # a missing or unsupported file is reported by the stream; the others go on
    if not found:
        raise FileNotFoundError(f"No tomograms ({', '.join(supported_suffixes())}) in {', '.join(map(str, paths))}.")
    return found


def _name_clashes(paths: Sequence[str]) -> dict[str, str]:
    """Files whose outputs (``NAME_nucleus.nii.gz``, ...) would overwrite an earlier file's: path -> message."""
    first: dict[str, str] = {}
    clashes = {}
    for path in paths:
        stem = file_stem(path)
        if stem in first and os.path.abspath(first[stem]) != os.path.abspath(path):
            clashes[path] = f"{path}: not segmented, its outputs {stem}_* would overwrite those of {first[stem]}; rename one of them"
        first.setdefault(stem, path)
    return clashes


def _header_frames(path: str) -> int:
    """Frames of ``path`` from its header where that reads no voxels (NIfTI, TCF), else 1."""
    try:
        if format_of(path) in ("nifti", "tcf"):
            return open_frames(path).n_frames
    except Exception:  # noqa: BLE001 - a bad file is reported when the stream reaches it
        pass
    return 1


class TomogramStream(IterableDataset):
    """Yields one item per frame of every input: ``{"image": MetaTensor (X, Y, Z) RI, "ri": (X, Y, Z),
    "name", "path", "frame", "n_frames", "time_s"}`` passed through ``transform``.

    A file that cannot be read, or fails a check, or whose output name an earlier file already
    takes, is logged as one line naming it, recorded in :attr:`failures`, and skipped; the other
    files go on. Frames are read one at a time
    (:func:`osnet_monai.readers.open_frames`), so memory does not grow with the number of frames;
    with ``prefetch`` the next frame is read and preprocessed on a thread while the caller works
    on the current one (:func:`osnet_monai.inference.overlap.prefetch`).

    Args:
        inputs: files or folders (see :func:`list_inputs`).
        transform: per-frame preprocessing.
        default_spacing_um: voxel size for files without one (plain TIFF).
        rank, world_size: take every ``world_size``-th file from ``rank`` (sharded inference).
        prefetch: frames read ahead on a thread; 0 (default) reads each when it is asked for.
        skip: called with each input's path before it is read; True leaves the file out (one line
            says so), e.g. :class:`osnet_monai.inference.CompletedOutputs` for ``segment --resume``.
    """

    def __init__(
        self,
        inputs: str | os.PathLike | Sequence[str | os.PathLike],
        transform: Callable[[dict], dict] | None = None,
        default_spacing_um: Sequence[float] | None = None,
        rank: int = 0,
        world_size: int = 1,
        prefetch: int = 0,
        skip: Callable[[str], bool] | None = None,
    ) -> None:
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size), got rank={rank}, world_size={world_size}.")
        if prefetch < 0:
            raise ValueError(f"prefetch must be >= 0, got {prefetch}.")
        self.prefetch = int(prefetch)
        every_input = list_inputs(inputs)
        self.inputs = every_input[rank::world_size]
        #: inputs left out because ``skip`` said so (their outputs are complete)
        self.skipped = [path for path in self.inputs if skip is not None and skip(path)]
        if self.skipped:
            skipped = set(self.skipped)
            self.inputs = [path for path in self.inputs if path not in skipped]
        self.name_clashes = _name_clashes(every_input)  # over all files, so ranks agree
        self.transform = transform
        self.default_spacing_um = default_spacing_um
        self.failures: dict[str, str] = {}
        self.completed: list[str] = []
        #: frames of each file opened so far, and of each file read (all of a completed one)
        self.frame_counts: dict[str, int] = {}
        self.frames_read: dict[str, int] = {}
        self._header_counts: dict[str, int] | None = None

    def __iter__(self) -> Iterator[dict]:
        return prefetch(self._items(), self.prefetch)

    def _items(self) -> Iterator[dict]:
        for path in self.skipped:
            logger.info(f"{path}: outputs already complete, not segmented again (resume)")
        self.failures.clear()
        self.completed.clear()
        self.frames_read.clear()
        for path in self.inputs:
            if path in self.name_clashes:
                self._fail(path, self.name_clashes[path])
                continue
            try:
                yield from self._frames(path)
            except InputError as err:
                self._fail(path, str(err))
            except Exception as err:  # noqa: BLE001 - any failure of one file must not stop the others
                self._fail(path, f"{path}: cannot be segmented ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})")

    def _fail(self, path: str, message: str) -> None:
        self.failures[path] = message
        logger.error(message)

    def _frames(self, path: str) -> Iterator[dict]:
        source = open_frames(path, self.default_spacing_um)
        self.frame_counts[path] = source.n_frames
        self.frames_read[path] = 0
        for t in range(source.n_frames):
            # built in a helper and yielded at once: a local kept across the yield would hold the
            # frame's RI for as long as the caller works on it, beside the caller's own copy
            yield self._item(source, path, t)
            self.frames_read[path] += 1
        self.completed.append(path)

    def _item(self, source, path: str, t: int) -> dict:
        ri, meta = source.read(t)
        with warnings.catch_warnings():
            # the reader's frame is read-only (not copied); no transform writes into it
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            tensor = torch.from_numpy(ri)
        image = MetaTensor(tensor, affine=torch.as_tensor(meta["affine"]),
                           meta={k: v for k, v in meta.items() if k != "affine"})  # MetaTensor warns on both
        item = {
            "image": image,
            "ri": ri,
            "name": file_stem(path),
            "path": path,
            "frame": t,
            "n_frames": source.n_frames,
            "time_s": float(meta.get("time_s", t)),
            "time_step_s": float(source.meta.get("time_step_s") or 0.0),
        }
        if meta.get("medium_ri") is not None:
            item["medium_ri"] = float(meta["medium_ri"])
        return self.transform(item) if self.transform is not None else item

    def expected_frames(self) -> int:
        """Frames this run will yield, as far as known now: each file's count once opened, before that
        its header's (NIfTI, TCF; 1 for formats read whole), and for a refused file the frames it gave.
        The total for a progress bar; exact once every file is opened."""
        if self._header_counts is None:
            self._header_counts = {path: _header_frames(path) for path in self.inputs}
        total = 0
        for path in self.inputs:
            if path in self.failures:
                total += self.frames_read.get(path, 0)
            else:
                total += self.frame_counts.get(path, self._header_counts[path])
        return total

    def raise_if_failed(self) -> None:
        """Ends the run with a non-zero exit status when any input failed (after all were tried)."""
        if self.failures:
            lines = "\n".join(self.failures.values())
            failed = sum(1 for path in self.inputs if path in self.failures)
            # other entries are the run's own outputs (the report on a full disk)
            head = f"{failed} of {len(self.inputs)} input(s) failed" if failed else "the run's report could not be written"
            raise SystemExit(f"{head}:\n{lines}")
