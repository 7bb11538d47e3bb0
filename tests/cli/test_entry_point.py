"""The console script's helper processes do not import the CLI again."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path


def _console_script(tmp_path: Path) -> Path:
    # What pip writes for the entry point, plus a line that reports, in a forkserver child
    # (where multiprocessing runs the main script again as __mp_main__), what it imported.
    (point,) = entry_points(group="console_scripts", name="sepa-engine")
    script = tmp_path / "sepa-engine"
    script.write_text(
        "import json, os, sys\n"
        f"from {point.module} import {point.attr}\n"
        "if __name__ == '__mp_main__':\n"
        "    with open(os.environ['MODULES_SEEN'], 'a') as out:\n"
        "        out.write(json.dumps(sorted(sys.modules)) + '\\n')\n"
        "if __name__ == '__main__':\n"
        "    from sepa_engine.iso20022.readback import ReadBackProcess\n"
        "    from sepa_engine.iso20022.versions import version\n"
        "    check = ReadBackProcess(version('pain.008.001.08'))\n"
        "    try:\n"
        "        check.close()\n"
        "    except Exception:\n"
        "        pass  # no document was fed: only the child's imports matter here\n"
    )
    return script


def test_a_read_back_child_of_the_console_script_does_not_import_the_cli(tmp_path):
    seen = tmp_path / "modules.jsonl"
    result = subprocess.run(
        [sys.executable, str(_console_script(tmp_path))],
        env={"MODULES_SEEN": str(seen), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    (modules,) = [json.loads(line) for line in seen.read_text().splitlines()]
    assert "sepa_engine.iso20022.readback" in modules  # the forkserver's preload: a real child
    for heavy in ("typer", "sqlalchemy", "sepa_engine.cli.main", "sepa_engine.services.collection"):
        assert heavy not in modules


def test_the_console_script_runs_the_cli():
    script = Path(sys.executable).with_name("sepa-engine")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "collect" in result.stdout
