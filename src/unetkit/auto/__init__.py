"""Self-configuring training: ``unetkit.auto(project, out, budget="60m")`` (docs/auto.md).

The package is callable, so that ``unetkit.auto(...)`` runs :func:`unetkit.auto.run.auto`; its parts are
``fingerprint``, ``plan`` (the rules), ``planner`` (a project → its plan), ``probe``, ``folds``, ``select``,
``report`` and ``run``.
"""

from __future__ import annotations

import sys
import types

__all__ = ["AutoResult", "Plan", "auto", "plan_project"]


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from unetkit.auto.run import auto

        return auto(*args, **kwargs)

    def __getattr__(self, name: str):
        if name in ("AutoResult", "auto"):
            from unetkit.auto import run

            return getattr(run, name)
        if name == "plan_project":
            from unetkit.auto.planner import plan_project

            return plan_project
        if name == "Plan":
            from unetkit.auto.plan import Plan

            return Plan
        raise AttributeError(f"module 'unetkit.auto' has no attribute {name!r}")


sys.modules[__name__].__class__ = _CallablePackage
