"""Conversations and their history: the rows (`models`), the sidebar and thread pages
(`selectors`), a conversation's settings (`chat_settings`), its title (`titles`) and its
housekeeping (`services`: settings saved, pinned, deleted)."""
