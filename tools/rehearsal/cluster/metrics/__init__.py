"""Resource metrics: what the kubelet reports of each pod's cgroup (CPU and memory), and
metrics-server, which scrapes it and serves the resource metrics API the HPA reads."""
