"""Smart booking: a patient describes a need (`request`), a worker (`tasks`) runs the job
(`job`), which books the best of the slots `scoring` ranks.

`job_group` and `job_payload` are also read from here by the job's websocket consumer
(scheduling/consumers.py).
"""

from .job import job_group, job_payload

__all__ = ["job_group", "job_payload"]
