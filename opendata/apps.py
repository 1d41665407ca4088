from django.apps import AppConfig


class OpendataConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "opendata"
    verbose_name = "Open data sources"

    def ready(self) -> None:
        from opendata import lookups  # noqa: F401 - registers field__in_array
