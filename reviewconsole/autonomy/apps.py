from django.apps import AppConfig


class AutonomyConfig(AppConfig):
    name = "reviewconsole.autonomy"
    label = "autonomy"
    verbose_name = "Autonomy"
