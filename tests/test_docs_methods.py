"""Every reference to a section of docs/methods.md in the code (``docs/methods.md#gldl``) exists."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REFERENCE = re.compile(r"docs/methods\.md((?:#[a-z0-9-]+(?:[ ,]+\d+)?[ ,]*)+)")


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation other than '-' dropped, spaces to '-'."""
    headings = re.findall(r"^#{1,6} (.+)$", markdown, flags=re.M)
    return {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def references() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for folder in ("platform", "tests", "jobs", "bench"):
        for path in (REPO / folder).rglob("*.py"):
            for match in REFERENCE.finditer(path.read_text()):
                anchors = re.findall(r"#([a-z0-9-]+)", match.group(1))
                found.setdefault(str(path.relative_to(REPO)), set()).update(anchors)
    return found


def test_every_reference_names_a_section_of_docs_methods():
    known = anchors((REPO / "docs" / "methods.md").read_text())
    found = references()
    assert len(found) >= 20  # the references moved from the outside spec are here
    missing = {path: sorted(names - known) for path, names in found.items() if names - known}
    assert not missing, f"sections not in docs/methods.md: {missing}; sections: {sorted(known)}"


def test_no_reference_points_outside_the_repository_any_more():
    stale = re.compile(r"\bspec (?:pitfall )?\d|Spec section \d|specs/methods\.md|\bseed S\d")
    hits = [f"{p.relative_to(REPO)}:{n}" for folder in ("platform", "tests", "jobs", "bench")
            for p in (REPO / folder).rglob("*.py")
            for n, line in enumerate(p.read_text().splitlines(), 1) if stale.search(line)]
    assert not hits, hits
