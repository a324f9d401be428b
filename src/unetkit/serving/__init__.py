"""HTTP model service: the original REST protocol, a modern JSON API, a web page, micro-batching and limits."""

from unetkit.serving.limits import ApiError, ServeSettings

__all__ = ["ApiError", "ServeSettings", "create_app"]


def __getattr__(name: str):
    if name == "create_app":  # imported lazily: FastAPI and the model stack load only when a service is built
        from unetkit.serving.app import create_app

        return create_app
    raise AttributeError(name)
