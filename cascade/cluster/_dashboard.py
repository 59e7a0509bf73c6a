"""A local cluster's dashboard, attached while the workers start instead of before.

distributed builds the bokeh dashboard inside ``Scheduler.__init__``: importing bokeh and the
dashboard's components took ~0.5 CPU s in the ``cascade`` process, on the critical path of every
``--scheduler local`` run before a single worker was asked for. The scheduler's HTTP server does not
need bokeh (distributed starts it with or without the dashboard, on the dashboard's address), so a
cluster is started without the dashboard and :class:`LateDashboard` imports it in a thread while the
workers start (they are forked from a server that is often still warming up), then adds it to the
running HTTP server on the scheduler's event loop: the same pages on the same link, which the command
prints as before. Until it is attached (typically before the first task), the link answers 404.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

__all__ = ["LateDashboard", "wait_for_dashboard"]

_log = logging.getLogger(__name__)
#: The dashboards being attached, by scheduler address (what :func:`wait_for_dashboard` finds).
_ATTACHING: weakref.WeakValueDictionary[str, LateDashboard] = weakref.WeakValueDictionary()


def wait_for_dashboard(address: str, timeout: float | None = None) -> bool:
    """Wait until the dashboard of the in-process scheduler at ``address`` is served.

    Parameters
    ----------
    address : str
        The scheduler's address (``client.scheduler.address``).
    timeout : float, optional
        Seconds to wait at most.

    Returns
    -------
    bool
        True when it is served; False when attaching failed, timed out, or none is being attached.
    """
    late = _ATTACHING.get(address)
    return late is not None and late.wait(timeout)


class LateDashboard:
    """Import the bokeh dashboard in a thread now; attach it to a scheduler once that exists.

    ``LateDashboard()`` starts the import at once; :meth:`attach` hands over the in-process
    scheduler (from the thread that started the cluster); :meth:`wait` waits until the pages are
    served (or attaching failed: the run goes on without them, with one warning in the log).
    """

    def __init__(self) -> None:
        self._scheduler: Any = None
        self._handed = threading.Event()
        self._done = threading.Event()
        self.error: BaseException | None = None
        self.served = False
        self._thread = threading.Thread(target=self._run, name="cascade-dashboard", daemon=True)
        self._thread.start()

    def attach(self, scheduler: Any) -> None:
        """Add the dashboard to ``scheduler``'s HTTP server as soon as it is imported.

        Parameters
        ----------
        scheduler : distributed.Scheduler
            A scheduler running in this process, started with ``dashboard=False``.
        """
        self._scheduler = scheduler
        _ATTACHING[str(scheduler.address)] = self
        self._handed.set()

    def cancel(self) -> None:
        """Attach nothing (the cluster did not start); the import thread ends after its import."""
        self._handed.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the dashboard is served or attaching failed; True when it is served.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait at most (None: no limit).
        """
        return self._done.wait(timeout) and self.served

    def _run(self) -> None:
        try:
            import distributed.dashboard.scheduler  # noqa: F401  (the slow part, off the loop)
        except BaseException as err:  # ImportError without bokeh; anything else is logged too
            self._finish(err)
            return
        self._handed.wait()
        scheduler = self._scheduler
        if scheduler is None:
            self._finish(None)
            return
        try:
            scheduler.loop.add_callback(self._connect, scheduler)
        except BaseException as err:  # the loop closed already: a run shorter than the import
            self._finish(err)

    def _connect(self, scheduler: Any) -> None:
        """On the scheduler's event loop: what ``Scheduler.__init__`` does with ``dashboard=True``."""
        try:
            from distributed.dashboard.scheduler import connect

            # the prefix Scheduler.__init__ gets by default (cascade never sets another)
            connect(scheduler.http_application, scheduler.http_server, scheduler, prefix="/")  # type: ignore[no-untyped-call]
        except BaseException as err:
            self._finish(err)
        else:
            self.served = True
            self._finish(None)

    def _finish(self, error: BaseException | None) -> None:
        if error is not None:
            self.error = error
            _log.warning("cascade could not start the dask dashboard: %s", error)
        self._done.set()
