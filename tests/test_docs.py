"""The project documents itself (docs/): every document the code cites is in the tree, every
section and rule it cites is a heading there, no comment cites a document from outside the
repository, and the files the documents name exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SOURCES = [
    *ROOT.glob("chatapp/**/*.py"),
    *ROOT.glob("templates/**/*.html"),
    *ROOT.glob("static/chatapp/*.js"),
    *ROOT.glob("static/chatapp/*.css"),
    *ROOT.glob("tests/**/*.py"),
    *ROOT.glob("bench/*.py"),
    ROOT / "README.md",
    ROOT / "bench" / "README.md",
]
CITATION = re.compile(r"docs/([A-Z]+\.md)([^\n]{0,60})")
SECTION = re.compile(r"§(\d+b?)(?:\s*[-–]\s*§?(\d+))?")
RULES = re.compile(r"rules? (\d+)(?:\s*[-–]\s*(\d+))?((?:,\s*\d+)*)")
QUOTED = re.compile(r'"([A-Z][^"]+)"')


def citations() -> list[tuple[str, str, str]]:
    found = []
    for path in SOURCES:
        if path.name == "test_docs.py":
            continue
        text = path.read_text()
        for match in CITATION.finditer(text):
            found.append((str(path.relative_to(ROOT)), match[1], match[2]))
    return found


def headings(name: str) -> list[str]:
    return [
        line.lstrip("#").strip()
        for line in (DOCS / name).read_text().splitlines()
        if line.startswith("#")
    ]


def numbers(first: str, last: str | None, more: str = "") -> list[str]:
    if last is None:
        listed = [first]
    else:
        listed = [str(n) for n in range(int(first.rstrip("b")), int(last) + 1)]
    return listed + re.findall(r"\d+", more)


def test_the_code_cites_documents_and_sections_that_exist():
    cited = citations()
    assert len(cited) > 30  # the pattern still finds the comments it is meant to check
    missing = []
    for where, name, rest in cited:
        if not (DOCS / name).is_file():
            missing.append(f"{where}: docs/{name}")
            continue
        titles = headings(name)
        for match in SECTION.finditer(rest.split(")")[0]):
            for number in numbers(match[1], match[2]):
                if not any(title.startswith(f"§{number} ") for title in titles):
                    missing.append(f"{where}: docs/{name} §{number}")
        rule = RULES.match(rest.strip(" ,"))
        if rule:
            for number in numbers(rule[1], rule[2], rule[3]):
                if not any(title.startswith(f"Rule {number} ") for title in titles):
                    missing.append(f"{where}: docs/{name} rule {number}")
        quoted = QUOTED.match(rest.strip(" ,"))
        if quoted and quoted[1] not in titles:
            missing.append(f'{where}: docs/{name} "{quoted[1]}"')
    assert missing == []


def test_no_comment_cites_a_document_outside_the_repository():
    bare = re.compile(r"(?<![/\w])(DESIGN|PROTOCOLS|SECURITY)(\.md)?\b(?! rules? \d)")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()[:80]}"
        for path in SOURCES
        if path.name != "test_docs.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        for match in bare.finditer(line)
        if not line[: match.start()].endswith("docs/")
    ]
    assert offenders == []


def test_the_files_the_documents_name_exist():
    # Paths, not bare names: "`services.py`" names a role every domain has.
    named = re.compile(r"`([\w.]+(?:/[\w.]+)+\.(?:py|html|js|md|toml))`")
    missing = []
    for doc in DOCS.glob("*.md"):
        for match in named.finditer(doc.read_text()):
            path = match[1]
            candidates = [ROOT / path, ROOT / "chatapp" / path, DOCS / path]
            if not any(candidate.exists() for candidate in candidates):
                missing.append(f"docs/{doc.name}: {path}")
    assert missing == []
