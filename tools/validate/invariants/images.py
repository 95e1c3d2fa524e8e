"""Images: pinned, and the only thing that differs between releases."""

import json
from collections.abc import Iterator

from tools.imageref import ImageRef
from tools.validate.invariants.common import Problems, served_template
from tools.validate.overlays import (
    Overlay,
    resource_id,
)
from tools.validate.workload import (
    container_field,
    pod_spec,
)


def check_image_pinned(overlay: Overlay) -> Problems:
    if not (served := served_template(overlay)):
        return
    holder, container = served
    image = container.get("image", "")
    reference = ImageRef.parse(image)
    if reference.tag in (None, "latest") and not reference.digest:
        yield overlay.problem(
            holder,
            container_field(container, "image"),
            f"{image!r} must carry a release tag, not latest",
        )


def check_release_tags_differ(overlays: list[Overlay]) -> Problems:
    seen: dict[str, str] = {}
    for overlay in overlays:
        if not (served := served_template(overlay)):
            continue
        holder, container = served
        image = container.get("image", "")
        if image in seen:
            yield overlay.problem(
                holder,
                container_field(container, "image"),
                f"{image!r} is also the image of {seen[image]}: each overlay is another release",
            )
        seen.setdefault(image, overlay.name)


def without_images(resource: dict) -> dict:
    """A copy of the resource with every container image of its pod template blanked out."""
    if resource.get("kind") not in ("Deployment", "Rollout") or not pod_spec(resource):
        return resource
    copy = {**resource, "spec": {**resource["spec"]}}
    template = copy["spec"]["template"] = {**copy["spec"]["template"]}
    spec = template["spec"] = {**template["spec"]}
    spec["containers"] = [{**c, "image": None} for c in spec.get("containers", [])]
    return copy


def differences(left, right, path: str = "") -> Iterator[tuple[str, object, object]]:
    """The paths where two YAML values differ; list items with names are matched by name."""
    if isinstance(left, dict) and isinstance(right, dict):
        for key in sorted(left.keys() | right.keys()):
            yield from differences(left.get(key), right.get(key), f"{path}.{key}".lstrip("."))
    elif isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            label = a.get("name", index) if isinstance(a, dict) else index
            yield from differences(a, b, f"{path}[{label}]")
    elif left != right:
        yield path, left, right


def check_only_image_differs(overlays: list[Overlay]) -> Problems:
    if len(overlays) < 2:
        return
    reference = overlays[0]
    expected = {resource_id(r): without_images(r) for r in reference.resources}
    for overlay in overlays[1:]:
        actual = {resource_id(r): without_images(r) for r in overlay.resources}
        for name in sorted(expected.keys() - actual.keys()):
            yield overlay.problem(name, "kind", f"missing, but rendered by {reference.name}")
        for name in sorted(actual.keys() - expected.keys()):
            yield overlay.problem(name, "kind", f"not rendered by {reference.name}")
        for name in sorted(expected.keys() & actual.keys()):
            for field, theirs, ours in differences(expected[name], actual[name]):
                yield overlay.problem(
                    name,
                    field,
                    f"is {json.dumps(ours)} here but {json.dumps(theirs)} in {reference.name}:"
                    " overlays may change only the image tag",
                )
        yield from check_same_repository(reference, overlay)


def check_same_repository(reference: Overlay, overlay: Overlay) -> Problems:
    if not (ours := served_template(overlay)) or not (theirs := served_template(reference)):
        return
    holder, container = ours
    repository = ImageRef.parse(container.get("image", "")).repository
    expected = ImageRef.parse(theirs[1].get("image", "")).repository
    if repository != expected:
        yield overlay.problem(
            holder,
            container_field(container, "image"),
            f"repository {repository!r} differs from {expected!r} in {reference.name}:"
            " overlays may change only the image tag",
        )
