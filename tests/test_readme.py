"""The README's commands are the ones CI runs, and its examples exist."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"^```sh\n(.*?)\n```", text, flags=re.S | re.M)


def test_ci_runs_the_readme_test_command():
    test_command = next(c for c in _commands() if "pytest" in c)
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command.strip() in ci


def test_readme_main_command_names_an_existing_example():
    main = _commands()[0]
    scripts = re.findall(r"python (examples/\S+\.py)", main)
    assert scripts, main
    for script in scripts:
        assert (ROOT / script).is_file(), script
