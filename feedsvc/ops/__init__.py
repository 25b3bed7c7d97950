"""Running feedsvc: its metrics (metrics), the one logging set-up (logs), a database that is away (outage). No Flask."""
