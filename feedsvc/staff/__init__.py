"""The publisher's team: staff accounts with roles, their passwords, and the audit log of what they did. No Flask."""
