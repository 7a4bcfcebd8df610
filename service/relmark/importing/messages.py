"""The import's own messages, in the languages relmark's pages speak (English, Italian).

SHACL messages come from the shapes (``sh:message`` in each language); these are the
checks the import makes before the shapes see the data: columns, types, keys.
"""

# ruff: noqa: E501  (whole sentences read better unbroken)

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "missing_column": {
        "en": "The required column {column} is missing from the header.",
        "it": "Nell'intestazione manca la colonna obbligatoria {column}.",
    },
    "unknown_column": {
        "en": "The column {column} is not in the mapping: its values are not imported.",
        "it": "La colonna {column} non è nella mappatura: i suoi valori non vengono importati.",
    },
    "missing_value": {
        "en": "{column} is required but empty.",
        "it": "{column} è obbligatoria ma è vuota.",
    },
    "duplicate_key": {
        "en": "The key {value} is already used in row {other}: each record needs its own key.",
        "it": "La chiave {value} è già usata nella riga {other}: ogni record ha bisogno di una chiave propria.",
    },
    "bad_decimal": {
        "en": "{value} is not a number: write it with a point for decimals and no thousands separator, e.g. 1234.50.",
        "it": "{value} non è un numero: scrivilo con il punto per i decimali e senza separatore delle migliaia, es. 1234.50.",
    },
    "bad_integer": {
        "en": "{value} is not a whole number.",
        "it": "{value} non è un numero intero.",
    },
    "bad_boolean": {
        "en": "{value} is not true or false.",
        "it": "{value} non è true o false.",
    },
    "bad_date": {
        "en": "{value} is not a date: write it as YYYY-MM-DD, e.g. 2026-03-31.",
        "it": "{value} non è una data: scrivila come AAAA-MM-GG, es. 2026-03-31.",
    },
    "bad_datetime": {
        "en": "{value} is not a date and time: write it as YYYY-MM-DDThh:mm:ss.",
        "it": "{value} non è una data con ora: scrivila come AAAA-MM-GGThh:mm:ss.",
    },
    "bad_choice": {
        "en": "{value} is not one of the allowed values: {allowed}.",
        "it": "{value} non è uno dei valori ammessi: {allowed}.",
    },
}


def message(code: str, lang: str, **values: object) -> str:
    """The message ``code`` in ``lang`` (its primary subtag; English when missing)."""
    texts = MESSAGES[code]
    text = texts.get(lang.lower().split("-")[0], texts["en"])
    return text.format(**values)
