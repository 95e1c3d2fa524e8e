"""`zdt demo` (`make demo`, main.py): the rollout rehearsal of ours beside the naive design, and
the rehearsals that run beside it, each in a module of its own: releases.py (a broken and a good
release under each strategy), lag.py (ours at two endpoint lags), scaledown.py (the HPA removing
pods), outside.py (the path from outside); targets.py prints the benchmark targets."""
