"""The invoice flow on a real model: CrewAI's OpenAI provider against a local OpenAI-compatible server.

The server stands in for any provider reached through LLM_MODEL / LLM_BASE_URL /
LLM_API_KEY. Its answer differs from anything the demo model would give, so the
assertions prove the flow used the server, and its token counts are specific,
so they prove the step rows record what the provider reported.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from flows.invoice_demo import CAREFUL_CUE, demo_extract_invoice
from flows.invoices import MAX_REREADS
from reviewconsole.autonomy.services import policy_update
from reviewconsole.engine.models import FlowRun, RunStatus, Step, StepKind
from reviewconsole.engine.services import run_create

RAW_INVOICE = """Vendor: Acme Supplies Ltd
Invoice Number: INV-1042
Invoice Date: 2026-10-01
Widgets | 10 | 12.50 | 125.00
Total: 125.00 GBP
"""

# Nothing in the invoice says "Northwind": only the server can have produced this.
SERVER_INVOICE = {
    "vendor": "Northwind Traders (from the server)",
    "invoice_number": "NW-5555",
    "invoice_date": "2026-10-01",
    "due_date": "2026-11-15",
    "currency": "GBP",
    "line_items": [{"description": "Widgets", "quantity": 10, "unit_price": 12.5, "amount": 125.0}],
    "total_amount": 125.0,
    "confidence": 0.93,
}
USAGE = {"prompt_tokens": 417, "completion_tokens": 59, "total_tokens": 476}
MODEL = "invoice-reader"
API_KEY = "test-key"


class _ChatCompletions(BaseHTTPRequestHandler):
    """Answers POST /v1/chat/completions with the server's invoice as the assistant's JSON content."""

    server: _Server

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        self.server.requests.append({"path": self.path, "authorization": self.headers.get("Authorization"), **body})
        if self.path != "/v1/chat/completions":
            self._send(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
            return
        self._send(
            200,
            {
                "id": f"chatcmpl-{len(self.server.requests)}",
                "object": "chat.completion",
                "created": 1_790_000_000,
                "model": body.get("model", MODEL),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": json.dumps(self.server.answer)},
                        "finish_reason": "stop",
                    }
                ],
                "usage": USAGE,
            },
        )

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output clean


class _Server(ThreadingHTTPServer):
    requests: list[dict[str, Any]]
    answer: dict[str, Any]


@pytest.fixture
def llm_server() -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), _ChatCompletions)
    server.requests = []
    server.answer = SERVER_INVOICE
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def start() -> FlowRun:
    run = run_create(flow_name="invoice_processing", inputs={"raw_invoice": RAW_INVOICE})
    run.refresh_from_db()
    return run


def prompt_of(call: dict[str, Any]) -> str:
    return "\n".join(str(message.get("content")) for message in call["messages"])


@pytest.fixture
def real_llm(settings, llm_server: _Server) -> _Server:
    settings.LLM_MODEL = f"openai/{MODEL}"
    settings.LLM_BASE_URL = f"http://127.0.0.1:{llm_server.server_address[1]}/v1"
    settings.LLM_API_KEY = API_KEY
    return llm_server


@pytest.mark.django_db(transaction=True)
def test_invoice_flow_uses_the_configured_server_and_records_its_token_usage(real_llm):
    assert demo_extract_invoice(RAW_INVOICE)["vendor"] != SERVER_INVOICE["vendor"]
    policy_update(
        output_type="invoice", changes={"threshold": 0.9, "audit_rate": 0.0}, by=None, reason="let it through"
    )

    run = start()

    assert run.status == RunStatus.COMPLETED, run.error
    assert run.state["invoice"]["vendor"] == SERVER_INVOICE["vendor"]
    assert run.state["attempts"] == 1  # 0.93 needs no re-reading
    assert run.result["invoice"] == SERVER_INVOICE
    assert run.result["reviewed"] is False

    calls = real_llm.requests
    assert [call["path"] for call in calls] == ["/v1/chat/completions"]
    assert calls[0]["authorization"] == f"Bearer {API_KEY}"
    assert calls[0]["model"] == MODEL
    # CrewAI asks for structured output: the task's pydantic model as a JSON schema.
    assert calls[0]["response_format"]["type"] == "json_schema"
    # The reading also asks where each field was read; the server may leave it out, as this one does.
    schema = calls[0]["response_format"]["json_schema"]["schema"]
    assert set(schema["properties"]) == {*SERVER_INVOICE, "source_lines"}
    assert "INV-1042" in prompt_of(calls[0]) and "<invoice>" in prompt_of(calls[0])

    steps = Step.objects.filter(run=run, kind=StepKind.LLM)
    assert [(step.model, step.tokens_in, step.tokens_out) for step in steps] == [
        (MODEL, USAGE["prompt_tokens"], USAGE["completion_tokens"])
    ]


@pytest.mark.django_db(transaction=True)
def test_an_unsure_answer_is_reread_by_the_fallback_crew_on_the_same_server(real_llm):
    real_llm.answer = {**SERVER_INVOICE, "confidence": 0.31}

    run = start()

    assert run.status == RunStatus.WAITING_REVIEW, run.error
    assert run.review_items.get().reason == "unreadable"
    calls = real_llm.requests
    assert len(calls) == 1 + MAX_REREADS
    assert [CAREFUL_CUE in prompt_of(call) for call in calls] == [False] + [True] * MAX_REREADS
    assert "confidence 0.31" in prompt_of(calls[1])
    tokens = Step.objects.filter(run=run, kind=StepKind.LLM).values_list("tokens_in", "tokens_out")
    assert list(tokens) == [(USAGE["prompt_tokens"], USAGE["completion_tokens"])] * len(calls)
