"""The documentation matches the code: generated pages are current, README is the short
front door it promises to be, and every link in it points at a file that exists."""

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


def test_generated_reference_pages_are_current():
    done = subprocess.run([sys.executable, str(REPO / "docs" / "make_reference.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_readme_is_at_most_15_kb_and_has_no_placeholders():
    text = README.read_text()
    assert len(text.encode()) <= 15 * 1024
    assert not re.search(r"\b(TODO|TBD|[A-Z]+_RESULTS|QUICK_TIME)\b", text)


def test_every_relative_link_in_readme_and_docs_exists():
    for page in [README, *sorted((REPO / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target:
                continue
            assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"


def test_readme_commands_name_existing_presets_and_tasks():
    from xmodal.presets import PRESETS

    text = README.read_text()
    for task, preset in re.findall(r"xmodal fit (series|sequence|table)[^\n]*--preset (\w+)", text):
        assert (task, preset) in PRESETS
