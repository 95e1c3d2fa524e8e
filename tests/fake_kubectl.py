"""A kubectl stand-in for the tests of the cluster scripts (tools/e2e/*.sh): a Python script
that plays the API server from a JSON state file (FAKE_KUBECTL_STATE). PRELUDE reads the state,
the command line into `state`, `options` and `positional`, and what was piped to `-f -` into
`stdin`; each test adds the behaviour of its cluster after it and ends with `finish()`, which
writes the state back. The same prelude serves other commands that play the same cluster (an
`argocd` stand-in)."""

import sys
import textwrap
from pathlib import Path

PRELUDE = r"""
import fcntl, json, os, sys

STATE = os.environ["FAKE_KUBECTL_STATE"]
args = sys.argv[1:]
# Before the lock: the writer of the pipe may be waiting for it.
stdin = sys.stdin.read() if "-f" in args else ""
# One call at a time, like one API server: `kubectl create ... | kubectl apply -f -` runs two.
lock = open(STATE + ".lock", "w")
fcntl.flock(lock, fcntl.LOCK_EX)
with open(STATE) as f:
    state = json.load(f)
with open(STATE + ".log", "a") as log:
    log.write(" ".join(args) + "\n")

TAKES_VALUE = {"--namespace", "--selector", "--output", "-k", "-f"}
options, positional = {}, []
rest = iter(args)
for arg in rest:
    if arg == "--":
        break
    if arg in TAKES_VALUE:
        options[arg] = next(rest)
    elif arg.startswith("-"):
        name, _, value = arg.partition("=")
        options[name] = value
    else:
        positional.append(arg)


# Write the state back and exit, with `error` on stderr.
def finish(status=0, error=None):
    if error:
        print(error, file=sys.stderr)
    with open(STATE, "w") as f:
        json.dump(state, f)
    sys.exit(status)
"""


def install(bin_dir: Path, behaviour: str, name: str = "kubectl") -> Path:
    """Write `bin_dir`/`name`: PRELUDE, then `behaviour`."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    command = bin_dir / name
    script = textwrap.dedent(PRELUDE) + textwrap.dedent(behaviour)
    command.write_text(f"#!{sys.executable}\n" + script)
    command.chmod(0o755)
    return command
