"""Safe file names and writing: nothing ever lands outside the chosen folder."""

from __future__ import annotations

import os

import pytest

from robomail_plugin.declare import bind
from robomail_plugin.errors import FileError, InvalidParameter
from robomail_plugin.message.files import (
    format_file_name,
    safe_filename,
    save_message,
    write_file,
    write_new_file,
)
from robomail_plugin.parse.actions import ParseEmail


@pytest.mark.parametrize(("name", "expected"), [
    ("../../etc/passwd", "passwd"),
    ("C:\\x", "x"),
    ("C:x.txt", "C_x.txt"),
    ("/abs/evil.sh", "evil.sh"),
    ("CON", "_CON"),
    ("nul.txt", "_nul.txt"),
    ("LPT1", "_LPT1"),
    ("", "attachment"),
    (None, "attachment"),
    ("..", "attachment"),
    (" . ", "attachment"),
    (".bashrc", "bashrc"),
    ("a\x00b\x1b\u202ec.txt", "abc.txt"),
    ('a<b>c:d"e|f?g*h.txt', "a_b_c_d_e_f_g_h.txt"),
    ("résumé.pdf", "résumé.pdf"),
])
def test_safe_filename(name, expected):
    assert safe_filename(name) == expected


def test_long_names_are_capped_keeping_the_extension():
    name = safe_filename("ü" * 300 + ".pdf")
    assert name.endswith(".pdf") and len(name.encode()) <= 150


def test_if_exists_modes(tmp_path):
    first = write_new_file(tmp_path, "a.txt", b"1", "unique")
    second = write_new_file(tmp_path, "a.txt", b"2", "unique")
    assert (first.name, second.name) == ("a.txt", "a (1).txt")
    write_new_file(tmp_path, "a.txt", b"3", "overwrite")
    assert first.read_bytes() == b"3"
    with pytest.raises(FileError, match="exists already"):
        write_new_file(tmp_path, "a.txt", b"4", "error")


def test_duplicates_in_one_batch_are_unique_even_with_overwrite(tmp_path):
    taken: set[str] = set()
    a = write_new_file(tmp_path, "dup.txt", b"1", "overwrite", taken)
    b = write_new_file(tmp_path, "dup.txt", b"2", "overwrite", taken)
    assert a != b and a.read_bytes() == b"1" and b.read_bytes() == b"2"


def test_overwrite_never_follows_a_planted_link(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"keep")
    folder = tmp_path / "in"
    folder.mkdir()
    os.symlink(outside, folder / "x.txt")
    write_new_file(folder, "x.txt", b"new", "overwrite")
    assert outside.read_bytes() == b"keep"
    assert (folder / "x.txt").read_bytes() == b"new" and not (folder / "x.txt").is_symlink()
    os.symlink(outside, folder / "y.txt")
    assert write_new_file(folder, "y.txt", b"n", "unique").name == "y (1).txt"


def test_save_message_to_folder_and_file(tmp_path):
    info = {"uid": "1a/../2", "number": 4, "subject": "Hi"}
    path = save_message(b"x", info, folder=str(tmp_path / "new"), file_name="{uid}.eml")
    assert path.parent == (tmp_path / "new").resolve() and path.name == "2.eml"
    path = save_message(b"y", info, folder=str(tmp_path), file_name="{number}-{subject}.eml")
    assert path.name == "4-Hi.eml"
    target = tmp_path / "deep" / "m.eml"
    assert save_message(b"z", info, save_to_file=str(target)) == target.resolve()
    with pytest.raises(InvalidParameter, match="say where to save"):
        save_message(b"z", info)
    with pytest.raises(InvalidParameter, match="if_exists"):  # refused where the task binds it
        bind(ParseEmail, {"text": "x", "if_exists": "maybe"})
    assert format_file_name("", {"uid": None}) == "message.eml"
    assert format_file_name("{subject}.eml", {"subject": "../../x"}) == "x.eml"


def test_write_file_errors(tmp_path):
    with pytest.raises(FileError, match="is a folder"):
        write_file(tmp_path, b"")
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(FileError, match="cannot create the folder|is not a folder"):
        write_file(tmp_path / "f" / "x.eml", b"")


def test_unique_names_for_capped_long_names(tmp_path):
    name = safe_filename("y" * 400 + ".bin")
    paths = [write_new_file(tmp_path, name, b"", "unique") for _ in range(3)]
    assert len({p.name for p in paths}) == 3
    assert all(len(p.name.encode()) <= 150 and p.name.endswith(".bin") for p in paths)
