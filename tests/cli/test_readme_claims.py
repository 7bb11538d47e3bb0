"""What README.md says about the commands holds: checked against the commands themselves."""

from __future__ import annotations

import re
from pathlib import Path

from typer.main import get_command

from sepa_engine.cli.main import app

README = Path(__file__).resolve().parents[2] / "README.md"


def _commands():  # type: ignore[no-untyped-def]
    def walk(command, path):  # type: ignore[no-untyped-def]
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                yield from walk(sub, [*path, name])
        else:
            yield " ".join(path), command

    return dict(walk(get_command(app), []))


def test_the_commands_the_readme_says_read_no_configuration_are_exactly_those_without_config():
    # The README said every command takes --config; four did not.
    text = README.read_text("utf-8")
    sentence = re.search(r"read no configuration: (.+?) \(a test keeps", text, re.S)
    assert sentence, "the README no longer says which commands read no configuration"
    named = set(re.findall(r"`([a-z -]+)`", sentence.group(1)))
    without = {name for name, command in _commands().items() if "--config" not in {o for p in command.params for o in getattr(p, "opts", [])}}
    assert named == without


def test_every_command_the_exit_code_table_names_exists():
    text = README.read_text("utf-8")
    table = text[text.index("Which command can exit with which code:"):text.index("## Running unattended")]
    names = {name.split(" ...")[0].split("/")[0] for name in re.findall(r"`([a-z][a-z -]*(?: \.\.\.)?)`", table) if not name.startswith("-")}
    known = set(_commands())
    groups = {name.split(" ")[0] for name in known}
    for name in names:
        assert name in known or name in groups or any(k.startswith(name + " ") for k in known), name
