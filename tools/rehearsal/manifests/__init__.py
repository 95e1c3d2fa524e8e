"""What a rehearsal reads from the rendered manifests (spec), where it reads them from
(sources), and variants of a real overlay (variants)."""
