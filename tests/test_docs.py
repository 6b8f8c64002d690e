"""Every docs/ page and heading the code cites exists, so what the code claims to follow can be checked."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CITATION = re.compile(r"docs/([\w.-]+\.md)(?:#([\w-]+))?")


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+\s+(.+?)\s*$", page.read_text(), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_every_cited_page_and_heading_exists():
    cited = [(path, match) for folder in ("sigcli", "plugins", "bench", "tests") for path in (ROOT / folder).rglob("*.py")
             for match in CITATION.finditer(path.read_text())]
    assert len(cited) >= 20     # the code does cite its docs
    broken = [f"{path.relative_to(ROOT)}: {match[0]}" for path, match in cited
              if not (ROOT / "docs" / match[1]).is_file()
              or (match[2] and match[2] not in _anchors(ROOT / "docs" / match[1]))]
    assert not broken, broken


def test_nothing_cites_a_document_outside_the_repository():
    offenders = [str(path.relative_to(ROOT)) for folder in ("sigcli", "plugins") for path in (ROOT / folder).rglob("*.py")
                 if "PROTOCOLS" in path.read_text()]
    assert offenders == []
