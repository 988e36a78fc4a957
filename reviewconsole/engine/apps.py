from django.apps import AppConfig
from django.core import checks


class EngineConfig(AppConfig):
    name = "reviewconsole.engine"
    label = "engine"
    verbose_name = "Flow engine"

    def ready(self) -> None:
        checks.register(check_registered_flows, "flows")


def check_registered_flows(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Fail `manage.py check`, runserver and qcluster start-up on a broken flow."""
    from reviewconsole.engine.registry import load_flows
    from reviewconsole.engine.structure import FlowStructureError

    try:
        load_flows()
    except FlowStructureError as error:
        return [checks.Error(str(error), id="engine.E001")]
    return []
