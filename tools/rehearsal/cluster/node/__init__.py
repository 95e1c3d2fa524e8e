"""What runs on a node: the kubelet (probes, termination, restarts, readiness gates) and the
container runtimes that start its containers, as processes (with cgroup CPU limits) or with a
container engine."""
