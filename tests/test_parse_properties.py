"""Property tests: whatever bytes come in, Parse Email gives message info or a ParseError, and
never writes outside the attachments folder."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from corpus import CORPUS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robomail_plugin.errors import ParseError
from robomail_plugin.parse.commands import parse_email

SEEDS = list(CORPUS.values())


@st.composite
def mutated(draw):
    """A corpus message with random byte edits: inserts, deletions and overwrites."""
    data = bytearray(draw(st.sampled_from(SEEDS))[:20000])
    for _ in range(draw(st.integers(0, 12))):
        pos = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["insert", "delete", "overwrite"]))
        chunk = draw(st.sampled_from([
            b"\r\n", b"\r\n\r\n", b"--", b"=?", b"?=", b";", b'"', b"\\", b"../", b"\x00",
            b"\xff", b"filename*=", b"Content-Type: multipart/mixed; boundary=x\r\n",
            b"Content-Transfer-Encoding: base64\r\n", b"charset=", b"=?x?q?\xe4?=",
        ]) | st.binary(max_size=20))
        if kind == "insert":
            data[pos:pos] = chunk
        elif kind == "delete":
            del data[pos:pos + len(chunk)]
        else:
            data[pos:pos + len(chunk)] = chunk
    return bytes(data)


def check(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "a" / "att"
        try:
            info = parse_email(data, attachments_folder=str(folder))
        except ParseError:
            return
        json.dumps(info)
        outside = [p for p in root.rglob("*") if p != root / "a" and p != folder
                   and p.parent != folder]
        assert outside == []
        for entry in info["attachments"]:
            assert Path(entry["path"]).parent == folder.resolve()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_arbitrary_bytes(data):
    check(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_corpus(data):
    check(data)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=80))
def test_any_attachment_name(name):
    quoted = name.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "")
    raw = (b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
           b"Content-Disposition: attachment; filename=\"" + quoted.encode("utf-8", "replace")
           + b"\"\r\n\r\nx\r\n--b\r\nContent-Disposition: attachment; filename*=utf-8''"
           + "".join(f"%{b:02X}" for b in name.encode("utf-8", "replace")).encode()
           + b"\r\n\r\ny\r\n--b--\r\n")
    check(raw)
