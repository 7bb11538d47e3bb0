from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(sys.executable).with_name("sepa-engine")


def test_unknown_option_is_a_usage_error_with_exit_64():
    result = subprocess.run([str(SCRIPT), "collect", "--bogus"], capture_output=True, text=True)
    assert result.returncode == 64
    assert "No such option" in result.stderr


def test_unreadable_file_exits_2_with_one_line_and_no_traceback(tmp_path):
    path = tmp_path / "x.xml"
    path.write_text("not xml at all")
    result = subprocess.run([str(SCRIPT), "verify", str(path)], capture_output=True, text=True)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
