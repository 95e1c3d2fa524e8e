"""`python -m app`: run the gunicorn master in this process (PID 1 in the image)."""

import os
import sys

from app.settings import Settings, SettingsError


def main() -> int:
    try:
        Settings.from_env(os.environ)
    except SettingsError as error:
        print(f"app: invalid setting: {error}", file=sys.stderr)
        return 2
    from gunicorn.app.wsgiapp import WSGIApplication

    sys.argv = [sys.argv[0], "--config", "python:app.gunicorn_conf", "app:create_app()"]
    WSGIApplication("%(prog)s", prog="python -m app").run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
