"""The documentation: the site builds in strict mode, the README stays short, and no relative link is broken."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").rglob("*.md"))
CI_TEST_COMMAND = "python3 -m venv .venv && .venv/bin/pip install '.[test]' && .venv/bin/pytest"


def test_site_builds_in_strict_mode(tmp_path):
    # Strict: a broken link or anchor, a page left out of the nav, or a docstring griffe cannot read fails.
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    assert (tmp_path / "site" / "reference" / "api" / "index.html").is_file()


def test_readme_is_short():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) < 200, f"README.md has {len(lines)} lines; move detail into docs/"


def test_readme_has_the_test_command_ci_runs():
    assert CI_TEST_COMMAND in (ROOT / ".ci" / "run").read_text()
    assert f"```sh\n{CI_TEST_COMMAND}\n```" in (ROOT / "README.md").read_text()


def _relative_links(text: str) -> list[str]:
    """The targets of a Markdown text's links and images that are neither external nor on the same page."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.DOTALL | re.MULTILINE)  # fenced code
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code
    targets = re.findall(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", text)
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t) and not t.startswith("#")]


def test_relative_links_point_to_files():
    assert len(PAGES) >= 10, PAGES
    broken = []
    for page in [ROOT / "README.md", *PAGES]:
        for target in _relative_links(page.read_text()):
            path = (page.parent / target.split("#", 1)[0]).resolve()
            if not path.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, "links to files that do not exist:\n" + "\n".join(broken)


def test_link_finder():
    text = "[a](docs/x.md) ![b](../p.png) [c](https://e.org) [d](#here) `[e](no.md)`\n```\n[f](no.md)\n```\n"
    assert _relative_links(text) == ["docs/x.md", "../p.png"]


def test_the_readmes_python_example_runs(tmp_path):
    # The README's `fit` example, as a user pastes it: it trains, evaluates, saves, loads and predicts.
    readme = (ROOT / "README.md").read_text()
    example = re.search(r"## From Python\n+```python\n(.*?)```", readme, re.DOTALL).group(1)
    result = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "History(150 epochs" in result.stdout and "'accuracy': 0.9" in result.stdout
    assert (tmp_path / "models" / "tutorial" / "model.json").is_file()
