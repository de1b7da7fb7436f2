"""Rate limits of API clients: per client and per clinic (all its clients together), in
requests per minute, counted in Redis with a sliding window.

The window is the sliding-window counter: the current minute's count plus the previous
minute's weighted by how much of it the window still covers (so no burst of twice the rate
across a minute's boundary, as a fixed window allows). Both counters of a request are counted
in one pipelined round trip. The answer carries `RateLimit-Limit`, `RateLimit-Remaining` and
`RateLimit-Reset` (IETF httpapi-ratelimit-headers, of the tighter of the two limits); over a
limit it is a 429 problem with `Retry-After`. Redis down: the request passes (fail open).
"""

import logging
import math
import time

from django.conf import settings
from redis.exceptions import RedisError
from rest_framework.throttling import BaseThrottle

from clinic.permissions import is_api_client
from clinic.tenancy import tenant_connection
from usage.counters import redis_client
from usage.selectors import clinic_rate_limit

logger = logging.getLogger(__name__)

WINDOW = 60  # seconds


def _prefix() -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:ratelimit"


def limits_count(
    *, schema: str, client_id: str, client_limit: int, clinic_limit: int, now: float
) -> tuple[bool, int, int, float]:
    """Count one request; return (allowed, limit, remaining, reset seconds) of the tighter
    limit. Raises RedisError when Redis is unreachable."""
    window = int(now // WINDOW)
    weight = 1 - (now % WINDOW) / WINDOW  # the share of the previous minute still covered
    keys = {
        "clinic": f"{_prefix()}:{schema}:clinic",
        "client": f"{_prefix()}:{schema}:client:{client_id}",
    }
    pipe = redis_client().pipeline(transaction=False)
    for key in keys.values():
        pipe.incr(f"{key}:{window}")
        pipe.expire(f"{key}:{window}", 2 * WINDOW)
        pipe.get(f"{key}:{window - 1}")
    answers = pipe.execute()
    reset = (window + 1) * WINDOW - now
    verdicts = []
    for index, limit in enumerate((clinic_limit, client_limit)):
        current, previous = answers[3 * index], int(answers[3 * index + 2] or 0)
        used = previous * weight + current
        verdicts.append((used <= limit, limit, max(0, math.floor(limit - used)), reset))
    refused = [verdict for verdict in verdicts if not verdict[0]]
    return min(refused or verdicts, key=lambda verdict: verdict[2])


class ApiClientRateThrottle(BaseThrottle):
    """Requests of API clients, per client and per clinic (DEFAULT_THROTTLE_CLASSES; people
    are limited by the user and address throttles)."""

    wait_seconds: float | None = None

    def allow_request(self, request, view) -> bool:
        user = request.user
        if not is_api_client(user):
            return True
        schema = tenant_connection.schema_name
        try:
            allowed, limit, remaining, reset = limits_count(
                schema=schema,
                client_id=user.api_client_id,
                client_limit=user.api_rate_limit or settings.API_CLIENT_RATE_PER_MINUTE,
                clinic_limit=clinic_rate_limit(schema),
                now=time.time(),
            )
        except (RedisError, OSError):
            logger.warning("rate limits: Redis unreachable, request of %s let through", schema)
            return True
        # the middleware writes them on the answer, whatever it is
        request._request.ratelimit = (limit, remaining, math.ceil(reset))
        self.wait_seconds = reset
        return allowed

    def wait(self) -> float | None:
        return self.wait_seconds
