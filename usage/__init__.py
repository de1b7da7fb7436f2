"""Usage metering: what each clinic uses, per day (API calls, smart-booking jobs, webhooks
delivered, notifications sent).

`usage.count(kind, n=1)` is the one way in, from any app, on the request path or in a task:
summed in the process and written to Redis a batch a second (clinic.counting; a Redis outage
delays counts, never a request). A
beat task (`usage.rollup`) moves the counters into PostgreSQL's public `UsageDay` rows, which
the clinic's `/api/v1/usage/` and the platform's usage page read.
"""

from usage.counters import (
    API_CALL,
    KINDS,
    NOTIFICATION_SENT,
    SMART_BOOKING_JOB,
    WEBHOOK_DELIVERED,
    count,
)

__all__ = [
    "API_CALL",
    "KINDS",
    "NOTIFICATION_SENT",
    "SMART_BOOKING_JOB",
    "WEBHOOK_DELIVERED",
    "count",
]
