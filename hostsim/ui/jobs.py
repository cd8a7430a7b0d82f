"""Long-running commands (Get Refresh Token) in a worker thread each, under an unguessable id.

The page starts one, then polls its status: the log, a URL to open, the time left, and in the
end the same answer a quick command gives. Cancel sets the command's ``ctx.cancelled()``.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

from hostsim.ui.editors import Run

FIRST_NEWS_S = 3.0  # the start answer waits this long for a URL to open (still a user gesture)
AFTER_FIRST_LINE_S = 0.5
KEEP_FINISHED = 50


class Job:
    def __init__(self, run: Run) -> None:
        self.id = secrets.token_urlsafe(16)
        self.run = run
        self.started = time.monotonic()
        self.answer: dict[str, Any] | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._work, name=f"hostsim-ui-{run.command.id}",
                                       daemon=True)

    def _work(self) -> None:
        try:
            self.answer = self.run.execute()
        finally:
            self.done.set()
            self.run.ctx.changed.set()

    def status(self) -> dict[str, Any]:
        ctx = self.run.ctx
        state = "running" if not self.done.is_set() else "finished"
        status: dict[str, Any] = {
            "job": self.id, "state": state, "label": self.run.command.label,
            "command": self.run.command.id, "open_url": ctx.url, "log": ctx.log_lines(),
            "cancelling": ctx.cancelled() and state == "running",
            "elapsed_s": round(time.monotonic() - self.started, 1),
        }
        if self.run.timeout_s is not None:
            status["seconds_left"] = max(0, round(self.run.timeout_s - status["elapsed_s"]))
        if self.answer is not None:
            status["answer"] = self.answer
        return status


class Jobs:
    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def start(self, run: Run) -> Job:
        job = Job(run)
        with self._lock:
            finished = [k for k, j in self._jobs.items() if j.done.is_set()]
            for key in finished[: max(0, len(finished) - KEEP_FINISHED)]:
                del self._jobs[key]
            self._jobs[job.id] = job
        job.thread.start()
        # a sign-in URL arrives within milliseconds: answering with it lets the page open it
        # while the click still counts as the person's (popup blockers allow that)
        deadline = time.monotonic() + FIRST_NEWS_S
        while run.ctx.url is None and not job.done.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            run.ctx.changed.wait(left)
            run.ctx.changed.clear()
            if run.ctx.lines:  # it speaks but opens nothing (yet): a URL comes right after, or not
                deadline = min(deadline, time.monotonic() + AFTER_FIRST_LINE_S)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def stop_all(self, wait_s: float = 5.0) -> None:
        """Cancels every running job and waits a little for them to end."""
        with self._lock:
            running = [j for j in self._jobs.values() if not j.done.is_set()]
        for job in running:
            job.run.ctx.cancel.set()
        deadline = time.monotonic() + wait_s
        for job in running:
            job.thread.join(max(0.0, deadline - time.monotonic()))
