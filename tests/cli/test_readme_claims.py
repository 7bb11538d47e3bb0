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


def _groups():  # type: ignore[no-untyped-def]
    """Groups that run on their own (``sepa-engine api`` serves), with their options."""
    found = {}

    def walk(command, path):  # type: ignore[no-untyped-def]
        if hasattr(command, "commands"):
            if path and getattr(command, "invoke_without_command", False):
                found[" ".join(path)] = command
            for name, sub in command.commands.items():
                walk(sub, [*path, name])

    walk(get_command(app), [])
    return found


def _example_lines() -> list[str]:
    """Every `sepa-engine ...` line of the README's code blocks, continuations joined,
    comments and redirections dropped."""
    lines: list[str] = []
    inside = False
    pending = ""
    for raw in README.read_text("utf-8").splitlines():
        if raw.startswith("```"):
            inside = not inside
            continue
        if not inside:
            continue
        line = pending + raw
        if line.rstrip().endswith("\\"):
            pending = line.rstrip()[:-1] + " "
            continue
        pending = ""
        at = line.find("sepa-engine ")
        if at < 0 or "Description=" in line:
            continue
        command = line[at + len("sepa-engine "):]
        command = re.split(r"\s+#|\s*>>?|\s+2>&1", command)[0]
        lines.append(command.strip())
    return lines


EXAMPLES = _example_lines()


def test_the_readme_has_examples_to_check():
    assert len(EXAMPLES) > 20


def test_every_readme_example_names_a_command_and_options_it_has():
    # The README's examples are checked against the CLI itself: a renamed command or option
    # breaks this test, not a reader's cron line.
    import shlex

    commands = {**_groups(), **_commands()}
    for example in EXAMPLES:
        words = shlex.split(example.replace("[", " ").replace("]", " ").replace("|", " "))
        path: list[str] = []
        for word in words:
            if word.startswith("-"):
                break
            if " ".join([*path, word]) in commands or any(name.startswith(" ".join([*path, word]) + " ") for name in commands):
                path.append(word)
            else:
                break
        name = " ".join(path)
        assert name in commands, f"README example names no command: sepa-engine {example}"
        options = {o for p in commands[name].params for o in getattr(p, "opts", [])} | {"--help"}
        for word in words:
            if word.startswith("--"):
                assert word.split("=")[0] in options, f"README example: {word} is not an option of '{name}': sepa-engine {example}"
