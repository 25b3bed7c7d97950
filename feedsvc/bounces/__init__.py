"""What comes back: delivery-status reports, feedback-loop complaints and auto-replies, matched to the mail we sent.

`verp` signs the envelope sender per outbox row, `reports` reads a report (pure), `classify` decides what a
status means (pure), `intake` matches and acts in the database, `stats` gives the figures per issue.
"""
