"""A service no one here wrote the shutdown of: the smallest ASGI app, served by uvicorn as it
comes (`uvicorn examples.uvicorn.hello:app`). It answers every GET with its version, in the body
and in X-App-Version, and nothing else: what uvicorn does on SIGTERM is uvicorn's own."""

import os

VERSION = os.environ.get("APP_VERSION", "unknown").encode()


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"x-app-version", VERSION)],
        }
    )
    await send({"type": "http.response.body", "body": VERSION + b"\n"})
