"""The textbook recipe, kept to prove that the checks can fail.

A global "ready" flag flipped by the application's own SIGTERM handler, served by plain gunicorn.
Under gunicorn the handler runs inside each worker and replaces gunicorn's own worker handler:
`/ready` turns 500, but the workers never stop on their own and are killed when gunicorn's
graceful timeout runs out, cutting whatever they are still serving; nothing ever tells keep-alive
clients to leave. Used by tests/test_server.py and the rollout rehearsal's naive run; never
deployed.
"""
