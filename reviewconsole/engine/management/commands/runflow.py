"""Start a flow run from the command line; with --sync, run it to its next stop in this process."""

from __future__ import annotations

import json
from typing import Any

import pydantic
from django.core.management.base import BaseCommand, CommandError, CommandParser

from reviewconsole.engine import registry, runner, selectors, services
from reviewconsole.engine.models import RunStatus


class Command(BaseCommand):
    help = (
        "Start a run of flow NAME with the JSON object --input and print it as one JSON line. "
        "With --sync the run executes here instead of on a worker; the command exits non-zero if it fails."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="Registered flow name.")
        parser.add_argument(
            "--input", dest="input_json", default="{}", help="Inputs as a JSON object, e.g. '{\"loops\": 2}'."
        )
        parser.add_argument("--sync", action="store_true", help="Execute the run in this process and print its result.")

    def handle(self, *args: Any, name: str, input_json: str, sync: bool, **options: Any) -> None:
        try:
            spec = registry.get_flow(name)
        except registry.UnknownFlowError as error:
            raise CommandError(str(error)) from None
        inputs = self._validated_inputs(spec, input_json)
        run = services.run_create(flow_name=spec.name, inputs=inputs, trigger="cli", enqueue=not sync)
        if not sync:
            self._print({"id": str(run.id), "status": selectors.run_get(run_id=run.id).status})
            return

        worker = runner.worker_name()
        if not services.run_claim(run_id=run.id, worker=worker):
            raise CommandError(f"Run {run.id} was taken by another worker before it could start here.")
        runner.execute(run.id, worker)
        run = selectors.run_get(run_id=run.id)
        line: dict[str, Any] = {"id": str(run.id), "status": run.status, "result": run.result}
        if run.status == RunStatus.FAILED:
            line["error"] = run.error
        self._print(line)
        if run.status == RunStatus.FAILED:
            raise CommandError(f"Run {run.id} failed: {run.error}")

    def _validated_inputs(self, spec: registry.FlowSpec, raw: str) -> dict[str, Any]:
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as error:
            raise CommandError(f"--input is not valid JSON: {error}") from None
        if not isinstance(data, dict):
            raise CommandError(f"--input must be a JSON object, not {type(data).__name__}")
        try:
            return spec.input_model.model_validate(data).model_dump(mode="json")
        except pydantic.ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in detail['loc']) or '(inputs)'}: {detail['msg']}"
                for detail in error.errors(include_url=False)
            )
            raise CommandError(f"Invalid inputs for flow '{spec.name}': {problems}") from None

    def _print(self, line: dict[str, Any]) -> None:
        self.stdout.write(json.dumps(line))
