"""What a rehearsal reads from the rendered manifests (workload: the Deployment or Rollout, its
pod template, Services, PodDisruptionBudget and HorizontalPodAutoscaler), where it reads them
from (sources), and variants of a real overlay (variants)."""
