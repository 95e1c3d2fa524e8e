"""What a run found: figures and text (findings), failure traces, pictures (plot)."""
