"""The path from outside the cluster: a real L7 proxy (HAProxy, answering as an AWS ALB does:
a 502 when a pod fails a request, nothing sent again) in front of the pods, with the list of
pods it may send to coming from its own late view (a gateway's EndpointSlice watch, or an
emulated ALB target group)."""
