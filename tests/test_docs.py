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


# Release advice that must not come back.

RELEASE_MD = DOCS / "release.md"


def one_time_setup_step(text: str, number: int) -> str:
    """Step NUMBER of release.md's "One-time AWS setup": from its `N. ` line to the next step's."""
    section = text.split("## One-time AWS setup", 1)[1].split("\n## ", 1)[0]
    step = re.split(rf"^{number}\. ", section, flags=re.M)[1]
    return re.split(rf"^{number + 1}\. ", step, flags=re.M)[0]


def branch_protection_problems(text: str) -> list[str]:
    """Why release.md's advice for a protected main would not work (empty: it would)."""
    problems = []
    flat = " ".join(text.split())
    if re.search(r"add GitHub Actions to the ruleset'?s? bypass list", flat, re.IGNORECASE):
        problems.append("advises adding GitHub Actions to the bypass list")
    step = " ".join(one_time_setup_step(text, 5).split())
    for needed in ("deploy key", "GitHub App", "bypass list", "status checks", "[skip ci]"):
        if needed.lower() not in step.lower():
            problems.append(f"step 5 does not name {needed!r}")
    # How the workflow uses the deploy key: from a secret, in the push step, over SSH.
    for needed in ("secrets.RELEASE_DEPLOY_KEY", "GIT_SSH_COMMAND", "zdt push --remote"):
        if needed not in step:
            problems.append(f"step 5 does not show {needed}")
    return problems


def test_the_branch_protection_advice_names_what_works():
    assert branch_protection_problems(RELEASE_MD.read_text(encoding="utf-8")) == []


def test_the_branch_protection_check_catches_the_old_advice():
    old = (
        "5. **Let the workflow push the tag commit.** If `main` is protected by a ruleset that\n"
        "   requires pull requests, add GitHub Actions to the ruleset's bypass list (or give the\n"
        "   job a deploy key with write access). The commit carries `[skip ci]` as well.\n"
    )
    text = RELEASE_MD.read_text(encoding="utf-8")
    broken = text.replace(one_time_setup_step(text, 5), old.removeprefix("5. "))
    problems = branch_protection_problems(broken)
    assert "advises adding GitHub Actions to the bypass list" in problems
    assert "step 5 does not show GIT_SSH_COMMAND" in problems


# `$/` (the self-repository form of `uses:`): GitHub documents it since 2026-07-30.

OUTDATED_SELF_REPOSITORY = re.compile(
    r"does not (?:describe|document)[^.]*yet|until it documents|not (?:yet )?documented",
    re.IGNORECASE,
)


def self_repository_claims() -> list[str]:
    """Every sentence of the docs and of .github that mentions `$/`."""
    files = [*DOCS.rglob("*.md"), README, *(ROOT / ".github").rglob("*.yml")]
    sentences = []
    for path in files:
        flat = " ".join(line.strip().lstrip("#").strip() for line in path.read_text().splitlines())
        sentences += [s for s in re.split(r"(?<=[.;])\s", flat) if "`$/`" in s]
    return sentences


def test_no_claim_that_github_does_not_document_the_self_repository_form():
    claims = self_repository_claims()
    assert claims, "release.yml and release.md explain why the call is `./`"
    assert [claim for claim in claims if OUTDATED_SELF_REPOSITORY.search(claim)] == []
    assert any("2026-07-30" in claim for claim in claims)


def test_the_self_repository_check_catches_the_old_claim():
    old = (
        "zizmor's self-repository audit prefers the newer `$/` form, which GitHub's workflow "
        "syntax reference does not describe yet (docs/release.md)."
    )
    assert OUTDATED_SELF_REPOSITORY.search(old)
    assert OUTDATED_SELF_REPOSITORY.search("carries the ignore until it documents `$/`.")
