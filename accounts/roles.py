"""The clinic roles: every app's grants merged, and written into each clinic's role groups.

Each installed app may declare its grants in `<app>/grants.py` (`GRANTS`, in the format of
clinic.permissions); `grants_collect` finds them by discovery, so an app adds its grants
without editing accounts. The accounts app installs the merge when Django starts
(`AccountsConfig.ready`); `roles_sync` writes it into the current clinic's groups
(`migrate_schemas`, provisioning and the `accounts.sync_roles` task run it).
"""

import hashlib
from importlib import import_module

from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils.module_loading import module_has_submodule

from clinic.permissions import ALL_ROLES, SELF, Grant, installed_grants


def _permission_names(label: str) -> set[str]:
    """The permission names ("view", "book"...) of the model `label` ("app_label.model")."""
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError) as error:
        raise ImproperlyConfigured(f"Grant on an unknown model: {label!r}.") from error
    suffix = f"_{model._meta.model_name}"
    names = set(model._meta.default_permissions)
    names |= {codename.removesuffix(suffix) for codename, _ in model._meta.permissions}
    return names


def grants_collect() -> dict[str, dict[str, Grant]]:
    """Every installed app's `GRANTS`, merged: role -> "app_label.model" -> Grant.

    An app grants on its own models only (and on the apps it names in `APP_LABELS`), so no
    two apps grant on one model. Refuses (ImproperlyConfigured) an unknown role, model or
    permission name, and a grant without `view` (who may act on a row may see it)."""
    merged: dict[str, dict[str, Grant]] = {role: {} for role in ALL_ROLES}
    owner: dict[str, str] = {}
    for config in apps.get_app_configs():
        if not module_has_submodule(config.module, "grants"):
            continue
        module = import_module(f"{config.name}.grants")
        own_labels = getattr(module, "APP_LABELS", (config.label,))
        for role, table in module.GRANTS.items():
            if role not in merged:
                raise ImproperlyConfigured(f"{config.name}.grants: unknown role {role!r}.")
            for label, grant in table.items():
                if not isinstance(grant, Grant):
                    grant = Grant(tuple(grant))
                app_label = label.split(".")[0]
                if app_label not in own_labels:
                    raise ImproperlyConfigured(
                        f"{config.name}.grants grants on {label}, a model of another app."
                    )
                if owner.setdefault(label, config.name) != config.name:
                    raise ImproperlyConfigured(f"{label} is granted by two apps.")
                unknown = set(grant.actions) - _permission_names(label)
                if unknown:
                    raise ImproperlyConfigured(f"{label} has no permission {sorted(unknown)}.")
                if "view" not in grant.actions:
                    raise ImproperlyConfigured(f"{role} acts on {label} without `view`.")
                merged[role][label] = grant
    return merged


def roles_wanted() -> dict[str, set[tuple[str, str]]]:
    """role -> the (app_label, codename) permissions its group holds: the grants in force
    (`clinic.permissions.installed_grants`), but for the self-service ones (scope SELF), which
    are no model permission."""
    wanted: dict[str, set[tuple[str, str]]] = {}
    for role, grants in installed_grants().items():
        wanted[role] = set()
        for model_label, grant in grants.items():
            if grant.scope == SELF:
                continue
            app_label, model = model_label.split(".")
            wanted[role] |= {(app_label, f"{action}_{model}") for action in grant.actions}
    return wanted


def roles_fingerprint(wanted: dict[str, set[tuple[str, str]]]) -> str:
    """md5 of the roles' permissions as `ROLES_FINGERPRINT_SQL` computes it from a schema's
    groups: one line per (role, permission), in byte order."""
    lines = sorted(
        f"{role} {app_label}.{codename}"
        for role, permissions in wanted.items()
        for app_label, codename in permissions
    )
    return hashlib.md5(",".join(lines).encode(), usedforsecurity=False).hexdigest()


# The fingerprint of the role groups named by the one parameter (a list) in `{schema}`:
# tenants.services compares it with `roles_fingerprint` in every clinic at once, then syncs only
# the clinics that differ.
ROLES_FINGERPRINT_SQL = (
    "SELECT md5(coalesce(string_agg(line, ',' ORDER BY line COLLATE \"C\"), '')) FROM ("
    "SELECT g.name || ' ' || ct.app_label || '.' || p.codename AS line "
    "FROM {schema}.auth_group g "
    "JOIN {schema}.auth_group_permissions gp ON gp.group_id = g.id "
    "JOIN {schema}.auth_permission p ON p.id = gp.permission_id "
    "JOIN {schema}.django_content_type ct ON ct.id = p.content_type_id "
    "WHERE g.name = ANY(%s)) lines"
)


@transaction.atomic
def roles_sync() -> dict[str, int]:
    """Create the role groups in the current schema and set exactly their permissions
    (`roles_wanted`).

    Idempotent and cheap when nothing changed (three queries), so `migrate_schemas` runs it in
    every clinic whose roles differ; returns the number of permissions per role.
    """
    permissions = {
        (app_label, codename): pk
        for pk, app_label, codename in Permission.objects.values_list(
            "pk", "content_type__app_label", "codename"
        )
    }
    # A permission not created yet is left out: the next migrate adds it.
    wanted = {
        role: {permissions[label] for label in labels if label in permissions}
        for role, labels in roles_wanted().items()
    }
    groups = {group.name: group for group in Group.objects.filter(name__in=list(wanted))}
    for role in wanted:
        if role not in groups:
            groups[role] = Group.objects.create(name=role)
    through = Group.permissions.through
    current: dict[int, set[int]] = {group.pk: set() for group in groups.values()}
    for group_id, permission_id in through.objects.filter(group_id__in=list(current)).values_list(
        "group_id", "permission_id"
    ):
        current[group_id].add(permission_id)
    for role, permission_ids in wanted.items():
        group = groups[role]
        if current[group.pk] != permission_ids:
            group.permissions.set(permission_ids)
    return {role: len(permission_ids) for role, permission_ids in wanted.items()}
