"""Parse Email through the host, over the corpus of awkward messages."""

from __future__ import annotations

import json

import pytest
from corpus import CORPUS, HOSTILE_COUNT
from corpus.mailtest import run, var

from hostsim.runtime.host import Host
from robomail_plugin.parse.commands import parse_email


@pytest.fixture
def host(tmp_path):
    return Host.load(home=tmp_path / "hostsim")


def parse_step(**params):
    return {"action": "Parse Email", "params": params}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_every_corpus_message_parses_and_saves_inside_the_folder(tmp_path, name):
    folder = tmp_path / "att"
    info = parse_email(CORPUS[name], attachments_folder=str(folder))
    assert isinstance(info["headers"], list)
    json.dumps(info)  # the variable is JSON
    for entry in info["attachments"]:
        assert entry["path"].startswith(str(folder.resolve()) + "/")
    if folder.exists():
        assert all(p.parent == folder for p in folder.iterdir())


def test_from_file_with_attachments_text_and_html(host, tmp_path):
    eml = tmp_path / "nested.eml"
    eml.write_bytes(CORPUS["nested"])
    result = run(host, [parse_step(file=str(eml), save_to="E", attachments_folder=str(
        tmp_path / "files"), save_text_to="T", save_html_to="H")])
    assert result.ok, result.error
    info = var(result, "E")
    assert info["subject"] == "Nested Übersicht"
    assert ["Subject", "Nested Übersicht"] in info["headers"]
    assert result.variables["T"] == "Grüße aus München"
    assert result.variables["H"] == "<p>Grüße</p>"
    names = sorted(p.name for p in (tmp_path / "files").iterdir())
    assert names == ["Inner forwarded.eml", "attachment", "report.pdf"]
    assert (tmp_path / "files" / "report.pdf").read_bytes() == b"%PDF-1.4 fake"
    assert b"Subject: Inner forwarded" in (tmp_path / "files" / "Inner forwarded.eml").read_bytes()


def test_from_text_variable_html_only(host):
    text = CORPUS["html_only"].decode("ascii")
    result = run(host, [parse_step(source="text", text="{Raw}", save_text_to="T")], Raw=text)
    assert result.ok, result.error
    assert result.variables["T"] == "Title\n\nCafé & crème\n\nline\ntwo"


def test_hostile_names_stay_in_the_folder(host, tmp_path):
    eml = tmp_path / "h.eml"
    eml.write_bytes(CORPUS["hostile_names"])
    folder = tmp_path / "deep" / "att"
    result = run(host, [parse_step(file=str(eml), attachments_folder=str(folder))])
    assert result.ok, result.error
    names = sorted(p.name for p in folder.iterdir())
    assert len(names) == HOSTILE_COUNT
    assert {"passwd", "x", "_CON", "attachment", "evil.sh", "dup.txt", "dup (1).txt",
            "ab.txt"} <= set(names)
    assert not (tmp_path / "etc").exists() and not (tmp_path / "deep" / "passwd").exists()
    # again: unique names; then error mode refuses
    assert run(host, [parse_step(file=str(eml), attachments_folder=str(folder))]).ok
    assert len(list(folder.iterdir())) == 2 * HOSTILE_COUNT
    result = run(host, [parse_step(file=str(eml), attachments_folder=str(folder),
                                   if_exists="error")])
    assert result.error.code == "file_error"


def test_rfc2231_names(host, tmp_path):
    eml = tmp_path / "n.eml"
    eml.write_bytes(CORPUS["rfc2231_names"])
    result = run(host, [parse_step(file=str(eml), attachments_folder=str(tmp_path / "a"))])
    assert result.ok
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "Größe_teil2.csv", "Résumé.doc", "übersicht €.txt"]


@pytest.mark.parametrize(("params", "code"), [
    ({"file": "/no/such.eml"}, "file_error"),
    ({}, "invalid_parameter"),
    ({"source": "text", "text": ""}, "invalid_parameter"),
    ({"source": "text", "text": "   \n"}, "parse_error"),
])
def test_errors(host, params, code):
    result = run(host, [parse_step(**params)])
    assert not result.ok and result.error.code == code, result.error
