"""The language models flows run on: the configured one, and the offline ones for demos and tests.

- ``configured``: ``build_llm()``, the model ``LLM_MODEL`` names, and the label the pages show;
- ``demo_model``: ``DemoLLM``, offline and deterministic; ``responders``: the answers flows register for it;
- ``example_data``: valid data for any pydantic model from its JSON schema (the demo model's fallback);
- ``decision_model``: ``OutcomeLLM``, which answers a reviewer's chosen outcome on resume;
- ``offline``: the event-emitting call path the offline models share.

These modules import CrewAI; only worker code and tests import them.
"""
