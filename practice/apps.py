from django.apps import AppConfig


def _directory_changed(sender, **kwargs) -> None:
    from clinic.api import clinic_data_changed

    clinic_data_changed()


def watch_for_answers(*models) -> None:
    """Every committed save or delete of these models (and of their many-to-many links)
    makes the clinic's cached public answers stale (`clinic.api.AnswerCache`)."""
    from django.db.models import ManyToManyField
    from django.db.models.signals import m2m_changed, post_delete, post_save

    for model in models:
        uid = f"answers-{model._meta.label}"
        post_save.connect(_directory_changed, sender=model, dispatch_uid=uid)
        post_delete.connect(_directory_changed, sender=model, dispatch_uid=uid)
        for field in model._meta.get_fields():
            if isinstance(field, ManyToManyField):
                m2m_changed.connect(
                    _directory_changed,
                    sender=field.remote_field.through,
                    dispatch_uid=f"{uid}-{field.name}",
                )


class PracticeConfig(AppConfig):
    name = "practice"
    verbose_name = "Practice"

    def ready(self) -> None:
        from accounts.two_factor import policy_install

        from .models import ClinicSettings, Condition, Location, Practitioner, Specialty
        from .selectors import staff_two_factor_required

        watch_for_answers(Practitioner, Specialty, Location, ClinicSettings, Condition)
        policy_install(staff_two_factor_required)  # the clinic's setting, asked by accounts
