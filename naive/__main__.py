"""`python -m naive`: plain gunicorn, same environment variables and worker type as the app."""

import os
import sys

from gunicorn.app.wsgiapp import WSGIApplication


def main() -> None:
    env = os.environ
    sys.argv = [
        sys.argv[0],
        f"--bind={env.get('HOST', '0.0.0.0')}:{env.get('PORT', '8080')}",
        f"--workers={env.get('WEB_CONCURRENCY', '2')}",
        "--worker-class=gthread",
        "--threads=4",
        f"--graceful-timeout={env.get('GRACEFUL_TIMEOUT', '30')}",
        "--no-control-socket",
        "naive.app:app",
    ]
    WSGIApplication("%(prog)s", prog="python -m naive").run()


if __name__ == "__main__":
    main()
