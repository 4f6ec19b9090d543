"""The one list of due work: the periodic jobs in `CELERY_BEAT_SCHEDULE`.

Each app's `tasks.py` owns its periodic jobs; settings name them once in the beat schedule. Beat
runs them on their schedule; `manage.py run_billing` (installs without a broker) runs the same
list, in order, in-process. Nothing that one runs can be missed by the other.

Every periodic task takes `inline`: False under beat (it may fan work out to other tasks), True
when run here (it does the work itself and returns a summary).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobResult:
    name: str
    task: str
    summary: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    @property
    def failures(self) -> list[str]:
        if self.error:
            return [self.error]
        return list(self.summary.get("failures", []))


def scheduled_tasks() -> dict[str, str]:
    """Schedule name → dotted task path, in the schedule's order."""
    return {name: entry["task"] for name, entry in settings.CELERY_BEAT_SCHEDULE.items()}


def run_scheduled_jobs() -> list[JobResult]:
    """Run every scheduled job once, in-process. One job failing doesn't stop the others."""
    results = []
    for name, path in scheduled_tasks().items():
        task = import_string(path)
        try:
            summary = task(inline=True) or {}
        except Exception as exc:
            logger.exception("Scheduled job %s failed", name)
            results.append(JobResult(name, path, error=f"{type(exc).__name__}: {exc}"))
            continue
        results.append(JobResult(name, path, summary=summary))
    return results
