"""The maintenance timer: reminders, expiry extensions, reconciliation, stuck creations (shared.maintenance).

The schedule is the app setting MAINTENANCE_SCHEDULE (NCRONTAB, UTC), resolved by the host. With
`use_monitor` the host notices a missed occurrence and delivers one run with `past_due`; the run does
what is due now, which covers the missed occurrences once.

Azure imports every trigger module at each cold start, before the first invocation: the modules
that do the work are imported inside the functions, by the first invocation that needs them.
"""

from __future__ import annotations

import azure.functions as func

bp = func.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="%MAINTENANCE_SCHEDULE%", use_monitor=True, run_on_startup=False)
def scheduled_upkeep(timer: func.TimerRequest, context: func.Context) -> None:
    from shared.maintenance.runner import run_maintenance
    from shared.pipeline import services

    # A short wait for the connection's token (the queue triggers' wait): when intake and callbacks are
    # using it, the timer yields.
    services.on_invocation(context, lambda use: run_maintenance(use.store, use.queue_connective(), use.settings,
                                                                past_due=timer.past_due))
