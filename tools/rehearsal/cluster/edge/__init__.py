"""The path from outside the cluster: a real L7 proxy (Caddy) in front of the pods, with the
list of pods it may send to coming from its own late view (a gateway's EndpointSlice watch, or
an emulated ALB target group)."""
