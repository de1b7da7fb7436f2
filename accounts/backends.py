"""Django's model permissions, answered from the grants in force.

`user.has_perm("app_label.codename")` (the API's permission class, the admin, the schedule
board, the websockets) goes through this backend: a user holds the permissions that the
grants give their roles (`clinic.permissions.role_permissions`). The answer needs only the
role names, which the API's token authentication reads with the user in one query; no
permission table is read. The role groups carry the same permissions (roles_sync writes the
grants into them) for the admin's pages about users and groups. Access comes from the roles
only: no permission is given to a user directly. An API client's principal (a user carrying
`api_scopes`, accounts.auth) holds the permissions of its scopes instead.
"""

from django.contrib.auth.backends import ModelBackend

from clinic.permissions import is_api_client, role_permissions, scope_permissions


class RoleBackend(ModelBackend):
    """ModelBackend (passwords, `is_active`, superusers) with permissions from the grants."""

    def _get_permissions(self, user_obj, obj, from_name: str) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if from_name != "group":
            return set()
        if not hasattr(user_obj, "_group_perm_cache"):
            # an API client's principal: its scopes (accounts.auth), not its roles
            user_obj._group_perm_cache = (
                scope_permissions(user_obj.api_scopes)
                if is_api_client(user_obj)
                else role_permissions(user_obj.roles)
            )
        return user_obj._group_perm_cache

    async def _aget_permissions(self, user_obj, obj, from_name: str) -> set[str]:
        return self._get_permissions(user_obj, obj, from_name)
