"""Process-wide CrewAI settings that must be in place before CrewAI is imported.

Without them CrewAI calls telemetry and PyPI hosts at start-up, and process exit
waits about 15 s for those calls to time out on a machine without internet.
"""

import os

OFFLINE_ENVIRONMENT = {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "OTEL_SDK_DISABLED": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "CREWAI_DISABLE_VERSION_CHECK": "true",
}


def configure_environment() -> None:
    """Set the offline variables; an operator's explicit value is kept."""
    for name, value in OFFLINE_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


def quiet_console() -> None:
    """Silence CrewAI's rich panels, which would flood worker logs.

    Called once CrewAI is imported (worker start-up), never from the web path.
    """
    from crewai.events.event_listener import event_listener
    from crewai_core.printer import set_suppress_console_output

    set_suppress_console_output(True)
    event_listener.formatter.console.quiet = True


def install_worker_defaults() -> None:
    """What CrewAI builds on its own follows the console's settings (worker start-up, once CrewAI is imported).

    An agent without ``llm=`` runs on ``LLM_MODEL``, and a crew with memory
    but no embedder fails at kickoff instead of saving nothing.
    """
    from reviewconsole.crew_memory import refuse_memory_without_embedder
    from reviewconsole.llm.configured import make_configured_model_the_default

    make_configured_model_the_default()
    refuse_memory_without_embedder()
