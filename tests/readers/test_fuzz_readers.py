"""Fuzzed inputs: every reader gives a valid tomogram or one InputError line, nothing else, quietly.

Property-based (hypothesis, :mod:`osnet_monai.fuzzing`): valid files of each format, then truncated,
bit-flipped or with one absurd header field. CI runs ``OSNET_FUZZ_EXAMPLES`` (default 50) cases
per format, derandomised so a failure reproduces; ``scripts/fuzz.py`` runs thousands. Below them,
one test per failure the fuzzer found, kept as a plain regression test.
"""

from __future__ import annotations

import gzip
import logging
import os
import signal
import struct
import tempfile
import threading
import warnings
from contextlib import contextmanager

import h5py
import nibabel as nib
import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from osnet_monai.fuzzing import FORMATS, Mutation, Spec, cases, check_file, write_case
from osnet_monai.readers import InputError, load_tomogram, open_frames

EXAMPLES = int(os.environ.get("OSNET_FUZZ_EXAMPLES", "50"))
#: far above any case's time (hundredths of a second): only a hang trips it, not a slow machine
HANG_S = 60

FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@contextmanager
def hang_guard(seconds: int = HANG_S):
    def hung(signum, frame):
        raise TimeoutError(f"reading one small file took over {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@FUZZ
@given(data=st.data())
def test_fuzzed_file_is_a_tomogram_or_one_line(fmt, data):
    spec, mutation = data.draw(cases(fmt), label="case")
    with tempfile.TemporaryDirectory() as folder, hang_guard():
        path = write_case(spec, mutation, folder)
        outcome = check_file(path)
    assert outcome.status != "escaped", outcome.detail
    if mutation.kind == "none":
        assert outcome.status == "valid", outcome.detail  # else the fuzzer would test only refusals


# ----------------------------------------------------------- what the fuzzer found, kept as tests
def _one_line_naming(err: pytest.ExceptionInfo, path) -> str:
    msg = str(err.value)
    assert os.path.basename(os.fspath(path)) in msg and "\n" not in msg, msg
    return msg


def test_truncated_imagej_stack_is_refused_not_read_as_one_section(tmp_path):
    """tifffile logged 'invalid page offset' and returned the first section of a 24-section stack;
    segment wrote a mask of that one section."""
    path = write_case(Spec("tiff", ".tif", (16, 12, 24, 1), "uint16"), Mutation("truncate", fraction=0.5), tmp_path)
    with pytest.raises(InputError) as err:
        load_tomogram(path)
    assert "corrupt TIFF file (tifffile:" in _one_line_naming(err, path)


def test_corrupt_tiff_tag_is_refused_with_tifffile_words(tmp_path):
    path = write_case(Spec("tiff", ".tif", (8, 6, 4, 1)), Mutation("field", name="StripOffsets", value=1e9), tmp_path)
    with pytest.raises(InputError) as err:
        load_tomogram(path)
    assert "tifffile" in _one_line_naming(err, path)


def test_nifti_header_declaring_terabytes_is_refused_before_reading(tmp_path):
    path = write_case(Spec("nifti", ".nii.gz", (8, 6, 4, 1)), Mutation("field", name="dim1", value=32767), tmp_path)
    raw = bytearray(gzip.decompress(path.read_bytes()))
    struct.pack_into("<3h", raw, 42, 32767, 32767, 32767)
    path.write_bytes(gzip.compress(bytes(raw)))
    for read in (load_tomogram, open_frames):
        with pytest.raises(InputError) as err:
            read(path)
        assert "header declares shape (32767, 32767, 32767)" in _one_line_naming(err, path)


def test_tcf_frame_declared_but_never_written_is_refused(tmp_path):
    path = write_case(Spec("tcf", ".TCF", (8, 6, 4, 2)), Mutation("field", name="unwritten", value=4096), tmp_path)
    with pytest.raises(InputError) as err:
        open_frames(path)
    assert "time point 000000" in _one_line_naming(err, path) and "header declares" in str(err.value)


def test_tcf_unreadable_object_is_one_line(tmp_path):
    """A corrupt object header made h5py raise KeyError, which escaped the reader as 'cannot be segmented'."""
    path = write_case(Spec("tcf", ".TCF", (8, 6, 4, 2)), Mutation(), tmp_path)
    with h5py.File(path, "r+") as f:
        del f["Data/3D/000001"]
        f["Data/3D/000001"] = h5py.ExternalLink("nowhere.h5", "/x")  # opening it raises KeyError
    with pytest.raises(InputError) as err:
        open_frames(path).read(1)
    _one_line_naming(err, path)


@pytest.mark.parametrize(("suffix", "field"), [(".mha", "NDims = 1e+300"), (".nrrd", "dimension: 1e+300")])
def test_itk_header_that_crashes_itk_is_refused_first(tmp_path, suffix, field):
    """ITK segfaults (the whole segment run with it) on MetaImage 'NDims = 1e+300'."""
    path = write_case(Spec("itk", suffix, (8, 6, 4, 1)), Mutation(), tmp_path)
    raw = path.read_bytes()
    key = field.split(" ")[0].encode()
    start = raw.index(key)
    path.write_bytes(raw[:start] + field.encode() + raw[raw.index(b"\n", start):])
    with pytest.raises(InputError) as err:
        load_tomogram(path)
    assert "corrupt header" in _one_line_naming(err, path)


def test_values_that_overflow_float32_are_refused_quietly(tmp_path, recwarn):
    ri = np.full((8, 6, 4), 1.337, np.float32)
    ri[0, 0, :] = 3e38  # the median and percentiles are RI; the sum overflows
    path = tmp_path / "hot.nii"
    nib.save(nib.Nifti1Image(ri, np.diag([0.2, 0.2, 0.5, 1.0])), path)
    with pytest.raises(InputError) as err:
        load_tomogram(path)
    assert "values as large as 3e+38" in _one_line_naming(err, path)
    assert not [w for w in recwarn if "overflow" in str(w.message)]


def test_accepted_file_prints_nothing_and_logs_the_library_words_at_debug(tmp_path, capfd, caplog):
    """nibabel prints 'pixdim[1,2,3] should be positive' to stderr itself (its own handler)."""
    path = write_case(Spec("nifti", ".nii", (8, 6, 4, 1)), Mutation("field", name="pixdim3", value=-0.5), tmp_path)
    with caplog.at_level(logging.DEBUG, logger="osnet_monai.readers"):
        data, meta = load_tomogram(path)
    assert data.shape == (8, 6, 4) and meta["spacing"][2] == pytest.approx(0.5)
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""
    assert any("pixdim" in r.getMessage() and path.name in r.getMessage() for r in caplog.records)


def test_refusal_quotes_what_the_library_said(tmp_path):
    path = write_case(Spec("nifti", ".nii", (8, 6, 4, 1)), Mutation("field", name="pixdim3", value=-0.5), tmp_path)
    path.write_bytes(path.read_bytes()[:400])  # and the data cut off
    with pytest.raises(InputError) as err:
        load_tomogram(path)
    msg = _one_line_naming(err, path)
    assert "truncated" in msg and "nibabel: pixdim" in msg


@pytest.mark.parametrize("step", [1e300, -5.0, float("nan")])
def test_absurd_time_step_is_treated_as_unknown(tmp_path, step):
    path = write_case(Spec("tcf", ".TCF", (8, 6, 4, 3)), Mutation("field", name="TimeInterval", value=step), tmp_path)
    with h5py.File(path, "r+") as f:
        for k in range(3):
            f[f"Data/3D/{k:06d}"].attrs["Time"] = np.array([k * step if k else 0.0])
    source = open_frames(path)
    assert "time_step_s" not in source.meta
    assert [source.read(t)[1]["time_s"] for t in range(3)] == [0.0, 1.0, 2.0]


def test_time_series_of_one_section_as_tiff(tmp_path):
    """tifffile drops a singleton Z from an OME series: (T, Y, X) must read as (X, Y, 1, T)."""
    tyx = np.full((3, 6, 8), 13370, np.uint16)
    path = tmp_path / "sections.ome.tif"
    tifffile.imwrite(path, tyx[:, None], ome=True, photometric="minisblack",
                     metadata={"axes": "TZYX", "PhysicalSizeX": 0.2, "PhysicalSizeY": 0.2, "PhysicalSizeZ": 0.5})
    data, meta = load_tomogram(path)
    assert data.shape == (8, 6, 1, 3) and meta["axes"] == "XYZT"


def test_reading_on_a_thread_leaves_other_threads_warnings_alone(tmp_path, capfd):
    """segment reads ahead on a thread: what the reader's libraries say there is collected, what the
    main thread says meanwhile is shown as always."""
    path = write_case(Spec("nifti", ".nii", (8, 6, 4, 1)), Mutation("field", name="pixdim3", value=-0.5), tmp_path)
    results = []
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        reader = threading.Thread(target=lambda: results.extend(load_tomogram(path) for _ in range(20)))
        reader.start()
        for _ in range(20):
            warnings.warn("the main thread's own", UserWarning)
        reader.join()
    assert len(results) == 20
    assert {str(w.message) for w in seen} == {"the main thread's own"}
    assert capfd.readouterr().err == ""  # nibabel's 'pixdim[1,2,3] should be positive' was collected


def test_float64_values_beyond_float32_are_refused(tmp_path):
    """A flipped exponent bit in a float64 NIfTI made a voxel 1e300: read back as Inf in float32."""
    ri = np.full((8, 6, 4), 1.337, np.float64)
    ri[1, 1, 1] = 1e300
    path = tmp_path / "flipped.nii.gz"
    nib.save(nib.Nifti1Image(ri, np.diag([0.2, 0.2, 0.5, 1.0])), path)
    with pytest.raises(InputError) as err:
        load_tomogram(path)
    assert "values as large as 1e+300" in _one_line_naming(err, path)
