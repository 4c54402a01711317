"""File names: the plain-name rule, its copy in the emulator, and safe output paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from sarvam_async._filenames import is_plain_file_name, output_path, unique_names
from sarvam_async.errors import UnsafeFileNameError
from sarvam_async.testing import _params

NAMES = [
    "a.wav",
    "meeting 10.30.wav",
    "C:evil",
    "CON",
    "nul.txt",
    "a.",
    "a ",
    ".hidden",
    "...",
    "",
    " ",
    "\t",
    ".",
    "..",
    "../x.wav",
    "a/b.wav",
    "/etc/passwd",
    "a\\b.wav",
    "\\\\server\\share",
    "nul\x00.wav",
    "line\nbreak.wav",
    "ünïcödé.wav",
]


@pytest.mark.parametrize("name", NAMES)
def test_the_emulator_copy_of_the_plain_name_rule_agrees(name: str) -> None:
    assert _params.is_plain_file_name(name) == is_plain_file_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "C:evil.json",  # drive-relative on Windows: outside the folder
        "c:..\\x.json",
        "a.wav:stream.json",  # an alternate data stream
        "CON",
        "con.wav.json",  # a device, extension or not
        "NUL .json",
        "COM1.json",
        "lpt9",
        "a.",  # Windows drops trailing dots and spaces
        "a ",
        "..",
        "../x.json",
        "a/b.json",
        "a\\b.json",
        "",
        "x\x00.json",
    ],
)
def test_output_path_refuses_what_would_leave_the_folder(name: str) -> None:
    with pytest.raises(UnsafeFileNameError) as info:
        output_path(Path("out"), name)
    assert repr(name) in str(info.value)


@pytest.mark.parametrize(
    "name", ["a.wav.json", "CONSOLE.json", "com10.json", "nulled.json", ".a.json", "a b.json"]
)
def test_output_path_keeps_ordinary_names(name: str) -> None:
    assert output_path(Path("out"), name) == Path("out") / name


def test_unique_names_keep_reserved_ones() -> None:
    paths = [Path("x/a.wav"), Path("y/a.wav"), Path("z/a.wav")]
    assert unique_names(paths) == ["a.wav", "a-2.wav", "a-3.wav"]
    assert unique_names(paths, {"y/a.wav": "a.wav"}) == ["a-2.wav", "a.wav", "a-3.wav"]
