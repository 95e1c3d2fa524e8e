"""The network between clients and pods: endpoint views, proxies, pod addresses."""
