"""The PHI audit trail: who read or changed which patient's data, when, from where.

Call `audit.services.record(request, action, obj)` from a view (written after the response,
batched) or `audit.services.record_now(action, obj, user=...)` from a task or a command.
"""
