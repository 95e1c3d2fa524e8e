"""Rollout rehearsal: a v1 -> v2 rolling update of the rendered manifests, on one machine.

Real: the rendered manifests (kustomize), the server processes, their signals, the load.
Emulated: the Deployment controller, the kubelet and kube-proxy (see docs/rehearsal.md).
"""
