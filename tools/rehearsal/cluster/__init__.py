"""The emulated cluster: controllers, kubelet, container runtimes, network, faults."""
