"""Views by noun: pages, turns, attachments, conversations, accounts."""
