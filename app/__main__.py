"""`python -m app`: run the gunicorn master in this process (PID 1 in the image)."""

import os
import sys

from app.settings import Settings, SettingsError

APP_FACTORY = "app:create_app()"


def main(app_factory: str = APP_FACTORY, prog: str = "python -m app") -> int:
    """Serve `app_factory` (gunicorn's `module:call()`) under the app's gunicorn configuration."""
    try:
        Settings.from_env(os.environ)
    except SettingsError as error:
        print(f"app: invalid setting: {error}", file=sys.stderr)
        return 2
    from gunicorn.app.wsgiapp import WSGIApplication

    sys.argv = [sys.argv[0], "--config", "python:app.gunicorn_conf", app_factory]
    WSGIApplication("%(prog)s", prog=prog).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
