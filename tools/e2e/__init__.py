"""Rollout checks for a real cluster: an in-cluster load generator and the check of its result."""
