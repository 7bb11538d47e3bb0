"""Hostile and broken files: verify and describe refuse them with one line, never a
traceback, never reading what an entity points at; the other files are still checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sepa_engine import errors
from sepa_engine.cli.main import app
from sepa_engine.exit_codes import ExitCode
from sepa_engine.iso20022 import safe_xml
from sepa_engine.iso20022.pain008_verify import describe, verify
from tests.iso20022 import hostile as attacks

GOLDEN_08 = Path(__file__).resolve().parents[1] / "testdata" / "pain.008" / "pain.008.001.08-two-blocks-amendments.xml"
NS = "urn:iso:std:iso:20022:tech:xsd:pain.008.001.08"
BILLION_LAUGHS = attacks.billion_laughs(
    f'<Document xmlns="{NS}"><CstmrDrctDbtInitn><GrpHdr><MsgId>&lol9;</MsgId></GrpHdr></CstmrDrctDbtInitn></Document>'
)
XXE = attacks.xxe(
    f'<Document xmlns="{NS}"><CstmrDrctDbtInitn><GrpHdr><MsgId>&xxe;</MsgId><CreDtTm>2026-11-23T10:00:00</CreDtTm>\n'
    "<NbOfTxs>0</NbOfTxs><InitgPty><Nm>&xxe;</Nm></InitgPty></GrpHdr></CstmrDrctDbtInitn></Document>"
)

XXE_PARAMETER = f"""<?xml version="1.0"?>
<!DOCTYPE Document [<!ENTITY % remote SYSTEM "file:///etc/passwd"> %remote;]>
<Document xmlns="{NS}"/>
"""


def _hostile_files(tmp_path: Path) -> dict[str, Path]:
    golden = GOLDEN_08.read_text(encoding="utf-8")
    contents: dict[str, str | bytes] = {
        "billion-laughs": BILLION_LAUGHS,
        "billion-laughs-after-64k-of-comment": attacks.after_prolog(BILLION_LAUGHS, attacks.LONG_COMMENT),
        "xxe-etc-passwd": XXE,
        "xxe-after-64k-of-comment": attacks.after_prolog(XXE, attacks.LONG_COMMENT),
        "xxe-parameter-entity": XXE_PARAMETER,
        "truncated": golden[: len(golden) // 2],
        "empty-0-bytes": b"",
        "only-whitespace": "  \n\t\n",
        "not-xml": "MsgId;Amount\nMSG1;12.34\n",
        "binary": bytes(range(256)) * 4,
        "camt-053-namespace": '<?xml version="1.0"?>\n<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt/></Document>',
        "no-namespace": "<Document><CstmrDrctDbtInitn/></Document>",
        "unclosed-root": f'<Document xmlns="{NS}"><CstmrDrctDbtInitn>',
        "undefined-entity": f'<Document xmlns="{NS}"><CstmrDrctDbtInitn><GrpHdr><MsgId>&nope;</MsgId></GrpHdr></CstmrDrctDbtInitn></Document>',
    }
    paths = {}
    for name, content in contents.items():
        path = tmp_path / f"{name}.xml"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        paths[name] = path
    directory = tmp_path / "a-directory.xml"
    directory.mkdir()
    paths["directory"] = directory
    paths["missing"] = tmp_path / "missing.xml"
    return paths


HOSTILE = [
    "billion-laughs",
    "billion-laughs-after-64k-of-comment",
    "xxe-etc-passwd",
    "xxe-after-64k-of-comment",
    "xxe-parameter-entity",
    "truncated",
    "empty-0-bytes",
    "only-whitespace",
    "not-xml",
    "binary",
    "camt-053-namespace",
    "no-namespace",
    "unclosed-root",
    "undefined-entity",
    "directory",
    "missing",
]


def _passwd_markers() -> list[str]:
    try:
        lines = Path("/etc/passwd").read_text().splitlines()
    except OSError:
        return ["root:x:0:0"]
    return [line for line in lines if line.strip()][:3] or ["root:x:0:0"]


@pytest.fixture()
def hostile(tmp_path: Path) -> dict[str, Path]:
    return _hostile_files(tmp_path)


@pytest.mark.parametrize("name", HOSTILE)
def test_verify_cli_refuses_with_exit_2_and_one_line_on_stderr(hostile, name):
    path = hostile[name]
    result = CliRunner().invoke(app, ["verify", str(path)])
    assert result.exit_code == ExitCode.UNREADABLE, result.output
    assert result.stdout == ""
    assert result.stderr.startswith(f"{path}: ")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output
    for marker in _passwd_markers():
        assert marker not in result.output


@pytest.mark.parametrize("name", HOSTILE)
def test_describe_cli_refuses_with_exit_2_and_one_line_on_stderr(hostile, name):
    result = CliRunner().invoke(app, ["describe", "--json", str(hostile[name])])
    assert result.exit_code == ExitCode.UNREADABLE
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


@pytest.mark.parametrize("name", HOSTILE)
def test_verify_raises_a_message_error_for_the_caller(hostile, name):
    with pytest.raises(errors.MessageError):
        verify(hostile[name])
    with pytest.raises(errors.MessageError):
        describe(hostile[name])


@pytest.mark.parametrize("name", ["billion-laughs-after-64k-of-comment", "xxe-after-64k-of-comment"])
def test_late_doctype_is_refused_on_the_streaming_path_too(hostile, monkeypatch, name):
    monkeypatch.setattr(safe_xml, "TREE_VALIDATION_MAX_BYTES", 0)
    with pytest.raises(errors.UnreadableFile) as caught:
        verify(hostile[name])
    # libxml2 may stop the bomb first (entity amplification limit); either way it is refused.
    assert caught.value.rule == "declares a DOCTYPE or entities, which are refused" or (
        "amplification" in caught.value.rule
    )


def test_entities_are_refused_by_name_not_expanded(hostile):
    for name in ("billion-laughs", "xxe-etc-passwd", "xxe-parameter-entity"):
        with pytest.raises(errors.UnreadableFile) as caught:
            verify(hostile[name])
        assert caught.value.rule == "declares a DOCTYPE or entities, which are refused"


def test_unknown_namespace_is_named_in_the_message(hostile):
    result = CliRunner().invoke(app, ["verify", str(hostile["camt-053-namespace"])])
    assert "'urn:iso:std:iso:20022:tech:xsd:camt.053.001.02' is not a supported pain.008 version" in result.stderr


def test_every_hostile_file_in_one_run_still_lets_the_good_file_through(hostile):
    paths = [str(hostile[name]) for name in HOSTILE]
    result = CliRunner().invoke(app, ["verify", "--json", *paths, str(GOLDEN_08)])
    assert result.exit_code == ExitCode.UNREADABLE
    files = json.loads(result.stdout)["files"]
    assert [f["readable"] for f in files] == [False] * len(HOSTILE) + [True]
    assert files[-1]["valid"] is True
    stderr_lines = result.stderr.splitlines()
    assert [line.split(": ", 1)[0] for line in stderr_lines] == paths
    for marker in _passwd_markers():
        assert marker not in result.output
