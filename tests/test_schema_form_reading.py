"""How an output reads and edits: amounts with currency, values not found, editors sized to their text."""

from __future__ import annotations

from reviewconsole.reviews import schema_form
from reviewconsole.reviews.templatetags.review_ui import diff_value

INVOICE = {
    "type": "object",
    "properties": {
        "vendor": {"type": "string"},
        "due_date": {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]},
        "currency": {"type": "string"},
        "total_amount": {"type": "number"},
        "quantity": {"type": "number"},
        "line_items": {
            "type": "array",
            "items": {"type": "object", "properties": {"unit_price": {"type": "number"}, "qty": {"type": "number"}}},
        },
    },
}


def fields(tree: schema_form.FormField) -> dict[str, schema_form.FormField]:
    return {".".join(path): node for path, node in schema_form.walk(tree) if path}


def test_amounts_read_with_two_decimals_and_the_outputs_currency():
    output = {"vendor": "Acme", "currency": "EUR", "total_amount": 2805.5, "quantity": 3.0, "line_items": []}
    output["line_items"] = [{"unit_price": 24.5, "qty": 12}]
    read = fields(schema_form.build_form(INVOICE, output))

    assert read["total_amount"].display == "2,805.50 EUR"
    assert read["line_items.0.unit_price"].display == "24.50 EUR"
    # Numbers that are not money keep their own form.
    assert read["quantity"].display == "3" and read["line_items.0.qty"].display == "12"


def test_amounts_without_a_currency_still_read_with_two_decimals():
    read = fields(schema_form.build_form(INVOICE, {"currency": "", "total_amount": 24.5}))

    assert read["total_amount"].display == "24.50"


def test_values_the_model_did_not_find_read_as_not_found():
    read = fields(schema_form.build_form(INVOICE, {"vendor": "", "due_date": None, "currency": "EUR"}))

    assert read["vendor"].not_found and read["due_date"].not_found
    assert not read["currency"].not_found
    assert not read["line_items"].not_found  # an empty list is a list with nothing in it, not a missing value


def test_a_long_texts_editor_is_sized_to_its_text_within_bounds():
    schema = {"type": "object", "properties": {"body": {"type": "string"}}}

    def rows(text: str) -> int:
        return fields(schema_form.build_form(schema, {"body": text}))["body"].text_rows

    low, high = schema_form.TEXT_ROWS
    assert rows("short") == low
    paragraphs = "\n\n".join("word " * 60 for _ in range(4))  # four paragraphs of about 4 wrapped lines
    assert low < rows(paragraphs) < high
    assert rows(paragraphs) > rows("word " * 60)
    assert rows("line\n" * 500) == high


def test_the_diff_shows_amounts_as_the_output_reads():
    assert diff_value(2805.5, "total_amount", "EUR") == "2,805.50 EUR"
    assert diff_value(24.5, "line_items.0.unit_price", "") == "24.50"
    assert diff_value(3, "line_items.0.qty", "EUR") == "3"
    assert diff_value("Acme", "vendor", "EUR") == "Acme"
