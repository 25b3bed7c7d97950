"""The outbox ledger: an issue's send (sends), the rules of a row (rules), the leased queue (queue), what
a row sends (renders), retries (retry), the worker, and housekeeping."""
