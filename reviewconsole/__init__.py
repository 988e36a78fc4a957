"""Review Console: a human-in-the-loop review console for CrewAI flows."""

from reviewconsole import crewai_env

# Every process (web, worker, tests, management commands) imports this package
# before anything imports CrewAI, so the offline settings always win.
crewai_env.configure_environment()
