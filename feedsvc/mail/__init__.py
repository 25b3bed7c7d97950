"""Mail, pure: the newsletter rendered (newsletter), one reader's message (message), notices, test copies
(samples), and sending bytes to an envelope (transport, pool)."""
