"""Print argocd/'s AppProject and Application with only the repository URL replaced, for
`kubectl apply -f -`: the Argo CD e2e (tools/e2e/argocd.sh) serves this checkout from a git
server of its own, and everything else must stay exactly as users apply it.

    python tools/e2e/argocd_app.py argocd/ git://git-server.git-server.svc.cluster.local/repo.git

The Application's spec.source.repoURL and the project's spec.sourceRepos (one entry, the same
URL: tests/test_argocd.py) are replaced; a directory that does not hold exactly that is refused
with one line naming the file and the field, exit status 2. Needs PyYAML.
"""

import argparse
import sys
from pathlib import Path

import yaml


class ManifestError(Exception):
    """argocd/ is not the project and application this script knows; one line."""


def load(directory: Path) -> dict[str, tuple[Path, dict]]:
    """The manifests of the directory by kind, each with its file."""
    manifests: dict[str, tuple[Path, dict]] = {}
    for path in sorted(directory.glob("*.yaml")):
        manifest = yaml.safe_load(path.read_text())
        kind = manifest.get("kind") if isinstance(manifest, dict) else None
        if kind in manifests:
            raise ManifestError(f"{path}: a second {kind} (the first is {manifests[kind][0]})")
        manifests[kind] = (path, manifest)
    for kind in ("AppProject", "Application"):
        if kind not in manifests:
            raise ManifestError(f"{directory}: no {kind} in its *.yaml files")
    return manifests


def with_repository(directory: Path, url: str) -> list[dict]:
    """The AppProject and the Application of `directory`, their repository URL set to `url`."""
    manifests = load(directory)
    project_path, project = manifests["AppProject"]
    app_path, application = manifests["Application"]
    try:
        source = application["spec"]["source"]
        current = source["repoURL"]
    except (KeyError, TypeError):
        raise ManifestError(f"{app_path}: no spec.source.repoURL") from None
    repos = (project.get("spec") or {}).get("sourceRepos")
    if repos != [current]:
        raise ManifestError(
            f"{project_path}: spec.sourceRepos is {repos}, not [{current}] as in {app_path}"
        )
    source["repoURL"] = url
    project["spec"]["sourceRepos"] = [url]
    return [project, application]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("directory", type=Path, help="the directory of the two manifests")
    parser.add_argument("url", help="the repository URL Argo CD is to read")
    args = parser.parse_args(argv)
    try:
        manifests = with_repository(args.directory, args.url)
    except (ManifestError, OSError, yaml.YAMLError) as error:
        print(f"argocd_app.py: {str(error).splitlines()[0]}", file=sys.stderr)
        return 2
    sys.stdout.write(yaml.safe_dump_all(manifests, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
