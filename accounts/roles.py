"""The clinic roles: every app's grants merged, and written into each clinic's role groups.

Each installed app may declare its grants in `<app>/grants.py` (`GRANTS`, in the format of
clinic.permissions); `grants_collect` finds them by discovery, so an app adds its grants
without editing accounts. The accounts app installs the merge when Django starts
(`AccountsConfig.ready`); `roles_sync` writes it into the current clinic's groups
(`migrate_schemas`, provisioning and the `accounts.sync_roles` task run it).
"""

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


@transaction.atomic
def roles_sync() -> dict[str, int]:
    """Create the role groups in the current schema and set exactly their permissions: the
    grants in force (`clinic.permissions.installed_grants`), but for the self-service ones
    (scope SELF), which are no model permission.

    Idempotent and cheap when nothing changed (three queries), so `migrate_schemas` runs it in
    every clinic; returns the number of permissions per role.
    """
    wanted: dict[str, set[int]] = {}
    permissions = {
        (app_label, codename): pk
        for pk, app_label, codename in Permission.objects.values_list(
            "pk", "content_type__app_label", "codename"
        )
    }
    for role, grants in installed_grants().items():
        wanted[role] = set()
        for model_label, grant in grants.items():
            if grant.scope == SELF:
                continue
            app_label, model = model_label.split(".")
            for action in grant.actions:
                pk = permissions.get((app_label, f"{action}_{model}"))
                if pk is not None:  # a permission not created yet: the next migrate adds it
                    wanted[role].add(pk)
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
