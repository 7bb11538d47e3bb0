"""The public Python API: the README's example runs as written, and the facade is what it
says it is (a transaction per call, the services' errors, the CLI on top of it)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from sepa_engine import engine as engine_module
from sepa_engine import errors
from sepa_engine.db.returns_models import ReturnFile
from sepa_engine.engine import DebitRequestInput, Engine

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_example() -> str:
    text = README.read_text("utf-8")
    section = text[text.index("## Python API\n") :]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found is not None, "the README's Python API section has no example"
    return found.group(1)


def _config(tmp_path: Path, database_url: str) -> Path:
    path = tmp_path / "sepa-engine.toml"
    path.write_text(
        f'[database]\nurl = "{database_url}"\n[paths]\nvar_dir = "{tmp_path / "var"}"\n'
        f'outbox_dir = "{tmp_path / "outbox"}"\n'
    )
    return path


@freeze_time("2026-11-20 09:00:00")
def test_the_readme_example_registers_enqueues_collects_and_reads(tmp_path, monkeypatch, database_url):
    _config(tmp_path, database_url)
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(_readme_example(), "README.md", "exec"), {})
    (line,) = out.getvalue().splitlines()
    end_to_end_id, cents, status = line.split()
    assert (cents, status) == ("85000", "submitted")
    assert [p.name for p in (tmp_path / "outbox").rglob("*.xml")]  # the file was written
    # Run again: every call replays its idempotency key, nothing new is written.
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(_readme_example(), "README.md", "exec"), {})
    assert out.getvalue().split() == [end_to_end_id, "85000", "submitted"]


def test_everything_the_module_exports_exists_and_is_documented():
    for name in engine_module.__all__:
        assert hasattr(engine_module, name), name
    public = [name for name in vars(Engine) if not name.startswith("_")]
    assert {"register_creditor", "enqueue", "enqueue_many", "pay_now", "collect", "reconcile", "statement"} <= set(public)
    for name in public:
        attribute = getattr(Engine, name)
        if callable(attribute) and name not in ("close",):
            assert attribute.__doc__ or name.startswith("register_"), f"Engine.{name} has no docstring"


def test_a_refused_call_raises_the_services_error_and_writes_nothing(tmp_path, database_url):
    with Engine.open(_config(tmp_path, database_url)) as engine:
        with pytest.raises(errors.NotFound):
            engine.enqueue("nobody", DebitRequestInput(mandate="RUM-1", amount="1.00"), idempotency_key="k-1")
        assert engine.requests().items == ()


def test_a_refused_bank_file_is_recorded_then_raised(tmp_path, database_url):
    bad = tmp_path / "answer.xml"
    bad.write_text("<Document xmlns='urn:iso:std:iso:20022:tech:xsd:pain.002.001.03'><broken>")
    with Engine.open(_config(tmp_path, database_url)) as engine:
        with pytest.raises(errors.UnreadableFile):
            engine.reconcile(bad)
        with engine.session() as session:
            (row,) = session.scalars(select(ReturnFile)).all()
        assert row.status == "refused"


def test_the_operations_the_commands_use_run_through_the_facade(tmp_path, database_url):
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "demo" / "october"
    lines = tmp_path / "requests.jsonl"
    with freeze_time("2026-11-20 09:00:00"), Engine.open(_config(tmp_path, database_url)) as engine:
        loaded = engine.load(fixtures)
        assert loaded.counts["creditors"].created >= 1
        creditor = engine.requests().items[0].creditor_code
        mandate = next(iter(engine.requests().items)).mandate_reference
        lines.write_text(
            f'{{"idempotency_key": "file-1", "creditor": "{creditor}", "mandate": "{mandate}", "amount": "3.00", "on_account": true}}\n'
            f'{{"idempotency_key": "file-2", "creditor": "{creditor}", "mandate": "{mandate}", "amount": "3.001", "on_account": true}}\n'
        )
        with pytest.raises(engine_module.FileRejected):
            engine.enqueue_file(lines)  # all or none: the good line is not applied either
        partial = engine.enqueue_file(lines, skip_bad=True)
        assert (partial.created, len(partial.bad)) == (1, 1)

        (found,) = [m for m in engine.mandates(creditor=creditor).items if m.reference == mandate]
        assert found.status == "active"
        assert engine.release_mandate(creditor, mandate) is False  # not held: nothing to release

        made = engine.create_token(name="billing", creditors=[creditor], access="write")
        assert made.token.startswith("sek_")
        assert [view.name for view in engine.tokens()] == ["billing"]
        assert engine.revoke_token(made.view.id).revoked_at is not None

        assert engine.return_exceptions() == []
        policy = engine.set_reason_policy(creditor, "AM04", max_retries=0)
        assert policy.max_retries == 0
        assert ("AM04", True) in [(p.code, overridden) for p, overridden in engine.reason_policies(creditor)]
        with pytest.raises(errors.NotFound):
            engine.approve_batch(999_999, actor="ops")
        with pytest.raises(errors.NotFound):
            engine.resolve_exception(999_999, resolution="ignored")
