from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "scheduling"
    verbose_name = "Scheduling"

    def ready(self) -> None:
        from practice.selectors import PractitionerSearchExtension, practitioner_search_extend

        from .selectors import search_with_next_available

        practitioner_search_extend(
            PractitionerSearchExtension(
                name="next-available",
                apply=search_with_next_available,
                params=("available_before",),
                fields=("next_available",),
            )
        )
