"""Fuzzing the readers: valid tomogram files, then truncated, bit-flipped or given absurd header fields.

The property every reader must keep, whatever the bytes: :func:`osnet_monai.readers.load_tomogram`
and :func:`osnet_monai.readers.open_frames` either return a valid tomogram or raise the project's
one-line :class:`~osnet_monai.readers.InputError` naming the file; never another exception, never a
warning, log record or C-library line on the console, and (checked by the callers' time limit)
never a hang. ``tests/readers/test_fuzz_readers.py`` runs a few hundred cases with hypothesis;
``scripts/fuzz.py`` runs thousands per format and writes the counts to ``docs/reliability.md``.

A case is drawn in two steps, so a failure shrinks to a readable one: a :class:`Spec` of a valid
file (format, shape, stored type, voxel size, time step, medium RI), then one :class:`Mutation`.
"""

from __future__ import annotations

import gzip
import logging
import math
import os
import re
import struct
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from osnet_monai.readers import MAX_VOXEL_UM, MIN_VOXEL_UM, InputError, load_tomogram, open_frames
from osnet_monai.readers._util import MAX_TIME_STEP_S, plausible_medium_ri

__all__ = [
    "ABSURD", "FORMATS", "Campaign", "Mutation", "Outcome", "Spec", "campaign_table", "cases", "check_file",
    "run_campaign", "valid_problem", "write_case",
]

#: format -> file suffixes drawn for it
FORMATS: dict[str, tuple[str, ...]] = {
    "nifti": (".nii", ".nii.gz"),
    "tiff": (".tif", ".ome.tif"),
    "tcf": (".TCF", ".h5"),
    "itk": (".nrrd", ".mha"),
}
#: values a corrupt or hostile header field takes: zero, negative, huge, tiny, not a number
ABSURD: tuple[float, ...] = (0, -1, 1, 2, 255, 32767, -32768, 65535, 2**31 - 1, 1e-30, 1e9, 1e30, 1e300,
                             math.nan, math.inf, -math.inf)
DEFAULT_SPACING = (0.2, 0.2, 0.5)

# header fields each format's mutation can set to an absurd value
NIFTI_FIELDS = ("dim0", "dim1", "dim2", "dim3", "dim4", "dim5", "datatype", "bitpix", "pixdim1", "pixdim3",
                "pixdim4", "vox_offset", "scl_slope", "scl_inter", "xyzt_units", "srow_x0", "sform_code", "qform_code")
TIFF_FIELDS = ("ImageWidth", "ImageLength", "BitsPerSample", "SampleFormat", "SamplesPerPixel", "Compression",
               "StripOffsets", "StripByteCounts", "RowsPerStrip", "XResolution", "YResolution",
               "images=", "slices=", "frames=", "spacing=", "finterval=", "unit=", "PhysicalSizeX=", "SizeZ=")
TCF_FIELDS = ("ResolutionX", "ResolutionZ", "SizeX", "DataCount", "TimeInterval", "Time", "RI", "FormatVersion",
              "dtype", "shape", "unwritten", "extra_frame_shape", "attr_type", "no_3d", "tile_offset")
ITK_FIELDS = ("sizes", "type", "dimension", "spacing", "encoding", "components")


@dataclass(frozen=True)
class Spec:
    """A valid file: ``fmt`` in :data:`FORMATS`, data (X, Y, Z, T) stored as ``dtype``."""

    fmt: str
    suffix: str
    shape: tuple[int, int, int, int]
    dtype: str = "float32"  # float32 / float64 RI, or uint16 RI x 10,000
    spacing: tuple[float, float, float] = DEFAULT_SPACING
    time_step_s: float = 10.0
    medium_ri: float = 1.337
    seed: int = 0


@dataclass(frozen=True)
class Mutation:
    """What is done to the valid file: ``none``; ``truncate`` to ``fraction`` of its bytes; ``flip``
    one bit at each ``(fraction of the length, bit)``; ``field``: set header ``name`` to ``value``."""

    kind: str = "none"
    fraction: float = 1.0
    flips: tuple[tuple[float, int], ...] = ()
    name: str = ""
    value: float = 0.0


@dataclass
class Outcome:
    """``status``: ``valid`` (a tomogram that passes :func:`valid_problem`), ``refused`` (one
    ``InputError`` line naming the file) or ``escaped`` (anything else; ``detail`` says what)."""

    status: str
    detail: str = ""
    seconds: float = 0.0
    messages: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------- valid files
def _ri(spec: Spec) -> np.ndarray:
    """(X, Y, Z, T) refractive index: medium with a brighter blob and noise, in the stored type."""
    rng = np.random.default_rng(spec.seed)
    x, y, z, t = spec.shape
    ri = np.full((x, y, z, t), spec.medium_ri) + rng.normal(0, 0.003, (x, y, z, t))
    ri[x // 4 : max(x // 4 + 1, 3 * x // 4), y // 4 : max(y // 4 + 1, 3 * y // 4)] += 0.03
    if spec.dtype == "uint16":
        return np.round(ri * 1e4).astype(np.uint16)
    return ri.astype(spec.dtype)


def _nifti_bytes(spec: Spec, data: np.ndarray) -> bytes:
    import nibabel as nib

    array = data if spec.shape[3] > 1 else data[..., 0]
    image = nib.Nifti1Image(np.ascontiguousarray(array), np.diag([*spec.spacing, 1.0]))
    image.header.set_xyzt_units("micron", "sec")
    if array.ndim == 4:
        image.header.set_zooms((*spec.spacing, spec.time_step_s))
    image.header["descrip"] = f"medium_ri={spec.medium_ri:.4f}".encode()
    return image.to_bytes()


def _write_tiff(spec: Spec, data: np.ndarray, path: Path) -> None:
    import tifffile

    tzyx = data.transpose(3, 2, 1, 0)
    if spec.suffix == ".ome.tif":
        md = {"axes": "TZYX", "PhysicalSizeX": spec.spacing[0], "PhysicalSizeY": spec.spacing[1],
              "PhysicalSizeZ": spec.spacing[2], "TimeIncrement": spec.time_step_s}
        tifffile.imwrite(path, tzyx, ome=True, metadata=md, photometric="minisblack")
    else:
        md = {"axes": "TZYX", "spacing": spec.spacing[2], "unit": "um", "finterval": spec.time_step_s,
              "Info": f"medium_ri={spec.medium_ri:.4f}"}
        tifffile.imwrite(path, tzyx if spec.dtype != "float64" else tzyx.astype(np.float32), imagej=True,
                         resolution=(1 / spec.spacing[0], 1 / spec.spacing[1]), metadata=md, photometric="minisblack")


def _write_tcf(spec: Spec, data: np.ndarray, path: Path, mutation: Mutation) -> None:
    """Tomocube's layout (as :func:`osnet_monai.phantoms.write_tcf`), with an absurd field when asked."""
    import h5py

    name, value = mutation.name if mutation.kind == "field" else "", mutation.value

    def one(v, dtype=np.float64):
        return np.array([v], dtype=dtype)

    def attr(key: str, v: float, dtype=np.float64):
        if name == "attr_type" and key == "ResolutionX":  # an attribute of the wrong type: text, empty, 2D
            return [np.array([b"abc"]), np.zeros(0), np.ones((2, 2))][int(abs(value) if math.isfinite(value) else 0) % 3]
        return one(value) if name == key else one(v, dtype)  # the absurd value as float64: NaN has no int

    tzyx = data.transpose(3, 2, 1, 0)
    t_count, nz, ny, nx = tzyx.shape
    with h5py.File(path, "w") as f:
        f.attrs["FormatVersion"] = np.array([b"1.4.1" if name != "FormatVersion" else str(value).encode()])
        if name == "no_3d":
            f.create_group("Data/2DMIP")
            return
        g = f.create_group("Data/3D")
        for axis, size, res in zip("XYZ", (nx, ny, nz), spec.spacing):
            g.attrs[f"Size{axis}"] = attr(f"Size{axis}", size, np.int64)
            g.attrs[f"Resolution{axis}"] = attr(f"Resolution{axis}", res)
        g.attrs["DataCount"] = attr("DataCount", t_count, np.int64)
        g.attrs["TimeInterval"] = attr("TimeInterval", spec.time_step_s)
        stored = tzyx
        if name == "dtype":
            kinds = (np.int8, np.uint8, np.int32, np.uint32, np.float16, np.float64, np.complex64, np.bool_)
            stored = tzyx.astype(kinds[int(abs(value) if math.isfinite(value) else 0) % len(kinds)])
        for t in range(t_count):
            frame = stored[t]
            if name == "shape" and t == 0:
                frame = frame.reshape(-1) if value > 0 else frame[..., None]
            if name == "extra_frame_shape" and t == t_count - 1:
                frame = frame[:, :-1] if frame.shape[1] > 1 else np.concatenate([frame, frame], 1)
            if name == "unwritten" and t == 0:
                big = int(min(abs(value), 1e6)) if math.isfinite(value) and abs(value) >= 8 else 4096
                ds = g.create_dataset(f"{t:06d}", shape=(big, big, big), dtype=frame.dtype, chunks=(1, 8, 8))
            elif name == "tile_offset" and t == 0:
                ds = g.create_group(f"{t:06d}")
                tile = ds.create_dataset("TILE_0000", data=frame)
                tile.attrs["DataIndexOffsetPointZ"] = one(value if math.isfinite(value) else 0, np.float64)
                tile.attrs["DataIndexLastPointZ"] = one(nz - 1, np.int64)
                tile.attrs["SamplingStep"] = one(1, np.int64)
            else:
                ds = g.create_dataset(f"{t:06d}", data=frame)
            ds.attrs["Time"] = attr("Time", t * spec.time_step_s) if t else one(0.0)
        dev = f.create_group("Info/Device")
        dev.attrs["RI"] = attr("RI", spec.medium_ri)


def _write_itk(spec: Spec, data: np.ndarray, path: Path) -> None:
    import itk

    array = np.ascontiguousarray(data.transpose(3, 2, 1, 0) if spec.shape[3] > 1 else data[..., 0].transpose(2, 1, 0))
    image = itk.image_from_array(array.astype(np.float32) if spec.dtype == "float64" else array)
    image.SetSpacing([*spec.spacing, spec.time_step_s][: array.ndim])
    itk.imwrite(image, str(path))


# ------------------------------------------------------------------------------------ mutations
def _put(raw: bytearray, offset: int, fmt: str, value: float) -> None:
    """Write ``value`` as struct ``fmt`` at ``offset``, wrapped or clipped to what the type holds."""
    if fmt in "fd":
        struct.pack_into("<" + fmt, raw, offset, float(value) if fmt == "d" or abs(value) < 3e38 or not math.isfinite(value) else math.copysign(math.inf, value))
        return
    bits = struct.calcsize(fmt) * 8
    n = int(value) if math.isfinite(value) else (2 ** (bits - 1) - 1 if value > 0 else 0) if not math.isnan(value) else 0
    n = n % (1 << bits)
    if fmt.islower():
        n = n - (1 << bits) if n >= 1 << (bits - 1) else n
    struct.pack_into("<" + fmt, raw, offset, n)


_NIFTI_OFFSETS = {"dim0": (40, "h"), "datatype": (70, "h"), "bitpix": (72, "h"), "vox_offset": (108, "f"),
                  "scl_slope": (112, "f"), "scl_inter": (116, "f"), "xyzt_units": (123, "B"),
                  "srow_x0": (280, "f"), "qform_code": (252, "h"), "sform_code": (254, "h")}
_NIFTI_OFFSETS.update({f"dim{i}": (40 + 2 * i, "h") for i in range(1, 8)})
_NIFTI_OFFSETS.update({f"pixdim{i}": (76 + 4 * i, "f") for i in range(1, 8)})


def _nifti_field(raw: bytearray, name: str, value: float) -> None:
    offset, fmt = _NIFTI_OFFSETS[name]
    _put(raw, offset, fmt, value)


def _tiff_field(path: Path, name: str, value: float) -> None:
    """A tag of the first page, or a ``key=`` of the ImageJ / OME text, set to ``value``."""
    import tifffile

    raw = bytearray(path.read_bytes())
    if name.endswith("="):
        text = f"{value:g}" if name != "unit=" else ["nm", "m", "furlong", "", "\\u00B5m"][int(abs(value) if math.isfinite(value) else 0) % 5]
        key = re.escape(name[:-1]).encode()
        raw = bytearray(re.sub(rb"(" + key + rb"=\"?)[^\s\"]*", lambda m: m.group(1) + text.encode(), bytes(raw), count=1))
        path.write_bytes(bytes(raw))
        return
    with tifffile.TiffFile(path) as tif:
        tag = tif.pages[0].tags.get(name)
        if tag is None:
            return
        offset, code, count = tag.valueoffset, tag.dtype, tag.count
    fmt = {1: "B", 3: "H", 4: "I", 5: "I", 16: "Q"}.get(int(code), "I")
    for k in range(min(count, 4) if code != 5 else 1):  # RATIONAL: its numerator
        _put(raw, offset + k * struct.calcsize(fmt), fmt, value)
    path.write_bytes(bytes(raw))


def _itk_field(path: Path, name: str, value: float) -> None:
    raw = path.read_bytes()
    head_end = raw.find(b"\n\n") if path.suffix == ".nrrd" else raw.find(b"ElementDataFile")
    head, body = raw[:head_end], raw[head_end:]
    v = f"{value:g}".encode()
    nrrd, mha = {
        "sizes": (rb"(sizes:).*", rb"(DimSize =).*"),
        "type": (rb"(type:).*", rb"(ElementType =).*"),
        "dimension": (rb"(dimension:).*", rb"(NDims =).*"),
        "spacing": (rb"(space directions:).*", rb"(ElementSpacing =).*"),
        "encoding": (rb"(encoding:).*", rb"(CompressedData =).*"),
        "components": (rb"(kinds:).*", rb"(ElementNumberOfChannels =).*"),
    }[name]
    pattern = nrrd if path.suffix == ".nrrd" else mha
    if name == "sizes":
        new = b"\\1 " + b" ".join([v, b"6", b"5"])
    elif name == "type":
        new = b"\\1 " + [b"double", b"uchar", b"short", b"ulonglong", b"MET_CHAR", b"block", b"float"][int(abs(value) if math.isfinite(value) else 0) % 7]
    elif name == "spacing" and path.suffix == ".nrrd":
        new = b"\\1 (" + v + b",0,0) (0,1,0) (0,0," + v + b")"
    elif name == "encoding":
        new = b"\\1 " + [b"gzip", b"bzip2", b"ascii", b"True", b"hex"][int(abs(value) if math.isfinite(value) else 0) % 5]
    else:
        new = b"\\1 " + b" ".join([v] * 3)
    path.write_bytes(re.sub(pattern, new, head, count=1) + body)


def write_case(spec: Spec, mutation: Mutation, folder: str | os.PathLike) -> Path:
    """Write the valid file of ``spec`` into ``folder``, then apply ``mutation``; returns its path."""
    path = Path(folder) / f"case{spec.suffix}"
    data = _ri(spec)
    if spec.fmt == "nifti":
        raw = bytearray(_nifti_bytes(spec, data))
        if mutation.kind == "field":
            _nifti_field(raw, mutation.name, mutation.value)
        path.write_bytes(gzip.compress(bytes(raw), compresslevel=1) if spec.suffix.endswith(".gz") else bytes(raw))
    elif spec.fmt == "tiff":
        _write_tiff(spec, data, path)
        if mutation.kind == "field":
            _tiff_field(path, mutation.name, mutation.value)
    elif spec.fmt == "tcf":
        _write_tcf(spec, data, path, mutation)
    elif spec.fmt == "itk":
        _write_itk(spec, data, path)
        if mutation.kind == "field":
            _itk_field(path, mutation.name, mutation.value)
    else:
        raise ValueError(f"fmt must be one of {sorted(FORMATS)}, got {spec.fmt!r}")
    if mutation.kind == "truncate":
        raw = path.read_bytes()
        path.write_bytes(raw[: int(len(raw) * mutation.fraction)])
    elif mutation.kind == "flip":
        raw = bytearray(path.read_bytes())
        for where, bit in mutation.flips:
            if raw:
                raw[min(int(where * len(raw)), len(raw) - 1)] ^= 1 << (bit % 8)
        path.write_bytes(bytes(raw))
    return path


# ----------------------------------------------------------------------------------- the property
def valid_problem(array: np.ndarray, meta: dict, frame: bool = False) -> str | None:
    """What is wrong with a returned tomogram, or None: float32 (X, Y, Z[, T]), finite, a plausible
    voxel size, and a time step and medium RI that are plausible when stated."""
    ndims = (3,) if frame else (3, 4)
    if not isinstance(array, np.ndarray) or array.dtype != np.float32 or array.ndim not in ndims or array.size == 0:
        return f"returned {type(array).__name__} {getattr(array, 'dtype', '')} shape {getattr(array, 'shape', '')}"
    if not np.all(np.isfinite(array)):
        return "returned non-finite values"
    spacing = np.asarray(meta.get("spacing"), dtype=np.float64)
    if spacing.shape != (3,) or not np.all((spacing >= MIN_VOXEL_UM) & (spacing <= MAX_VOXEL_UM)):
        return f"returned voxel size {spacing}"
    if not np.all(np.isfinite(np.asarray(meta.get("affine"), dtype=np.float64))):
        return "returned a non-finite affine"
    dt = meta.get("time_step_s")
    if dt is not None and not (math.isfinite(dt) and 0 < dt <= MAX_TIME_STEP_S):
        return f"returned time step {dt}"
    if meta.get("medium_ri") is not None and plausible_medium_ri(meta["medium_ri"]) is None:
        return f"returned medium RI {meta['medium_ri']}"
    if frame and not math.isfinite(float(meta.get("time_s", 0.0))):
        return f"returned frame time {meta.get('time_s')}"
    return None


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"log {record.name}: {record.getMessage()}")


@contextmanager
def _console_watch() -> Iterator[list[str]]:
    """What would reach a user's console during the block: warnings, WARNING+ log records on the
    root logger, and bytes C libraries write to file descriptor 2 (ITK, HDF5)."""
    said: list[str] = []
    handler = _Records()
    root = logging.getLogger()
    root.addHandler(handler)
    with tempfile.TemporaryFile() as err, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        saved = os.dup(2)
        os.dup2(err.fileno(), 2)
        try:
            yield said
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            root.removeHandler(handler)
            err.seek(0)
            printed = err.read().decode("utf-8", "replace").strip()
            said += [f"warning {w.category.__name__}: {w.message}" for w in caught]
            said += handler.lines
            said += [f"stderr: {printed.splitlines()[0][:200]}"] if printed else []


def check_file(path: str | os.PathLike, default_spacing_um=DEFAULT_SPACING) -> Outcome:
    """Read ``path`` as ``segment`` does (every frame through :func:`open_frames`) and as training
    does (:func:`load_tomogram`), and classify the outcome (see :class:`Outcome`)."""
    path = os.fspath(path)
    start = time.perf_counter()
    statuses, details = [], []
    with _console_watch() as said:
        for read in (_read_whole, _read_frames):
            try:
                problem = read(path, default_spacing_um)
                statuses.append("valid" if problem is None else "escaped")
                details.append(problem or "")
            except InputError as err:
                msg = str(err)
                ok = "\n" not in msg and msg.startswith(f"{path}: ")
                statuses.append("refused" if ok else "escaped")
                details.append(msg if ok else f"InputError not one line starting with the file: {msg!r}")
            except Exception as err:  # noqa: BLE001 - the property: nothing else may escape
                statuses.append("escaped")
                details.append(f"{type(err).__name__}: {err}"[:300])
    seconds = time.perf_counter() - start
    if said:
        return Outcome("escaped", f"printed around the result: {said[0]}", seconds, said)
    if "escaped" in statuses:
        return Outcome("escaped", details[statuses.index("escaped")], seconds)
    # the two paths may disagree (frames are read lazily, whole files at once): refused wins
    status = "refused" if "refused" in statuses else "valid"
    return Outcome(status, details[statuses.index(status)], seconds)


def _read_whole(path: str, default_spacing_um) -> str | None:
    array, meta = load_tomogram(path, default_spacing_um=default_spacing_um)
    return valid_problem(array, meta)


def _read_frames(path: str, default_spacing_um) -> str | None:
    source = open_frames(path, default_spacing_um=default_spacing_um)
    for t in range(source.n_frames):
        problem = valid_problem(*source.read(t), frame=True)
        if problem:
            return f"frame {t}: {problem}"
    return None


# ------------------------------------------------------------------------- hypothesis strategies
def cases(fmt: str):
    """A hypothesis strategy of ``(Spec, Mutation)`` for ``fmt``: a quarter of the files valid, the
    rest truncated, bit-flipped or with one absurd header field (needs ``hypothesis``)."""
    from hypothesis import strategies as st

    fields = {"nifti": NIFTI_FIELDS, "tiff": TIFF_FIELDS, "tcf": TCF_FIELDS, "itk": ITK_FIELDS}[fmt]
    spec = st.builds(
        Spec,
        fmt=st.just(fmt),
        suffix=st.sampled_from(FORMATS[fmt]),
        shape=st.tuples(st.integers(2, 12), st.integers(2, 12), st.integers(1, 6), st.integers(1, 3)),
        dtype=st.sampled_from(("float32", "uint16", "float64")),
        spacing=st.tuples(*[st.sampled_from((0.1, 0.196, 0.5, 1.0))] * 3),
        time_step_s=st.sampled_from((0.5, 10.0, 600.0)),
        medium_ri=st.sampled_from((1.333, 1.337, 1.35)),
        seed=st.integers(0, 3),
    )
    absurd = st.one_of(st.sampled_from(ABSURD), st.floats(allow_nan=True, allow_infinity=True, width=32))
    mutation = st.one_of(
        st.just(Mutation()),
        st.builds(Mutation, kind=st.just("truncate"), fraction=st.floats(0.0, 0.999)),
        st.builds(Mutation, kind=st.just("flip"),
                  flips=st.lists(st.tuples(st.floats(0.0, 0.999), st.integers(0, 7)), min_size=1, max_size=8).map(tuple)),
        st.builds(Mutation, kind=st.just("field"), name=st.sampled_from(fields), value=absurd),
    )
    return st.tuples(spec, mutation)


# ---------------------------------------------------------------------------------- a campaign
@dataclass
class Campaign:
    """Counts of one format's campaign: outcome per mutation kind, the slowest file, the escapes."""

    fmt: str
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    slowest_s: float = 0.0
    escapes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def count(self, status: str | None = None, kind: str | None = None) -> int:
        return sum(n for (k, s), n in self.counts.items() if (status is None or s == status) and (kind is None or k == kind))


def run_campaign(fmt: str, examples: int, seed: int = 0, hang_s: int = 60) -> Campaign:
    """``examples`` hypothesis cases of ``fmt`` (generation only: nothing stops at a failure or
    shrinks), each written to a fresh folder and checked; a case over ``hang_s`` counts as an escape."""
    import signal

    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    campaign = Campaign(fmt)

    def hung(signum, frame):
        raise TimeoutError(f"over {hang_s} s")

    @hypothesis_seed(seed)
    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(cases(fmt))
    def one(case):
        spec, mutation = case
        previous = signal.signal(signal.SIGALRM, hung)
        signal.alarm(hang_s)
        try:
            with tempfile.TemporaryDirectory() as folder:
                outcome = check_file(write_case(spec, mutation, folder))
        except TimeoutError as err:
            outcome = Outcome("escaped", f"hang: {err}", float(hang_s))
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
        if mutation.kind == "none" and outcome.status != "valid":  # a valid file must read as one
            outcome = Outcome("escaped", f"valid file not read: {outcome.detail}", outcome.seconds)
        key = (mutation.kind, outcome.status)
        campaign.counts[key] = campaign.counts.get(key, 0) + 1
        campaign.slowest_s = max(campaign.slowest_s, outcome.seconds)
        if outcome.status == "escaped" and len(campaign.escapes) < 20:
            campaign.escapes.append(f"{spec} {mutation}: {outcome.detail}")

    one()
    return campaign


def campaign_table(campaigns: list[Campaign]) -> str:
    """Markdown: per format, the files tried and their outcomes by mutation, the slowest file."""
    kinds = ("none", "truncate", "flip", "field")
    rows = ["| format | files | valid | refused (one line) | escaped | unmutated read | truncated refused | "
            "bit-flipped refused | absurd field refused | slowest file (s) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in campaigns:
        per_kind = []
        for kind in kinds:
            status = "valid" if kind == "none" else "refused"
            per_kind.append(f"{c.count(status, kind)} / {c.count(None, kind)}")
        rows.append(f"| {c.fmt} | {c.total} | {c.count('valid')} | {c.count('refused')} | {c.count('escaped')} | "
                    + " | ".join(per_kind) + f" | {c.slowest_s:.2f} |")
    return "\n".join(rows)
