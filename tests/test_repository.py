"""The repository is self-contained and its tests are honest: checked by reading the files, not by trust.

* No file refers to material outside the repository (a sibling folder, a specification that is not here) or
  to a path of a particular machine.
* No test module imports another test module (shared helpers live in ``helpers.py``, shared fixtures in
  ``conftest.py``), and no test can be silently skipped or neutralised by a rename of in-repo code
  (``pytest.importorskip("pdfnet...")``, ``monkeypatch.setattr/delattr(..., raising=False)``).
* Every fixture folder the tests read is in the repository with a README saying how it was made.
* Relative links in README.md, docs/ and the fixture READMEs point at files (and headings) that exist.
"""

from __future__ import annotations

import ast
import re

import pytest
from helpers import FIXTURES, REPO

TESTS = REPO / "tests"
CHECKED = ("pdfnet", "tests", "docs", "configs", "scripts", "README.md", "Makefile", "pyproject.toml")
# assembled from parts so that this file does not match itself
OUTSIDE = re.compile("|".join([
    r"\.\./" + "shared", "shared " + "spec", "shared/" + r"(spec|fixtures)", "spec " + "§",
    "/" + "work/", "/" + "home/", "/" + "Users/",
]))


def _text_files() -> list:
    """(path, text) of every text file under CHECKED (caches and binary files left out)."""
    files = [p for name in CHECKED
             for p in ([REPO / name] if (REPO / name).is_file() else sorted((REPO / name).rglob("*")))
             if p.is_file() and "__pycache__" not in p.parts]
    text = []
    for p in files:
        data = p.read_bytes()
        if b"\0" not in data[:4096]:
            text.append((p, data.decode("utf-8", errors="replace")))
    return text


def test_no_reference_outside_the_repository():
    hits = [f"{p.relative_to(REPO)}:{i}: {line.strip()}"
            for p, text in _text_files()
            for i, line in enumerate(text.splitlines(), 1) if OUTSIDE.search(line)]
    assert not hits, "references to material outside the repository:\n" + "\n".join(hits)


def _test_modules() -> list:
    return sorted(TESTS.glob("*.py"))


@pytest.mark.parametrize("path", _test_modules(), ids=lambda p: p.name)
def test_test_module_is_self_standing(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            names = []
        for name in names:
            if name.split(".")[0].startswith(("test_", "conftest")):
                problems.append(f"line {node.lineno}: imports the test module {name!r} "
                                "(shared code goes in helpers.py or conftest.py)")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            attr = node.func.attr
            first = node.args[0] if node.args else None
            if (attr == "importorskip" and isinstance(first, ast.Constant) and isinstance(first.value, str)
                    and first.value.split(".")[0] == "pdfnet"):
                problems.append(f"line {node.lineno}: importorskip of in-repo code {first.value!r}")
            if attr in ("setattr", "delattr") and any(
                    k.arg == "raising" and isinstance(k.value, ast.Constant) and k.value.value is False
                    for k in node.keywords):
                problems.append(f"line {node.lineno}: monkeypatch.{attr}(..., raising=False)")
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("name", ["pdfnet_official", "dis_metrics", "pysod_examples"])
def test_fixture_folder_is_vendored_with_its_readme(name):
    folder = FIXTURES / name
    assert (folder / "README.md").is_file(), f"tests/fixtures/{name}/README.md is missing"
    assert sum(1 for p in folder.rglob("*") if p.is_file()) > 1


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces → hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(md: str) -> set[str]:
    return {_slug(line.lstrip("#")) for line in md.splitlines() if re.match(r"#{1,6} ", line)}


DOCS = ["README.md", *sorted(str(p.relative_to(REPO)) for p in [*(REPO / "docs").glob("*.md"),
                                                                  *FIXTURES.glob("*/README.md")])]


@pytest.mark.parametrize("doc", DOCS)
def test_relative_links_resolve(doc):
    path = REPO / doc
    text = path.read_text()
    bad = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):  # http(s), mailto: not checked here
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists():
            bad.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest.read_text()):
            bad.append(f"{target}: no heading with that anchor")
    assert not bad, f"{doc}: broken links:\n" + "\n".join(bad)
