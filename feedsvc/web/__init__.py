"""The web shell: one blueprint per module (public pages, subscriptions, admin), registered by create_app."""
