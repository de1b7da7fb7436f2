from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm

from clinic.permissions import PATIENT, role_label

from .models import User
from .services import users_sign_out_everywhere
from .two_factor import staff_two_factor_reset


class RoleFilter(admin.SimpleListFilter):
    """The role groups by their human names ("Front desk", not "front_desk")."""

    title = "role"
    parameter_name = "role"

    def lookups(self, request, model_admin):
        from django.contrib.auth.models import Group

        return [(g.name, role_label(g.name)) for g in Group.objects.order_by("name")]

    def queryset(self, request, queryset):
        return queryset.filter(groups__name=self.value()) if self.value() else queryset


class UserCreateForm(UserCreationForm):
    class Meta:
        model = User
        fields = ("email", "full_name")


class UserEditForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class UserAdmin(DjangoUserAdmin):
    form = UserEditForm
    add_form = UserCreateForm
    ordering = ["email"]
    list_display = ["email", "full_name", "is_staff", "is_active", "role_names"]
    list_filter = ["is_staff", "is_active", RoleFilter]
    search_fields = ["email", "full_name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Person", {"fields": ("full_name",)}),
        ("Access", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "full_name", "password1", "password2")}),
    )
    filter_horizontal = ("groups",)

    def has_delete_permission(self, request, obj=None) -> bool:
        # People have history (appointments, ledgers, audit): deactivate, never delete.
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description="Roles")
    def role_names(self, obj: User) -> str:
        return ", ".join(sorted(role_label(group.name) for group in obj.groups.all()))


class ClinicUserAdmin(UserAdmin):
    """A clinic's people. Access comes from the role groups only: no per-user permissions and
    no superusers made from here, and "staff" (may sign in to this admin) follows the roles,
    as in `accounts.services.user_create`."""

    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Person", {"fields": ("full_name",)}),
        ("Access", {"fields": ("is_active", "groups", "is_staff")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "full_name", "groups", "password1", "password2"),
            },
        ),
    )
    list_filter = ["is_active", RoleFilter]
    readonly_fields = ["is_staff", "last_login", "date_joined"]
    actions = ["sign_out_everywhere", "reset_two_factor"]

    @admin.action(
        description="Sign out everywhere (end sessions, revoke API tokens)", permissions=["change"]
    )
    def sign_out_everywhere(self, request, queryset) -> None:
        """A lost laptop or phone: the people chosen must sign in again on every device."""
        users_sign_out_everywhere(user_ids=queryset.values_list("pk", flat=True))
        self.message_user(
            request, f"Signed out {queryset.count()} user(s) everywhere.", messages.SUCCESS
        )

    @admin.action(
        description="Reset two-factor (a lost phone: enrol a new app at next sign-in)",
        permissions=["change"],
    )
    def reset_two_factor(self, request, queryset) -> None:
        staff_two_factor_reset(user_ids=queryset.values_list("pk", flat=True))
        self.message_user(
            request,
            f"Reset two-factor of {queryset.count()} user(s); they were signed out everywhere.",
            messages.SUCCESS,
        )

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "groups":
            kwargs.setdefault("label", "Roles")
            kwargs.setdefault("help_text", "What this person does in the clinic.")
            field = super().formfield_for_manytomany(db_field, request, **kwargs)
            field.label_from_instance = lambda group: role_label(group.name)
            return field
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        user = form.instance
        is_staff = user.groups.exclude(name=PATIENT).exists()
        if user.is_staff != is_staff:
            User.objects.filter(pk=user.pk).update(is_staff=is_staff)


class SignInFailureAdmin(AccessAttemptAdmin):
    """axes' "Access attempts": the sign-in failures of this schema's accounts, by email and
    address (accounts.lockout). Unlocking deletes them; a lockout also lifts by itself after
    the cool-off. A clinic admin may view and unlock (accounts.grants)."""

    actions = ["unlock"]

    @admin.action(description="Unlock: forget these failures", permissions=["delete"])
    def unlock(self, request, queryset) -> None:
        count, _ = queryset.delete()
        self.message_user(
            request, f"Unlocked: {count} failure records forgotten.", messages.SUCCESS
        )


admin.site.register(User, ClinicUserAdmin)
admin.site.register(AccessAttempt, SignInFailureAdmin)
