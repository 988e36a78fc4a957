"""Flows in the shapes of public CrewAI examples, run by tests/test_conformance*.py under the console and
under plain CrewAI.

Written here, not copied: each keeps the shape a CrewAI example or doc page teaches (lead scoring with a
human step, a self-evaluation loop, a book writer, a router-based email flow, ...) so that a flow written as
CrewAI's docs write it is checked to run under the console as it runs under CrewAI. Importing this package
registers them; FLOW_MODULES lists it for the tests and for the workers they start.
"""

from tests.conformance import examples, features  # noqa: F401
