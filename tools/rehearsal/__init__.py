"""Rollout rehearsal: a release of the rendered manifests, under load, on one machine.

Real: the rendered manifests (kustomize), the server processes, their signals, the load.
Emulated: the controllers, the kubelet and the network (see docs/rehearsal.md).

- manifests/: what a rehearsal reads from the rendered manifests, and variants of an overlay;
- cluster/: the emulated cluster: the Deployment and Argo Rollouts controllers (rollouts/),
  the HorizontalPodAutoscaler (autoscaling/) and metrics-server (metrics/), the kubelet and
  the container runtimes (node/), the network (network/: endpoint views, proxies, pod
  addresses), the path from outside (edge/), and the faults a run can inject;
- traffic/: the clients: the load process, its client models, the load's shapes and the outcome
  of a request;
- report/: what a run found: figures, failure traces, pictures;
- options.py, run.py, result.py: one rehearsal, from its options to its result;
- cli.py (`zdt rehearse`) and demo/ (`zdt demo`).
"""
