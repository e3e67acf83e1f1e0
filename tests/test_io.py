"""HyperSpy in and out: formats, calibration, stacks, errors."""
import numpy as np
import pytest

from motiflab import io
from motiflab.errors import InputFileError, MotifLabError


def test_load_array_npy_and_signal(tmp_path, mose2_clean):
    img = mose2_clean.image
    assert io.load(img).data.shape == img.shape
    np.save(tmp_path / "a.npy", img)
    assert io.load(tmp_path / "a.npy").data.shape == img.shape
    s = mose2_clean.to_signal()
    assert io.load(s) is s


@pytest.mark.parametrize("ext", ["hspy", "tif"])
def test_calibration_survives_files(tmp_path, mose2_clean, ext):
    s = mose2_clean.to_signal(include_truth=False)
    path = tmp_path / f"img.{ext}"
    s.save(path)
    data, cal, _ = io.as_image(path)
    assert data.shape == mose2_clean.image.shape
    assert cal.units == "nm"
    assert cal.scale == pytest.approx(mose2_clean.pixel_size, rel=1e-4)


def test_angstrom_calibration_converted_to_nm(mose2_clean):
    s = mose2_clean.to_signal()
    for ax in s.axes_manager.signal_axes:
        ax.units = "Å"
        ax.scale = 0.2
    cal = io.calibration_of(s)
    assert cal.units == "nm" and cal.scale == pytest.approx(0.02)


def test_stack_needs_a_frame():
    stack = np.random.default_rng(0).random((3, 64, 64))
    with pytest.raises(MotifLabError, match="frame="):
        io.load(stack)
    assert io.load(stack, frame=1).data.shape == (64, 64)
    with pytest.raises(MotifLabError, match="outside"):
        io.load(stack, frame=7)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(InputFileError, match="no such file"):
        io.load(tmp_path / "nope.dm4")
    bad = tmp_path / "broken.dm4"
    bad.write_bytes(b"not a dm4 file at all")
    with pytest.raises(InputFileError, match="could not read"):
        io.load(bad)
    with pytest.raises(InputFileError, match="folder"):
        io.load(tmp_path)


def test_check_writable_refuses_to_overwrite(tmp_path):
    p = tmp_path / "r.npz"
    p.write_bytes(b"precious")
    with pytest.raises(InputFileError, match="--overwrite"):
        io.check_writable(p)
    assert p.read_bytes() == b"precious"
    assert io.check_writable(p, overwrite=True) == p
