"""Render the kustomize overlays and check the zero-downtime contract they encode."""
