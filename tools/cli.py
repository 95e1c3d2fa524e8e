"""`zdt`: the repository's one command line (zero-downtime tools).

    zdt COMMAND [ARGUMENTS]      zdt COMMAND --help for each command's own options

Each command lives in its own module and is imported only when it runs, so the release commands
work with the small release dependency group installed.
"""

import importlib
import sys
from dataclasses import dataclass

PROG = "zdt"


@dataclass(frozen=True)
class Command:
    module: str  # has main(argv: list[str]) -> int
    summary: str


COMMANDS = {
    "demo": Command(
        "tools.rehearsal.demo.main",
        "the rollout rehearsal: ours with the HPA, the naive design, releases (make demo)",
    ),
    "rehearse": Command(
        "tools.rehearsal.cli", "rehearse one rollout between two rendered states under load"
    ),
    "validate": Command(
        "tools.validate.cli", "render every overlay and check the contract (make validate)"
    ),
    "bump": Command("tools.release.bump", "set an overlay's image tag and digest (a release)"),
    "push": Command("tools.release.push", "commit paths as the release bot and push, retrying"),
    "show": Command("tools.release.show", "print one field of an overlay's image entry"),
    "image": Command("tools.image.cli", "build the service image for each version"),
    "bench": Command("tools.bench.cli", "server throughput, latency, start-up and memory"),
    "soak": Command(
        "tools.bench.soak", "many rehearsals back to back: failures, causes, upper bounds"
    ),
    "check-load": Command(
        "tools.e2e.check_load", "judge the cluster load generator's summary (e2e)"
    ),
}


def usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [
        f"usage: {PROG} COMMAND [ARGUMENTS]   ({PROG} COMMAND --help for its options)",
        "",
        "commands:",
        *(f"  {name:<{width}}  {command.summary}" for name, command in COMMANDS.items()),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    name, arguments = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"{PROG}: unknown command {name!r} (one of: {', '.join(COMMANDS)})", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name].module)
    return module.main(arguments)
