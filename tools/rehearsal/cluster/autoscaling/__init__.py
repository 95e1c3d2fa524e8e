"""The HorizontalPodAutoscaler controller (autoscaling/v2), emulated after kubernetes
pkg/controller/podautoscaler."""
