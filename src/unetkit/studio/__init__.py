"""unetkit studio: a local web app (JSON API + NiceGUI pages) for the Supervisely tutorial by clicking.

Layout and the contract between its parts: ``CONTRACT.md`` beside this file. ``create_app`` is in
:mod:`unetkit.studio.app`; long work runs as tasks (``unetkit`` subprocesses, :mod:`unetkit.studio.tasks`).
"""
