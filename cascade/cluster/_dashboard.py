"""A local cluster's dashboard, loaded when someone opens it instead of at every start.

distributed builds the bokeh dashboard inside ``Scheduler.__init__``: importing bokeh and the
dashboard's components took ~0.5 CPU s in the ``cascade`` process on every ``--scheduler local``
run, before a single worker was asked for, whether or not anyone looked at it. The scheduler's HTTP
server does not need bokeh (distributed starts it, on the dashboard's address, with or without the
dashboard), so a cluster is started without the dashboard and :class:`LazyDashboard` answers every
dashboard address of that server: the first request imports the dashboard in a thread, adds it to the
running server with distributed's own ``connect`` and redirects to the same address, which the
dashboard then serves. Same link, same pages; the first page takes that import longer. The server's
other routes (``/health``, ``/metrics``, ``/info`` ...) are untouched.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

from tornado import web

__all__ = ["LazyDashboard", "lazy_dashboard"]

_log = logging.getLogger(__name__)
#: The lazy dashboards of this process's schedulers, by scheduler address (:func:`lazy_dashboard`).
_DASHBOARDS: weakref.WeakValueDictionary[str, LazyDashboard] = weakref.WeakValueDictionary()


def lazy_dashboard(address: str) -> LazyDashboard | None:
    """The lazy dashboard of the in-process scheduler at ``address``, or None.

    Parameters
    ----------
    address : str
        The scheduler's address (``client.scheduler.address``).
    """
    return _DASHBOARDS.get(address)


class LazyDashboard:
    """Serve a scheduler's bokeh dashboard from its first request on.

    Parameters
    ----------
    scheduler : distributed.Scheduler
        A scheduler running in this process, started with ``dashboard=False``.
    """

    def __init__(self, scheduler: Any) -> None:
        self.scheduler = scheduler
        self.attached = False
        self.error: BaseException | None = None
        self._loading: asyncio.Future[None] | None = None
        self.placeholder = web.Application([(r".*", _FirstRequest, {"dashboard": self})])
        scheduler.http_application.add_application(self.placeholder)
        _DASHBOARDS[str(scheduler.address)] = self

    async def attach(self) -> None:
        """Import the dashboard (in a thread) and add it to the server, once; later calls wait for it.

        Raises
        ------
        BaseException
            What importing or connecting the dashboard raised (bokeh missing, say); every later
            request gets the same error.
        """
        if self._loading is None:
            self._loading = asyncio.ensure_future(self._attach())
        await asyncio.shield(self._loading)

    async def _attach(self) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(None, _import_dashboard)
            from distributed.dashboard.scheduler import connect

            app = self.scheduler.http_application
            # the prefix Scheduler.__init__ gets by default (cascade never sets another)
            connect(app, self.scheduler.http_server, self.scheduler, prefix="/")  # type: ignore[no-untyped-call]
            app.applications.remove(self.placeholder)
        except BaseException as err:
            self.error = err
            _log.warning("cascade could not start the dask dashboard: %s", err)
            raise
        self.attached = True


def _import_dashboard() -> None:
    import distributed.dashboard.scheduler  # noqa: F401  (bokeh: the slow part, off the event loop)


class _FirstRequest(web.RequestHandler):
    """Any dashboard address before the dashboard exists: load it, then send the browser back."""

    def initialize(self, dashboard: LazyDashboard) -> None:
        self.dashboard = dashboard

    async def get(self) -> None:
        try:
            await self.dashboard.attach()
        except Exception as err:
            self.set_status(503)
            self.finish(f"the dask dashboard could not start: {type(err).__name__}: {err}\n")
            return
        self.redirect(self.request.uri or "/")
