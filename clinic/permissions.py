"""Who may do what: the roles, the row scopes of a grant, the installed grants, and the one
permission class of the API.

Each app declares its grants in a module of its own, `<app>/grants.py`:
`GRANTS = {role: {"app_label.model": actions}}`, where `actions` is a tuple of permission
names ("view", "add", "change", "delete" or a model's own, such as "book") reaching every row
of the clinic, or a `Grant(actions, scope)` reaching only the role's own rows. accounts merges
every installed app's grants when Django starts and installs them here (`grants_install`);
it also writes them into each clinic's role groups (`accounts.roles.roles_sync`). The kernel
imports no app: it reads what was installed.

Staff permissions are asked with Django's `user.has_perm("app_label.codename")` everywhere
(API, admin, schedule board, websockets): accounts' auth backend answers from the installed
grants and the user's role names, without a query. A patient holds no model permission: their
grants (scope SELF) are self-service rights on their own records, which the API's views that
serve patients check here. Which rows a permission reaches is `permission_scopes`; the apps'
selectors turn it into a queryset filter (`practice.selectors.rows_in_scope`).
"""

from collections.abc import Mapping
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

CLINIC_ADMIN = "clinic_admin"
FRONT_DESK = "front_desk"
PRACTITIONER = "practitioner"
BILLER = "biller"
PATIENT = "patient"
INTEGRATOR = "integrator"
ALL_ROLES = (CLINIC_ADMIN, FRONT_DESK, PRACTITIONER, BILLER, PATIENT, INTEGRATOR)
STAFF_ROLES = frozenset({CLINIC_ADMIN, FRONT_DESK, PRACTITIONER, BILLER, INTEGRATOR})
# What people read for each role (the group names are identifiers).
ROLE_LABELS = {
    CLINIC_ADMIN: "Clinic admin",
    FRONT_DESK: "Front desk",
    PRACTITIONER: "Practitioner",
    BILLER: "Biller",
    PATIENT: "Patient",
    INTEGRATOR: "Integrator (API)",
}


def role_label(name: str) -> str:
    return ROLE_LABELS.get(name, name.replace("_", " ").capitalize())


# The rows a grant reaches.
ALL = "all"  # every row of the clinic
OWN = "own"  # a practitioner's: their own column (visits, hours, time off...) and the patients
#              they see, with those patients' records
SELF = "self"  # a patient's: their own patient record and what hangs off it (visits, jobs...)
SCOPES = (ALL, OWN, SELF)


@dataclass(frozen=True)
class Grant:
    """Permission names on one model, reaching the rows of `scope`."""

    actions: tuple[str, ...]
    scope: str = ALL

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ImproperlyConfigured(f"Unknown row scope {self.scope!r}.")


# The installed grants: role -> "app_label.model" -> Grant, and the same by permission:
# role -> "app_label.codename" -> scope.
_grants: dict[str, dict[str, Grant]] = {}
_scopes: dict[str, dict[str, str]] = {}


def grants_install(grants: Mapping[str, Mapping[str, Grant]]) -> None:
    """Make `grants` (role -> "app_label.model" -> Grant) the grants in force, replacing the
    ones before. accounts installs the merged grants of every app when Django starts."""
    scopes: dict[str, dict[str, str]] = {}
    for role, models in grants.items():
        by_permission = scopes.setdefault(role, {})
        for label, grant in models.items():
            app_label, model = label.split(".")
            for action in grant.actions:
                by_permission[f"{app_label}.{action}_{model}"] = grant.scope
    _grants.clear()
    _grants.update({role: dict(models) for role, models in grants.items()})
    _scopes.clear()
    _scopes.update(scopes)


def installed_grants() -> dict[str, dict[str, Grant]]:
    """A copy of the grants in force: role -> "app_label.model" -> Grant."""
    return {role: dict(models) for role, models in _grants.items()}


def role_permissions(roles) -> set[str]:
    """The model permissions ("app_label.codename") that `roles` hold: their grants in the
    clinic's rows (ALL) or in their own (OWN), not the self-service ones (SELF)."""
    return {
        permission
        for role in roles
        for permission, scope in _scopes.get(role, {}).items()
        if scope != SELF
    }


# API clients (integrations/): a client acts as an integrator whose permissions are its
# scopes. "<app>:read" is the integrator's `view` grants on the app's models, "<app>:write"
# all the integrator's grants on them: a scope never gives more than the integrator role, and
# never a self-service (SELF) right.
SCOPE_APPS = ("practice", "authorizations", "scheduling", "billing", "notifications", "waitlist")
API_SCOPES = tuple(f"{app}:{access}" for app in SCOPE_APPS for access in ("read", "write"))


def scope_permissions(scopes) -> set[str]:
    """The model permissions ("app_label.codename") an API client with `scopes` holds."""
    held = set()
    for permission, scope in _scopes.get(INTEGRATOR, {}).items():
        app_label, codename = permission.split(".")
        if scope == ALL and (
            f"{app_label}:write" in scopes
            or (f"{app_label}:read" in scopes and codename.startswith("view_"))
        ):
            held.add(permission)
    return held


def is_api_client(user) -> bool:
    """Whether `user` is an API client's principal (accounts.auth puts its scopes on it)."""
    return getattr(user, "api_scopes", None) is not None


def permission_scopes(user, permission: str) -> frozenset[str]:
    """The row scopes in which `user` holds `permission` ("app_label.codename"): {ALL} when
    any of their roles reaches every row, otherwise the scopes of the roles that grant it
    (OWN, SELF), empty when none does. Pure Python over the user's role names. An API
    client holds it in every row when its scopes give it, never otherwise."""
    if not (user is not None and user.is_authenticated and user.is_active):
        return frozenset()
    if is_api_client(user):
        held = permission in scope_permissions(user.api_scopes)
        return frozenset({ALL}) if held else frozenset()
    if user.is_superuser:
        return frozenset({ALL})
    found = {
        scope for role in user.roles if (scope := _scopes.get(role, {}).get(permission)) is not None
    }
    return frozenset({ALL}) if ALL in found else frozenset(found)


# The API ---------------------------------------------------------------------------------

SIGNED_IN = "signed-in"  # `permission_model` of views that touch only the caller's own account

DEFAULT_ACTIONS = {
    # viewset actions
    "list": "view",
    "retrieve": "view",
    "metadata": "view",
    "create": "add",
    "update": "change",
    "partial_update": "change",
    "destroy": "delete",
    # HTTP methods of plain API views
    "get": "view",
    "head": "view",
    "options": "view",
    "post": "add",
    "put": "change",
    "patch": "change",
    "delete": "delete",
}


def view_action(request: Request, view) -> str | None:
    """What the request asks of `view`: its viewset action ("list", "cancel"...) or, for a
    plain API view, the HTTP method ("get", "post"...). None for a method the view does not
    answer (405)."""
    method = (request.method or "").lower()
    if method not in view.http_method_names:
        return None
    if hasattr(view, "action_map"):
        return view.action
    return method if hasattr(view, method) else None


def required_permission(request: Request, view) -> str | None:
    """The permission ("app_label.codename") the request needs, `SIGNED_IN`, or None when
    anyone may make it (anonymous visitors included).

    The view declares it: `permission_model = "app_label.model"`; `permission_actions`
    maps an action to a permission name on that model ("check_in": "checkin") or to a whole
    permission ("create": "scheduling.book_appointment"), the standard actions need view /
    add / change / delete; `public_actions` names the actions open to everyone;
    `self_service_actions` those that serve a patient's own records (SELF grants)."""
    action = view_action(request, view)
    if action is None or action in getattr(view, "public_actions", ()):
        return None
    model = getattr(view, "permission_model", None)
    if model is None:
        raise ImproperlyConfigured(f"{type(view).__name__} declares no permission_model.")
    if model == SIGNED_IN:
        return SIGNED_IN
    name = getattr(view, "permission_actions", {}).get(action) or DEFAULT_ACTIONS.get(action)
    if name is None:
        raise ImproperlyConfigured(f"{type(view).__name__} names no permission for {action!r}.")
    if "." in name:
        return name
    app_label, model_name = model.split(".")
    return f"{app_label}.{name}_{model_name}"


class GrantPermission(BasePermission):
    """The API's one permission check (the default permission class): the permission the view
    declares for the request, held as staff (`user.has_perm`, as the admin asks it) or, on
    the view's self-service actions, as a patient (a SELF grant). Which rows it reaches is the
    view's queryset's business (`permission_scopes`): a row out of scope is a 404."""

    message = "Your role does not allow this."

    def has_permission(self, request: Request, view) -> bool:
        required = required_permission(request, view)
        if required is None:
            return True
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if is_api_client(user):
            # a client holds its scopes' model permissions, and no account of its own
            return required != SIGNED_IN and user.has_perm(required)
        if required == SIGNED_IN or user.has_perm(required):
            return True
        return view_action(request, view) in getattr(view, "self_service_actions", ()) and (
            SELF in permission_scopes(user, required)
        )
