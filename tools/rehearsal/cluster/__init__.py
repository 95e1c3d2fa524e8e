"""The emulated cluster: the controllers (deployment.py, rollouts/), what runs on a node (node/:
the kubelet and the container runtimes), the network (network/) and the faults a run injects."""
