"""The documentation: every relative link and anchor resolves; the README stays a short front door.

Checked: README.md and docs/*.md. A link is `[text](target)`, `![alt](target)` or a reference
definition `[name]: target`, outside fenced code blocks and inline code. Targets starting with
http://, https:// or mailto: are not followed. The path part is resolved relative to the file
holding the link and must exist; an `#anchor` (alone: the same file) must name a heading of the
target markdown file by its GitHub slug. Headings are ATX headings (`# Title`).
"""

import re
from pathlib import Path

from tools.repo import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_LINES = 200
FRONT_DOOR_COMMANDS = ["make demo", "make test"]

EXTERNAL = re.compile(r"^(https?:|mailto:)", re.IGNORECASE)
FENCE = re.compile(r"^\s*(`{3,}|~{3,})")  # also indented, inside list items
HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
INLINE_LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+[^)]*)?\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
HTML_TAG = re.compile(r"<[^>]+>")
NOT_IN_SLUG = re.compile(r"[^\w\- ]")


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def closes(fence: str, candidate: str, line: str) -> bool:
    """A closing fence: the same character, at least as long, nothing after it."""
    return (
        candidate[0] == fence[0]
        and len(candidate) >= len(fence)
        and not line.strip()[len(candidate) :].strip()
    )


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    lines, fence = [], None
    for number, line in enumerate(text.splitlines(), start=1):
        match = FENCE.match(line)
        if fence is None:
            if match:
                fence = match.group(1)
                continue
            lines.append((number, line))
        elif match and closes(fence, match.group(1), line):
            fence = None
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text, before de-duplication."""
    text = INLINE_LINK.sub(lambda m: m.group(1), heading)
    text = HTML_TAG.sub("", text).strip().lower()
    return NOT_IN_SLUG.sub("", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading anchor of a markdown text; repeated slugs get -1, -2, ... as on GitHub."""
    occurrences: dict[str, int] = {}
    for _, line in prose_lines(text):
        match = HEADING.match(line)
        if not match:
            continue
        base = anchor = slug(match.group(2) or "")
        while anchor in occurrences:
            occurrences[base] += 1
            anchor = f"{base}-{occurrences[base]}"
        occurrences[anchor] = 0
    return set(occurrences)


def links(text: str) -> list[tuple[int, str]]:
    """(line number, target) of every link outside code."""
    found = []
    for number, line in prose_lines(text):
        line = INLINE_CODE.sub("", line)
        targets = [m.group(2) for m in INLINE_LINK.finditer(line)]
        definition = REFERENCE_DEFINITION.match(line)
        if definition:
            targets.append(definition.group(1))
        found += [(number, target.strip("<>")) for target in targets]
    return found


def broken_links(text: str, source: Path) -> list[str]:
    """One line per link of `text` (held by the file `source`) that does not resolve."""
    problems = []
    for number, target in links(text):
        if EXTERNAL.match(target):
            continue
        where = f"{source.name}:{number}: {target}"
        path_part, _, anchor = target.partition("#")
        path = (source.parent / path_part).resolve() if path_part else source
        if path_part and not path.exists():
            problems.append(f"{where}: no such file or directory")
            continue
        if not anchor:
            continue
        if path_part and (path.suffix != ".md" or not path.is_file()):
            problems.append(f"{where}: an anchor needs a markdown file")
            continue
        headings = anchors(path.read_text(encoding="utf-8") if path_part else text)
        if anchor not in headings:
            problems.append(f"{where}: no heading with anchor #{anchor} in {path.name}")
    return problems


def test_every_relative_link_and_anchor_resolves():
    problems = []
    for path in markdown_files():
        problems += broken_links(path.read_text(encoding="utf-8"), path)
    assert problems == []


def test_the_link_check_reports_a_broken_link_and_a_broken_anchor(tmp_path):
    (tmp_path / "target.md").write_text("# Target\n\n## Real heading\n\ntext\n")
    source = tmp_path / "source.md"
    text = "\n".join(
        [
            "# Source",
            "[fine](target.md#real-heading) [fine too](#source) [web](https://example.com/x)",
            "[missing file](missing.md)",
            "[missing anchor](target.md#no-such-heading)",
            "[missing here](#nowhere)",
            "`[in code](missing-too.md)`",
            "```",
            "[in a block](missing-three.md)",
            "```",
        ]
    )

    assert broken_links(text, source) == [
        "source.md:3: missing.md: no such file or directory",
        "source.md:4: target.md#no-such-heading: no heading with anchor #no-such-heading"
        " in target.md",
        "source.md:5: #nowhere: no heading with anchor #nowhere in source.md",
    ]


def test_slugs_follow_github():
    assert slug("Why these numbers") == "why-these-numbers"
    assert slug("The image tag, and why a release never goes backwards") == (
        "the-image-tag-and-why-a-release-never-goes-backwards"
    )
    assert slug("`zdt bump`: what it writes") == "zdt-bump-what-it-writes"
    assert slug("v1 → v2 (make demo)") == "v1--v2-make-demo"
    assert slug("See [the docs](docs/x.md) now") == "see-the-docs-now"
    assert slug("snake_case and Hyphen-ated") == "snake_case-and-hyphen-ated"
    assert anchors("# A\n## A\n```\n# A\n```\n### A\n") == {"a", "a-1", "a-2"}
    assert anchors("# A\n# A-1\n# A\n") == {"a", "a-1", "a-2"}


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


def test_readme_opens_with_the_two_commands():
    lines = [line for line in README.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert lines[0].startswith("# "), "the title comes first"
    assert FENCE.match(lines[1]), "the first thing after the title is a code block"
    end = next(i for i in range(2, len(lines)) if FENCE.match(lines[i]))
    block = lines[2:end]
    commands = [line.split("#", 1)[0].strip() for line in block]
    assert commands == FRONT_DOOR_COMMANDS


def test_every_page_under_docs_is_linked_from_the_readme():
    linked = {
        (README.parent / target.partition("#")[0]).resolve()
        for _, target in links(README.read_text(encoding="utf-8"))
        if not EXTERNAL.match(target) and target.partition("#")[0]
    }
    pages = [path for path in sorted(DOCS.rglob("*")) if path.is_file()]
    assert pages, "docs/ holds the long documentation"
    assert [str(path.relative_to(ROOT)) for path in pages if path.resolve() not in linked] == []
